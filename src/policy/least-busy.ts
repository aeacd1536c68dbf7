/**
 * DNS Load Balance, least-busy (seed 004, Appendix A), built not to herd.
 *
 * With zero TTL every resolver miss re-decides while load reports are seconds old, so "answer the
 * minimum" sends everyone to one site until the next report shows it full, then to the next
 * (bench/balance: 1.41x the ideal peak, oscillating). Instead each answer is drawn with weight
 * proportional to the site's *headroom* below a ceiling just above the mean (the draw points of a
 * name evenly spread when answering: types.ts `evenDraws`):
 *
 *     u_i      = utilization of site i (load / capacity), plus the answers this server handed it
 *                since its load was measured x load_per_answer / capacity (when configured)
 *     mean     = sum(u_i * capacity_i) / sum(capacity_i)          (capacity-weighted)
 *     weight_i = capacity_i * max(0, mean + margin - u_i)
 *
 * At balance every site sits at the mean and gets traffic in proportion to its capacity; a site
 * above the mean gets less, and one more than `margin` above gets none, until the reports show it
 * back. It is a proportional controller: the correction is spread over all sites instead of being
 * dumped on the minimum, so stale reports bend the split a little instead of flipping it.
 * `margin` sets the gain: 0.1 with reports alone; 0.05 (twice the gain) when `load_per_answer`
 * is set, because counting our own answers since the measurement removes most of the report's
 * delay, and a faster controller is then still stable. "Weight by spare capacity" is the same
 * rule with the ceiling at 100 %; it has a much lower gain and balances worse (docs/balance.md).
 *
 * Unknown or stale loads (load.ts) count as the mean of the known ones: such a site gets its
 * capacity's share, neither flooded (as "unknown = idle" would) nor starved. With no load known at
 * all the split is by capacity. Equal sites get equal weights, so the draw needs no tie rule.
 */
import type { SiteModel } from '../model/zone-model.js';
import { measuredAt, stateOf, type StateSnapshot } from '../state/snapshot.js';
import { answerWith, usable, weightedIndex, oneSite } from './candidates.js';
import { utilizationOf } from './load.js';
import type { PolicyMemory } from './memory.js';
import { drawFor, type SitePolicy } from './types.js';

/** Headroom above the mean (utilization) below which a site still gets answers. */
export const MARGIN_REPORTS_ONLY = 0.1;
export const MARGIN_WITH_ANSWER_COUNT = 0.05;

/** The reason of every least-busy selection. */
export const LEAST_BUSY = 'least busy';

/**
 * The headroom weights of `sites` (all usable, at least two) at `now`, written into `weights`
 * and their utilizations (undefined: unknown or stale) into `utilizations`. Shared by
 * leastBusy and the prepared selection (prepared.ts), so both draw from the very same numbers.
 */
export function headroomWeights(
  sites: readonly SiteModel[],
  snapshot: StateSnapshot,
  now: number,
  perAnswer: number,
  memory: PolicyMemory | undefined,
  weights: number[],
  utilizations: (number | undefined)[],
): void {
  let knownWeighted = 0;
  let knownCapacity = 0;
  weights.length = sites.length;
  utilizations.length = sites.length;
  for (let i = 0; i < sites.length; i++) {
    const site = sites[i];
    const state = stateOf(snapshot, site.key);
    let u = utilizationOf(site, state, now);
    if (u !== undefined && perAnswer > 0) {
      const since = measuredAt(state);
      if (since !== undefined) u += (memory!.answersSince(site, since, now) * perAnswer) / site.capacity;
    }
    utilizations[i] = u;
    if (u !== undefined) {
      knownWeighted += u * site.capacity;
      knownCapacity += site.capacity;
    }
  }
  if (knownCapacity === 0) {
    for (let i = 0; i < sites.length; i++) weights[i] = sites[i].capacity;
  } else {
    // Unknown loads stand at the mean, so the mean over all sites equals the mean of the known.
    const mean = knownWeighted / knownCapacity;
    const ceiling = mean + (perAnswer > 0 ? MARGIN_WITH_ANSWER_COUNT : MARGIN_REPORTS_ONLY);
    for (let i = 0; i < sites.length; i++) weights[i] = sites[i].capacity * Math.max(0, ceiling - (utilizations[i] ?? mean));
  }
  capShares(sites, weights);
}

/** No site draws more than this multiple of its capacity share of the answers. */
export const MAX_SHARE_OF_CAPACITY = 2;

/**
 * Slow start: a site just back, or far below the others (a report of 0 % while they sit at
 * 60 %), would get every answer until its next load report and be buried at high query rates.
 * Its share is capped at MAX_SHARE_OF_CAPACITY x capacity / total capacity, and what it loses
 * goes to the other sites in proportion to their weights (by capacity when they have none), as
 * water fills: HAProxy's `slowstart` and Envoy's slow-start mode bound a returning server
 * likewise, but by time; a bound by share needs no clock and no `load_per_answer`.
 */
function overBound(weight: number, capacity: number, perCapacity: number): boolean {
  return weight > capacity * perCapacity * (1 + 1e-12);
}

function capShares(sites: readonly SiteModel[], weights: number[]): void {
  let total = 0;
  let capacity = 0;
  for (let i = 0; i < sites.length; i++) {
    total += weights[i];
    capacity += sites[i].capacity;
  }
  if (!(total > 0)) return;
  // A site's bound in the weights' own units is its capacity x `perCapacity`; the total weight
  // stays as it is, so explain shows headroom weights whether or not a bound applied.
  const perCapacity = (MAX_SHARE_OF_CAPACITY * total) / capacity;
  let any = false;
  for (let i = 0; i < sites.length && !any; i++) any = overBound(weights[i], sites[i].capacity, perCapacity);
  // The common case, no site over its bound, returns here with the weights untouched.
  if (!any) return;
  const capped: boolean[] = [];
  // Each pass caps at least one more site, so sites.length passes suffice.
  for (let pass = 0; pass < sites.length; pass++) {
    let excess = 0;
    for (let i = 0; i < sites.length; i++) {
      if (capped[i] || !overBound(weights[i], sites[i].capacity, perCapacity)) continue;
      excess += weights[i] - sites[i].capacity * perCapacity;
      weights[i] = sites[i].capacity * perCapacity;
      capped[i] = true;
    }
    if (excess === 0) return;
    let open = 0;
    let openCapacity = 0;
    for (let i = 0; i < sites.length; i++) {
      if (capped[i]) continue;
      open += weights[i];
      openCapacity += sites[i].capacity;
    }
    if (openCapacity === 0) return;
    for (let i = 0; i < sites.length; i++) {
      if (!capped[i]) weights[i] += open > 0 ? (excess * weights[i]) / open : (excess * sites[i].capacity) / openCapacity;
    }
  }
}

export const leastBusy: SitePolicy = (name, candidates, family, snapshot, _client, env) => {
  const sites = usable(candidates, family, snapshot);
  if (sites.length === 0) return undefined;
  const now = env.now();
  const memory = env.memory;
  const perAnswer = memory !== undefined ? (name.pool?.loadPerAnswer ?? 0) : 0;
  let index = 0;
  let utilizations: (number | undefined)[] | undefined;
  if (sites.length > 1) {
    utilizations = [];
    const weights: number[] = [];
    headroomWeights(sites, snapshot, now, perAnswer, memory, weights, utilizations);
    env.observeDraw?.(sites, weights);
    index = weightedIndex(weights, drawFor(name, family, env));
  }
  const chosen = sites[index];
  if (perAnswer > 0) memory!.recordAnswer(chosen, now);
  if ((name.pool?.answers ?? 1) <= 1) return oneSite(chosen, LEAST_BUSY);
  // More answers: the rest by utilization, lowest first (unknown last); ties in the order that
  // follows the drawn site, cyclically, so equal sites share the later places evenly too.
  const n = sites.length;
  const order = sites.map((s, i) => ({ s, u: utilizations?.[i] ?? Infinity, after: (i - index - 1 + n) % n }));
  order.sort((a, b) => a.u - b.u || a.after - b.after);
  return answerWith(name, chosen, order.map((o) => o.s), LEAST_BUSY);
};

