/**
 * DNS Failover (seed 004, Appendix A "DNS Failover Nameserver" and "Site Name"): the first
 * candidate in order that is up. Truth table (docs/policies.md):
 *
 * | site                     | later sites in its group | answer                          |
 * |--------------------------|--------------------------|---------------------------------|
 * | up, has the family       | any                      | the site                        |
 * | up, lacks the family     | any                      | NODATA                          |
 * | down (or drained)        | some usable              | first usable in order, wrapping |
 * | down (or drained)        | none usable              | per all_down (default first)    |
 *
 * The Site Name returns its own site while that site is operational (seed 004, Appendix A): a
 * client whose session lives there must not be sent elsewhere because it asked for the other
 * family, so an IPv4-only site that is up answers AAAA with NODATA. Once the site is down, later
 * candidates without an address of the asked family are skipped; when none with one is up, the
 * all_down rule answers. A Site Name's candidate list is the site followed by its group wrapped
 * around (compile.ts), so "first usable in order" is the wrap.
 */
import { oneSite } from './candidates.js';
import { nothingChosen } from './all-down.js';
import { first } from './simple.js';
import { stateOf } from '../state/snapshot.js';
import type { Selection } from '../model/selection.js';
import { hasFamily, type Policy } from './types.js';

const UP_WITHOUT_FAMILY: Selection = Object.freeze({ kind: 'nodata', reason: 'site up, no address of this family' });

export const failover: Policy = (name, family, snapshot, client, env) => {
  const own = name.sites[0];
  if (!hasFamily(own, family) && stateOf(snapshot, own.key).up) return UP_WITHOUT_FAMILY;
  const chosen = first(name, name.sites, family, snapshot, client, env);
  if (chosen === undefined) return nothingChosen(name, family, snapshot);
  if (chosen.kind === 'sites' && chosen.sites[0] !== name.sites[0]) {
    // The reason names the Site Name's own site: a fixed string per name, so the shared
    // one-site selection applies.
    return oneSite(chosen.sites[0], `failover: ${name.sites[0].id} unusable`);
  }
  return chosen.kind === 'sites' && chosen.sites.length > 1 ? oneSite(chosen.sites[0], chosen.reason) : chosen;
};
