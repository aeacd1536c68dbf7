/**
 * How operators name a site on the command line: `boston` (when only one zone has it),
 * `boston.app.example.com` (the Site Name, when it is the default <id>.<zone>) or the key
 * `app.example.com/boston`. Only a site in `keys` is named: acting on a site that does not exist
 * is an error, whether through the admin listener or straight on Redis.
 */
import { siteRefProblem } from './keys.js';

/** Why a reference names no site: it cannot name one, it names several, or none of `keys`. */
export type SiteRefFailure = { readonly error: string; readonly code: 'unprintable' | 'ambiguous' | 'unknown' };

export function resolveSiteRef(ref: string, keys: Iterable<string>): { key: string } | SiteRefFailure {
  const problem = siteRefProblem(ref);
  if (problem !== undefined) return { error: problem, code: 'unprintable' };
  const wanted = ref.toLowerCase().replace(/\.$/, '');
  const all = [...new Set(keys)];
  if (all.includes(wanted)) return { key: wanted };
  const matches = all.filter((key) => {
    const slash = key.lastIndexOf('/');
    const zone = key.slice(0, slash);
    const id = key.slice(slash + 1);
    return id === wanted || `${id}.${zone}` === wanted;
  });
  if (matches.length === 1) return { key: matches[0] };
  if (matches.length > 1) return { error: `"${ref}" is ambiguous: ${matches.join(', ')} (use zone/site)`, code: 'ambiguous' };
  return { error: `no site "${ref}"${all.length ? ` (known: ${all.sort().join(', ')})` : ''}`, code: 'unknown' };
}
