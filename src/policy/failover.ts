/**
 * DNS Failover (seed 004, Appendix A "DNS Failover Nameserver" and "Site Name"): the first
 * candidate in order that is up. Truth table (docs/policies.md):
 *
 * | site      | later sites in its group       | answer                       |
 * |-----------|--------------------------------|------------------------------|
 * | up        | any                            | the site                     |
 * | down      | some up                        | first up in order, wrapping  |
 * | down      | none up                        | per all_down (default first) |
 *
 * Candidates without an address of the asked family are skipped; when none with one is up, the
 * all_down rule answers. A Site Name's candidate list is the site followed by its group
 * wrapped around (compile.ts), so "first up in order" is the wrap.
 */
import { nothingChosen } from './all-down.js';
import { first } from './simple.js';
import type { Policy } from './types.js';

export const failover: Policy = (name, family, snapshot, client, env) => {
  const chosen = first(name, name.sites, family, snapshot, client, env);
  if (chosen === undefined) return nothingChosen(name, family, snapshot);
  if (chosen.kind === 'sites' && chosen.sites[0] !== name.sites[0]) {
    return { kind: 'sites', sites: [chosen.sites[0]], reason: `failover: ${name.sites[0].id} unusable` };
  }
  return chosen.kind === 'sites' && chosen.sites.length > 1 ? { ...chosen, sites: [chosen.sites[0]] } : chosen;
};
