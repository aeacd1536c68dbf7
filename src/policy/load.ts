/**
 * How policies read a site's load from the snapshot: utilization (load / capacity), or undefined
 * when the load is unknown (never reported) or stale (older than the site's `loadStaleMs`, by the
 * injected clock). Unknown and stale loads are treated alike by every policy: the site stays a
 * candidate, but no decision rests on a number nobody measured recently.
 */
import type { SiteModel } from '../model/zone-model.js';
import { loadIsStale, measuredAt, type SiteState } from '../state/snapshot.js';

export function utilizationOf(site: SiteModel, state: SiteState, now: number): number | undefined {
  const utilization = state.utilization ?? (state.load !== undefined ? state.load / site.capacity : undefined);
  if (utilization === undefined || !Number.isFinite(utilization)) return undefined;
  // A hand-built or embedded state without timestamps is taken as current.
  if (loadIsStale(state, site.loadStaleMs, now)) return undefined;
  return utilization < 0 ? 0 : utilization;
}

/**
 * The time window around `now` in which utilizationOf gives the same answers for these sites:
 * a load is fresh while `now - measuredAt <= loadStaleMs` and stale after, so the answers hold
 * for `after < t <= until`, where `until` is the earliest instant a fresh load turns stale and
 * `after` the latest instant a stale one did. Sites without a timestamped load bound nothing
 * (both ends infinite). The prepared selection (prepared.ts) reuses its weights inside it.
 */
export function loadWindow(sites: readonly SiteModel[], states: readonly SiteState[], now: number, out: { after: number; until: number }): void {
  let after = -Infinity;
  let until = Infinity;
  for (let i = 0; i < sites.length; i++) {
    const at = measuredAt(states[i]);
    if (at === undefined) continue;
    const edge = at + sites[i].loadStaleMs;
    if (now - at > sites[i].loadStaleMs) after = Math.max(after, edge);
    else until = Math.min(until, edge);
  }
  out.after = after;
  out.until = until;
}
