/**
 * DNS Load Balance, least-busy (seed 004, Appendix A): one up site with the lowest utilization
 * (load / capacity); a site of unknown load counts as idle. Ties are broken at random so that
 * equal sites share the traffic.
 */
import type { SiteModel } from '../model/zone-model.js';
import { stateOf } from '../state/snapshot.js';
import { allDownSelection } from './all-down.js';
import { hasFamily, type Policy } from './types.js';

export const leastBusy: Policy = (name, family, snapshot, _client, env) => {
  let best: SiteModel | undefined;
  let bestUtilization = Infinity;
  let ties = 0;
  for (const site of name.sites) {
    if (!hasFamily(site, family)) continue;
    const state = stateOf(snapshot, site.key);
    if (!state.up) continue;
    const utilization = state.utilization ?? 0;
    if (utilization < bestUtilization) {
      best = site;
      bestUtilization = utilization;
      ties = 1;
    } else if (utilization === bestUtilization) {
      // Reservoir sampling: each of the tied sites is kept with equal probability.
      ties++;
      if (env.random() * ties < 1) best = site;
    }
  }
  if (best === undefined) return allDownSelection(name, family);
  return { kind: 'sites', sites: [best], reason: 'least busy' };
};
