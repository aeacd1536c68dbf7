/**
 * Hysteresis (seed 002, stages S203-S209), optional per pool (`hysteresis: {stay_below,
 * differential}`): keep answering the current site while its utilization is below the first
 * level (seed: 50 %); above it, move only when another usable site is lower by at least the
 * differential (seed: 20 points), and then to the least loaded one (S208). The current site is
 * PolicyMemory state, one per candidate list (pool, or topology group).
 *
 * The current site is replaced by the wrapped policy's choice when there is none yet, or it is
 * down, or it is not among the candidates. Its load unknown or stale: stay (nothing says move).
 * A query for a family the current site lacks is answered by the wrapped policy without
 * changing the current site.
 */
import type { SiteModel } from '../model/zone-model.js';
import { stateOf } from '../state/snapshot.js';
import { usable, oneSite } from './candidates.js';
import { utilizationOf } from './load.js';
import { hasFamily, type SitePolicy } from './types.js';

export function withHysteresis(base: SitePolicy): SitePolicy {
  return (name, candidates, family, snapshot, client, env) => {
    const settings = name.pool?.hysteresis;
    const memory = env.memory?.of(name);
    if (settings === undefined || memory === undefined) return base(name, candidates, family, snapshot, client, env);
    const current = memory.current.get(candidates);
    if (current !== undefined && candidates.includes(current) && stateOf(snapshot, current.key).up) {
      if (!hasFamily(current, family)) return base(name, candidates, family, snapshot, client, env);
      const now = env.now();
      const u = utilizationOf(current, stateOf(snapshot, current.key), now);
      if (u === undefined || u < settings.stayBelow) return oneSite(current, 'hysteresis: current site below the first level');
      let best: SiteModel | undefined;
      let bestU = Infinity;
      for (const site of usable(candidates, family, snapshot)) {
        if (site === current) continue;
        const su = utilizationOf(site, stateOf(snapshot, site.key), now);
        if (su !== undefined && su < bestU) {
          best = site;
          bestU = su;
        }
      }
      // The epsilon keeps "exactly the differential" a move despite binary fractions (0.7 - 0.2).
      if (best === undefined || bestU > u - settings.differential + 1e-9) {
        return oneSite(current, 'hysteresis: no site lower by the differential');
      }
      memory.current.set(candidates, best);
      return { kind: 'sites', sites: [best], reason: `hysteresis: moved from ${current.id}, lower by the differential` };
    }
    const selection = base(name, candidates, family, snapshot, client, env);
    if (selection?.kind === 'sites') memory.current.set(candidates, selection.sites[0]);
    return selection;
  };
}
