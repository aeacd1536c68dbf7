/**
 * The rule for a domain name in a zone file, owner or target alike, apart from zod so the
 * compiler (which UDP threads load) checks names without loading the schema.
 */

/** RFC 1035 §2.3.4: labels of 1..63 octets, names up to 255 octets on the wire. */
const LABEL_RE = /^(?:\*|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)$/;
export function nameProblem(name: string): string | undefined {
  if (name === '@' || name === '.') return undefined;
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0) return 'empty name';
  if (bare.length > 253) return 'name longer than 253 characters';
  return labelProblem(bare);
}

/** The labels' part of the rule alone: for a name whose length is judged once its zone is appended. */
export function labelProblem(name: string): string | undefined {
  if (name === '@' || name === '.') return undefined;
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  for (const label of bare.split('.')) {
    if (!LABEL_RE.test(label)) return `bad label "${label}" (letters, digits, "-" and "_", 1-63 characters)`;
  }
  return undefined;
}
