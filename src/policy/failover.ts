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
 * Candidates without an address of the asked family are skipped.
 */
import { stateOf } from '../state/snapshot.js';
import { allDownSelection } from './all-down.js';
import { hasFamily, type Policy } from './types.js';

export const failover: Policy = (name, family, snapshot) => {
  for (const site of name.sites) {
    if (hasFamily(site, family) && stateOf(snapshot, site.key).up) {
      return { kind: 'sites', sites: [site], reason: site === name.sites[0] ? 'first in order, up' : `failover: ${name.sites[0].id} down` };
    }
  }
  return allDownSelection(name, family);
};
