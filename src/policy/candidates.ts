/** Small helpers shared by the policies: which candidates may be answered, and answer lists. */
import type { DynamicName, SiteModel } from '../model/zone-model.js';
import { stateOf, type StateSnapshot } from '../state/snapshot.js';
import { hasFamily, type Family } from './types.js';
import type { Selection } from '../model/selection.js';

/** Candidates that are up and have an address of the asked family, in their configured order. */
export function usable(candidates: readonly SiteModel[], family: Family, snapshot: StateSnapshot): SiteModel[] {
  const out: SiteModel[] = [];
  for (const site of candidates) if (hasFamily(site, family) && stateOf(snapshot, site.key).up) out.push(site);
  return out;
}

/**
 * The one-site selection for (site, constant reason), built once and shared: a Pool or Site Name
 * answered with one site then costs no allocation per query (`node --expose-gc
 * bench/qps/handler.mjs` counts the GCs per 1,000,000 pool queries). Callers never mutate
 * a Selection (select.ts copies to add a scope), so sharing is safe; `reason` must come from a
 * small fixed set, as every caller's does.
 */
const oneSiteSelections = new WeakMap<SiteModel, Map<string, Selection>>();
export function oneSite(site: SiteModel, reason: string): Selection {
  let byReason = oneSiteSelections.get(site);
  if (byReason === undefined) oneSiteSelections.set(site, (byReason = new Map()));
  let selection = byReason.get(reason);
  if (selection === undefined) byReason.set(reason, (selection = Object.freeze({ kind: 'sites', sites: Object.freeze([site]), reason })));
  return selection;
}

/**
 * A `sites` selection: the chosen site first, then (when the pool's `answers` asks for more than
 * one) the other sites of `others`, read cyclically from index `from`, up to that many. Policies
 * that draw start right after the drawn site, so on equal terms every site is as often second as
 * first: reading from the top would make the first-listed site everyone's second answer.
 */
export function answerWith(name: DynamicName, chosen: SiteModel, others: readonly SiteModel[], reason: string, from = 0): Selection {
  const count = name.pool?.answers ?? 1;
  if (count <= 1 || others.length <= 1) return oneSite(chosen, reason);
  const sites = [chosen];
  for (let j = 0; j < others.length && sites.length < count; j++) {
    const site = others[(from + j) % others.length];
    if (site !== chosen) sites.push(site);
  }
  return { kind: 'sites', sites, reason };
}

/** Picks index i with probability weights[i] / sum(weights); `draw` is uniform in [0, 1). */
export function weightedIndex(weights: readonly number[], draw: number): number {
  let total = 0;
  for (const w of weights) total += w;
  if (!(total > 0)) return Math.min(weights.length - 1, Math.floor(draw * weights.length));
  let x = draw * total;
  for (let i = 0; i < weights.length; i++) {
    x -= weights[i];
    if (x < 0) return i;
  }
  return weights.length - 1;
}
