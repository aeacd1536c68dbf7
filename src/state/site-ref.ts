/**
 * How operators name a site on the command line: `boston` (when only one zone has it),
 * `boston.app.example.com` (the Site Name, when it is the default <id>.<zone>) or the key
 * `app.example.com/boston`.
 */
export function resolveSiteRef(ref: string, keys: Iterable<string>): { key: string } | { error: string } {
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
  if (matches.length > 1) return { error: `"${ref}" is ambiguous: ${matches.join(', ')} (use zone/site)` };
  if (wanted.includes('/')) return { key: wanted };
  return { error: `no site "${ref}"${all.length ? ` (known: ${all.sort().join(', ')})` : ''}` };
}
