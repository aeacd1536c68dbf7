/**
 * Store contents -> the SiteStates a snapshot holds. Pure (contents, now, options): the same
 * function runs in every nameserver, in `status`, and in tests.
 *
 * How several probers' views combine (docs/state.md):
 * - A prober is live while its heartbeat is younger than `staleAfterMs`. Only live probers vote,
 *   so a dead prober neither freezes nor flips the answers.
 * - A site is down when a strict majority of the live probers that have a view of it say down
 *   (a tie keeps it up: one prober's bad network path must not take a site out), or when at
 *   least half of them saw a decisive failure (connection refused, a bad status: the site's own
 *   "no", which a lossy path does not produce), so one faulty prober of two cannot hold a dead
 *   site in the answers. An odd number of live probers avoids ties; the follower warns on an
 *   even one.
 * - Load and utilization are the median of the voters' values; RTT the lowest.
 * - When no prober is live at all, the last views of the probers that were live last (heartbeats
 *   within `staleAfterMs` of the newest one) are used as they are (fail static: keep the last
 *   known state) and `stale` says so.
 * - An operator's forced state (drain) overrides the vote until it expires.
 */
import type { SiteState } from './snapshot.js';
import type { ForcedState, ProbeView, StoreContents } from './types.js';

export interface CombineOptions {
  /** A prober whose heartbeat is older than this no longer votes. */
  readonly staleAfterMs: number;
  /**
   * The moment prober liveness is judged at (default: now). A nameserver cut off from the store
   * passes the last moment it heard from it, so the voters stay as they were (fail static).
   */
  readonly livenessAt?: number;
}

export interface Combined {
  readonly sites: Map<string, SiteState>;
  readonly liveProbers: readonly string[];
  /** Probers are known but none is live: the views are the last known ones. */
  readonly stale: boolean;
}

export const DEFAULT_STALE_AFTER_MS = 5000;

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The warning for a live prober count that allows ties (undefined: none needed). */
export function quorumWarning(liveCount: number): string | undefined {
  if (liveCount === 0 || liveCount % 2 === 1) return undefined;
  return `${liveCount} live probers, an even number: a tie of timeouts keeps a site up (decisive failures seen by half still take it down); run an odd number`;
}

export function liveProbers(contents: StoreContents, now: number, staleAfterMs: number): string[] {
  const live: string[] = [];
  for (const [id, info] of contents.probers) if (now - info.heartbeatAt <= staleAfterMs) live.push(id);
  return live.sort();
}

/** The probers that were live together most recently (for the fail-static fallback). */
function lastLiveProbers(contents: StoreContents, staleAfterMs: number): string[] {
  if (contents.probers.size === 0) return [...contents.views.keys()].sort();
  const newest = Math.max(...[...contents.probers.values()].map((p) => p.heartbeatAt));
  return liveProbers(contents, newest, staleAfterMs);
}

/** Who votes at `now`: the live probers, or (none live) the last ones that were (fail static). */
export interface Voters {
  readonly live: readonly string[];
  readonly stale: boolean;
  /** Sorted; a site's views are taken in this order (the reason shown is the first one's). */
  readonly voters: readonly string[];
}

export function votersOf(contents: StoreContents, now: number, options: CombineOptions): Voters {
  const live = liveProbers(contents, options.livenessAt ?? now, options.staleAfterMs);
  const stale = live.length === 0 && contents.views.size > 0;
  return { live, stale, voters: stale ? lastLiveProbers(contents, options.staleAfterMs) : live };
}

export function combine(contents: StoreContents, now: number, options: CombineOptions): Combined {
  const { live, stale, voters } = votersOf(contents, now, options);

  const perSite = new Map<string, ProbeView[]>();
  for (const prober of voters) {
    const views = contents.views.get(prober);
    if (!views) continue;
    for (const [key, view] of views) {
      let list = perSite.get(key);
      if (!list) perSite.set(key, (list = []));
      list.push(view);
    }
  }

  const sites = new Map<string, SiteState>();
  for (const [key, views] of perSite) sites.set(key, vote(views, voters.length > 1));
  for (const [key, forced] of contents.forced) {
    if (forced.until <= now) continue;
    sites.set(key, withForced(sites.get(key), forced));
  }
  return { sites, liveProbers: live, stale };
}

/**
 * One site's state, exactly as `combine()` computes it for `key` (undefined: no voter has a
 * view of it and it is not forced, so combine() would not list it). A site's state depends only
 * on the voters, their views of that key, the forced state of that key and `now`; the follower
 * re-combines only the sites a notice touched this way.
 */
export function combineSite(contents: StoreContents, key: string, voters: Voters, now: number): SiteState | undefined {
  let views: ProbeView[] | undefined;
  for (const prober of voters.voters) {
    const view = contents.views.get(prober)?.get(key);
    if (view !== undefined) (views ??= []).push(view);
  }
  const base = views === undefined ? undefined : vote(views, voters.voters.length > 1);
  const forced = contents.forced.get(key);
  if (forced === undefined || forced.until <= now) return base;
  return withForced(base, forced);
}

function withForced(base: SiteState | undefined, forced: ForcedState): SiteState {
  return {
    ...(base ?? {}),
    up: forced.state === 'up',
    reason: `${forced.state === 'down' ? 'drained' : 'forced up'} by ${forced.by}: ${forced.reason}`,
    forced: { state: forced.state, by: forced.by, reason: forced.reason, until: forced.until },
  };
}

function vote(views: ProbeView[], several: boolean): SiteState {
  const downs = views.filter((v) => !v.up);
  const decisiveDowns = downs.filter((v) => v.decisive === true).length;
  const up = !(downs.length * 2 > views.length || (decisiveDowns > 0 && decisiveDowns * 2 >= views.length));
  const loads = views.flatMap((v) => (v.load === undefined ? [] : [v.load]));
  const utils = views.flatMap((v) => (v.utilization === undefined ? [] : [v.utilization]));
  const rtts = views.flatMap((v) => (v.rttMs === undefined ? [] : [v.rttMs]));
  const loadAts = views.flatMap((v) => (v.loadAt === undefined ? [] : [v.loadAt]));
  let reason: string;
  if (!several) reason = views[0].reason;
  else if (up) reason = downs.length === 0 ? views[0].reason : `up: ${views.length - downs.length}/${views.length} probers (others: ${downs[0].reason})`;
  else reason = `${downs.length}/${views.length} probers${downs.length * 2 > views.length ? '' : ', decisive'}: ${downs[0].reason}`;
  const state: { -readonly [K in keyof SiteState]: SiteState[K] } = { up, reason, checkedAt: Math.max(...views.map((v) => v.checkedAt)) };
  const load = median(loads);
  if (load !== undefined) state.load = load;
  const utilization = median(utils);
  if (utilization !== undefined) state.utilization = utilization;
  if (rtts.length > 0) state.rttMs = Math.min(...rtts);
  if (loadAts.length > 0) state.loadAt = Math.max(...loadAts);
  return state;
}
