/**
 * Site state as the nameserver sees it: an immutable snapshot, replaced as a whole by one
 * assignment whenever the state store learns something (habit 3: a query never awaits Redis).
 * Monitors (probes, pushed reports, drains) and resolvers (policies) meet only here.
 */

export interface SiteState {
  /** Whether answers may use this site. */
  readonly up: boolean;
  /** Last reported or probed load, in the site's own units (utilization = load / capacity). */
  readonly load?: number;
  readonly utilization?: number;
  /** Probe round-trip time in milliseconds (seed 003: a usable load signal). */
  readonly rttMs?: number;
  /** When the state was last confirmed (ms since the epoch). */
  readonly checkedAt?: number;
  /** When `load` was measured (ms since the epoch); policies may distrust old loads. */
  readonly loadAt?: number;
  /** Why the site is in this state (probe error, drain reason, ...). */
  readonly reason?: string;
  /** Set when an operator forced the state (drain): who, why, until when. */
  readonly forced?: { readonly state: 'down' | 'up'; readonly by: string; readonly reason: string; readonly until: number };
}

export interface StateSnapshot {
  /** Site key (`zone/site`) -> state. A site not listed counts as up with unknown load. */
  readonly sites: ReadonlyMap<string, SiteState>;
  /** Increases with every new snapshot. */
  readonly version: number;
  /** When the snapshot was built (ms since the epoch). */
  readonly takenAt: number;
  /** False until a first probe round finished (or the start-up limit passed), and while state is stale. */
  readonly fresh: boolean;
  /**
   * Hysteresis (seed 002): the current site of each hysteresis candidate list, decided with these
   * site states (policy/hysteresis.ts `decideCurrentSites`), list key -> site id. Decided once
   * where the snapshot is built, so every answerer that reads the snapshot answers the same site.
   */
  readonly currentSites: ReadonlyMap<string, string>;
}

/** Before any probe has run, or for a site no monitor knows: up (never "all down" for lack of data), load unknown. */
export const UNKNOWN_SITE_STATE: SiteState = Object.freeze({ up: true, reason: 'not probed' });

/** No hysteresis list has a current site. */
export const NO_CURRENT_SITES: ReadonlyMap<string, string> = new Map();

export const EMPTY_SNAPSHOT: StateSnapshot = Object.freeze({ sites: new Map(), version: 0, takenAt: 0, fresh: false, currentSites: NO_CURRENT_SITES });

export function stateOf(snapshot: StateSnapshot, key: string): SiteState {
  return snapshot.sites.get(key) ?? UNKNOWN_SITE_STATE;
}

/** When the state's load was measured: `loadAt`, else `checkedAt` (undefined: taken as current). */
export function measuredAt(state: SiteState): number | undefined {
  return state.loadAt ?? state.checkedAt;
}

/**
 * A load measured longer ago than `limitMs` (the site's `loadStaleMs`) is stale: policies treat
 * it exactly like an unknown load (docs/policies.md "Shared rules"), and status says so.
 */
export function loadIsStale(state: SiteState, limitMs: number, now: number): boolean {
  const at = measuredAt(state);
  return at !== undefined && now - at > limitMs;
}

let versionCounter = 0;
export function makeSnapshot(sites: ReadonlyMap<string, SiteState>, fresh: boolean, now = Date.now(), currentSites: ReadonlyMap<string, string> = NO_CURRENT_SITES): StateSnapshot {
  return Object.freeze({ sites, version: ++versionCounter, takenAt: now, fresh, currentSites });
}

/**
 * How a snapshot differs from the one it replaced, when the follower knows (an incremental
 * recompute): the UDP threads are then sent only these sites. Kept beside the
 * snapshot, not in it, so a snapshot is the same value wherever it is read.
 */
export interface SnapshotDelta {
  /** The version of the snapshot this one was derived from. */
  readonly from: number;
  /** Keys whose state differs (a key missing from `sites` was removed). */
  readonly changed: ReadonlySet<string>;
}

const deltas = new WeakMap<StateSnapshot, SnapshotDelta>();

export function recordDelta(snapshot: StateSnapshot, delta: SnapshotDelta): void {
  deltas.set(snapshot, delta);
}

/** The delta recorded for `snapshot`, or undefined when it must be taken as a whole. */
export function deltaOf(snapshot: StateSnapshot): SnapshotDelta | undefined {
  return deltas.get(snapshot);
}
