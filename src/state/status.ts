/**
 * The one view of every site's state. `GET /v1/status`, `sitedns status` (table and --json),
 * `sitedns probe --once` and the candidates of `/v1/explain` all render it, so they cannot
 * disagree about a site. Pure: zones + state snapshot + store side + now -> view.
 *
 * The view describes the snapshot being answered from, not a fresher truth: a drain whose time
 * has passed but that the snapshot still holds stays `drained` (answers still avoid the site
 * until the follower's next re-evaluation, or, answering from the last-known-state file, until
 * the store is back), marked `expired`.
 */
import type { SiteModel, ZoneSet } from '../model/zone-model.js';
import { combine, liveProbers, quorumWarning, DEFAULT_STALE_AFTER_MS } from './combine.js';
import { loadIsStale, UNKNOWN_SITE_STATE, type SiteState, type StateSnapshot } from './snapshot.js';
import type { StoreContents } from './types.js';

/**
 * - `unknown`: no monitor has a verdict yet; answers count the site as up (docs/state.md).
 * - `drained` / `forced-up`: an operator's forced state overrides the probes until it expires.
 */
export const SITE_CONDITIONS = ['up', 'down', 'drained', 'forced-up', 'unknown'] as const;
export type SiteCondition = (typeof SITE_CONDITIONS)[number];

export interface ForcedView {
  readonly state: 'down' | 'up';
  readonly by: string;
  readonly reason: string;
  /** Expiry (ms since the epoch). */
  readonly until: number;
  /** `until` has passed but the snapshot still holds the forced state. */
  readonly expired: boolean;
}

export interface SiteView {
  /** The site key `zone/id`. */
  readonly site: string;
  readonly state: SiteCondition;
  /** Whether answers may use the site (an unknown site counts as up). */
  readonly up: boolean;
  readonly load?: number;
  readonly utilization?: number;
  /** The load is older than the site's limit, so policies treat it as unknown (set only when the zones are known). */
  readonly loadStale?: boolean;
  readonly rttMs?: number;
  /** Last check (ms since the epoch). */
  readonly checkedAt?: number;
  /** The probe's reason, or who drained the site and why. */
  readonly reason: string;
  readonly forced?: ForcedView;
}

export interface ProberRow {
  readonly id: string;
  readonly live: boolean;
  readonly heartbeatAgeMs: number;
  readonly host?: string;
  readonly pid?: number;
}

export interface StoreView {
  readonly kind: string;
  readonly connected: boolean;
  /** Age of the state answered from: since the newest prober heartbeat seen (a nameserver following a store only). */
  readonly ageMs?: number;
  /** False while the state is not known to be current (no live prober: the last known state). */
  readonly fresh: boolean;
  /** This nameserver probes the sites itself (no live prober for --stale-after); set while it does. */
  readonly selfProbing?: boolean;
}

export interface StatusReport {
  readonly store: StoreView;
  readonly probers: readonly ProberRow[];
  readonly sites: readonly SiteView[];
  /** Problems an operator should fix (an even number of live probers). */
  readonly warnings: readonly string[];
  /** The clock the view was computed at (ms since the epoch): ages in the table are relative to it. */
  readonly now: number;
}

/** Where the state comes from: the store's kind and health, and its contents for the probers. */
export interface StoreSide {
  readonly kind: string;
  readonly connected: boolean;
  readonly ageMs?: number;
  /** The store's contents (probers); none: no prober is listed. */
  readonly contents?: StoreContents;
  readonly staleAfterMs?: number;
  readonly selfProbing?: boolean;
}

/** One site's view. `site` (its model) is needed to judge a load stale. */
export function siteView(key: string, state: SiteState | undefined, site: SiteModel | undefined, now: number): SiteView {
  const s = state ?? UNKNOWN_SITE_STATE;
  const hasLoad = s.load !== undefined || s.utilization !== undefined;
  // In the documented field order (docs/state.md), which `status --json` prints; no undefined values.
  const view: SiteView = {
    site: key,
    state: siteCondition(state),
    up: s.up,
    ...(s.load !== undefined && { load: s.load }),
    ...(s.utilization !== undefined && { utilization: s.utilization }),
    ...(hasLoad && site !== undefined && { loadStale: loadIsStale(s, site.loadStaleMs, now) }),
    ...(s.rttMs !== undefined && { rttMs: s.rttMs }),
    ...(s.checkedAt !== undefined && { checkedAt: s.checkedAt }),
    reason: s.reason ?? '',
    ...(s.forced && { forced: { ...s.forced, expired: s.forced.until <= now } }),
  };
  return view;
}

/** A site's condition from its state (undefined: no state known yet). */
export function siteCondition(state: SiteState | undefined): SiteCondition {
  if (state === undefined) return 'unknown';
  if (state.forced) return state.forced.state === 'down' ? 'drained' : 'forced-up';
  return state.up ? 'up' : 'down';
}

/**
 * Every site of the zones (when known) and every site the snapshot mentions, sorted by key, with
 * the store and its probers.
 */
export function statusView(zones: ZoneSet | undefined, snapshot: Pick<StateSnapshot, 'sites' | 'fresh'>, store: StoreSide, now: number): StatusReport {
  const models = new Map<string, SiteModel>();
  if (zones) for (const zone of zones.zones.values()) for (const site of zone.sites) models.set(site.key, site);
  const keys = [...new Set([...models.keys(), ...snapshot.sites.keys()])].sort();
  const known = store.ageMs !== undefined && Number.isFinite(store.ageMs);
  const probers = store.contents ? proberRows(store.contents, now, store.staleAfterMs) : [];
  const quorum = quorumWarning(probers.filter((p) => p.live).length);
  return {
    store: { kind: store.kind, connected: store.connected, ...(known && { ageMs: store.ageMs }), fresh: snapshot.fresh, ...(store.selfProbing === true && { selfProbing: true }) },
    probers,
    sites: keys.map((key) => siteView(key, snapshot.sites.get(key), models.get(key), now)),
    warnings: quorum === undefined ? [] : [quorum],
    now,
  };
}

function proberRows(contents: StoreContents, now: number, staleAfterMs = DEFAULT_STALE_AFTER_MS): ProberRow[] {
  const live = new Set(liveProbers(contents, now, staleAfterMs));
  return [...contents.probers.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((p) => ({ id: p.id, live: live.has(p.id), heartbeatAgeMs: now - p.heartbeatAt, host: p.host, pid: p.pid }));
}

/** The view straight from the store's contents (`sitedns status --redis`, `probe --once`). */
export function statusFromContents(contents: StoreContents, now: number, kind: string, zones?: ZoneSet, staleAfterMs = DEFAULT_STALE_AFTER_MS): StatusReport {
  const combined = combine(contents, now, { staleAfterMs });
  return statusView(zones, { sites: combined.sites, fresh: !combined.stale }, { kind, connected: true, contents, staleAfterMs }, now);
}
