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
import { oneSite } from './candidates.js';
import { nothingChosen } from './all-down.js';
import { first } from './simple.js';
import type { Policy } from './types.js';

export const failover: Policy = (name, family, snapshot, client, env) => {
  const chosen = first(name, name.sites, family, snapshot, client, env);
  if (chosen === undefined) return nothingChosen(name, family, snapshot);
  if (chosen.kind === 'sites' && chosen.sites[0] !== name.sites[0]) {
    // The reason names the Site Name's own site: a fixed string per name, so the shared
    // one-site selection applies.
    return oneSite(chosen.sites[0], `failover: ${name.sites[0].id} unusable`);
  }
  return chosen.kind === 'sites' && chosen.sites.length > 1 ? oneSite(chosen.sites[0], chosen.reason) : chosen;
};
