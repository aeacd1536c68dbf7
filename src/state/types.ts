/**
 * What the state store holds, independent of where it lives (memory or Redis). Monitors write
 * these records; `combine.ts` turns them into the SiteStates of a snapshot. The Redis encoding of
 * each record is defined in `keys.ts` (documented in docs/state.md).
 */

/** One prober's verdict on one site (written after every anti-flap step that changed something). */
export interface ProbeView {
  readonly up: boolean;
  /** Site load in its own units (from the probe body/header or a pushed report). */
  readonly load?: number;
  /** load / capacity. */
  readonly utilization?: number;
  readonly rttMs?: number;
  /** When this prober last checked the site (ms since the epoch). */
  readonly checkedAt: number;
  readonly loadAt?: number;
  /** When `up` last changed. */
  readonly since: number;
  readonly reason: string;
  /** Down on the site's own word (refused, a bad status), not silence: half the voters suffice. */
  readonly decisive?: boolean;
}

/** An operator's drain (`down`) or force-up, expiring by itself at `until`. */
export interface ForcedState {
  readonly state: 'down' | 'up';
  readonly by: string;
  readonly reason: string;
  /** Expiry (ms since the epoch). */
  readonly until: number;
  /** When it was set. */
  readonly at: number;
}

/** An undrain's record (state/undrained.ts): a drain set before `at` is not written back. */
export interface Undrained {
  /** When the undrain was made (ms since the epoch). */
  readonly at: number;
  /** When the record may be pruned: no drain it overrules is unexpired then. */
  readonly until: number;
}

/** What writing one forced state back did: written, one already there, or the site undrained since. */
export type RestoreResult = 'written' | 'present' | 'undrained';

/** A load report pushed by the site itself (seed 002); doubles as a liveness heartbeat. */
export interface LoadReport {
  readonly load: number;
  readonly at: number;
  readonly by?: string;
}

/** A prober's presence: it rewrites `heartbeatAt` every heartbeat interval. */
export interface ProberInfo {
  readonly id: string;
  readonly heartbeatAt: number;
  readonly startedAt: number;
  readonly host?: string;
  readonly pid?: number;
  /** Heartbeat interval the prober promised (ms). */
  readonly intervalMs?: number;
}

/** An operator action, or a load report event, in the audit trail (state/audit.ts). */
export type AuditAction = 'drain' | 'force-up' | 'undrain' | 'report' | 'report-refused';

/** Operator actions and report events keep separate trails: reports cannot evict a drain. */
export type AuditTrailName = 'operator' | 'reports';

export interface AuditEntry {
  /** When (ms since the epoch). */
  readonly at: number;
  readonly action: AuditAction;
  /** The site key (`zone/site`), or for a refused report the site as the request named it. */
  readonly site: string;
  /** Who: the operator (`--by`, default user@host; the API's `by`, default admin@<client address>) or the reporter. */
  readonly by: string;
  /** From where: `admin <client address>` (the admin API) or `cli <host>/<pid>` (the CLI on Redis). */
  readonly from: string;
  /** drain and force-up: the forced state set. */
  readonly state?: 'down' | 'up';
  /** drain and force-up: when it expires. */
  readonly until?: number;
  /** Why: the operator's reason; for a report, first report or the reporter it replaced; for a refusal, the refusal. */
  readonly reason?: string;
  /** report: the load reported. */
  readonly load?: number;
  /** undrain: the forced state it ended (absent when there was none). */
  readonly ended?: { readonly state: 'down' | 'up'; readonly by: string; readonly reason: string; readonly until: number };
}

/**
 * Hysteresis (seed 002): the current site of one hysteresis candidate list, shared by every
 * nameserver of the store. Written by nameservers (policy/shared-current-sites.ts); no time or writer in
 * it, so two nameservers that decide the same move write the same value.
 */
export interface CurrentSite {
  /** The site id. */
  readonly site: string;
}

/** Everything in the store, as read in one go (on connect and on every safety-net re-read). */
export interface StoreContents {
  readonly probers: Map<string, ProberInfo>;
  /** prober id -> site key -> view */
  readonly views: Map<string, Map<string, ProbeView>>;
  readonly forced: Map<string, ForcedState>;
  readonly reports: Map<string, LoadReport>;
  /** Hysteresis list key (`<pool name>` or `<pool name>/<group id>`) -> its current site. */
  readonly current: Map<string, CurrentSite>;
}

export function emptyContents(): StoreContents {
  return { probers: new Map(), views: new Map(), forced: new Map(), reports: new Map(), current: new Map() };
}

/** A change notice (Redis pub/sub or in-process): carries the new value, so no re-read is needed. */
export type Notice =
  | { readonly t: 'view'; readonly prober: string; readonly key: string; readonly view: ProbeView | null }
  | { readonly t: 'forced'; readonly key: string; readonly forced: ForcedState | null }
  | { readonly t: 'report'; readonly key: string; readonly report: LoadReport }
  | { readonly t: 'prober'; readonly prober: string; readonly info: ProberInfo | null }
  | { readonly t: 'current'; readonly key: string; readonly current: CurrentSite };

/** Applies a notice to contents in place (callers own their copy). */
export function applyNotice(contents: StoreContents, notice: Notice): void {
  switch (notice.t) {
    case 'view': {
      let views = contents.views.get(notice.prober);
      if (!views) contents.views.set(notice.prober, (views = new Map()));
      if (notice.view) views.set(notice.key, notice.view);
      else views.delete(notice.key);
      return;
    }
    case 'forced':
      if (notice.forced) contents.forced.set(notice.key, notice.forced);
      else contents.forced.delete(notice.key);
      return;
    case 'report':
      contents.reports.set(notice.key, notice.report);
      return;
    case 'current':
      contents.current.set(notice.key, notice.current);
      return;
    case 'prober':
      if (notice.info) contents.probers.set(notice.prober, notice.info);
      else {
        contents.probers.delete(notice.prober);
        contents.views.delete(notice.prober);
      }
      return;
  }
}

/**
 * The one interface both stores implement: the embedded default (memory) and Redis. Writers are
 * the prober (views, heartbeats), operators (forced states), sites (load reports) and nameservers
 * (hysteresis current sites); readers are nameservers (`follower.ts`) and the prober itself
 * (pushed reports).
 */
export interface StateStore {
  readonly kind: 'memory' | 'redis';
  /** Resolves once the store is usable, or rejects after `timeoutMs` (Redis down). */
  ready(timeoutMs: number): Promise<void>;
  readAll(): Promise<StoreContents>;
  writeView(prober: string, key: string, view: ProbeView | null): Promise<void>;
  /** `announce` (a prober's first beat) also publishes a notice, so readers count it at once. */
  heartbeat(info: ProberInfo, announce?: boolean): Promise<void>;
  /** A prober leaving cleanly: its heartbeat and views go. */
  removeProber(id: string): Promise<void>;
  /** Sets a forced state; null (undrain) also leaves the site's undrain record at `now` (state/undrained.ts), in the same step. */
  setForced(key: string, forced: ForcedState | null, now?: number): Promise<void>;
  /** Writes a forced state back (with its notice) unless the site has one already or was undrained since it was set. */
  restoreForced(key: string, forced: ForcedState): Promise<RestoreResult>;
  report(key: string, report: LoadReport): Promise<void>;
  /** Appends to the entry's trail, which keeps its last AUDIT_TRAIL_LENGTH entries (state/audit.ts). */
  appendAudit(entry: AuditEntry): Promise<void>;
  /** Both audit trails, oldest first. */
  readAudit(): Promise<AuditEntry[]>;
  setCurrent(key: string, current: CurrentSite): Promise<void>;
  /**
   * Notices as they happen; `onConnection(true)` after every (re)connect (re-read then);
   * `onLoss()` when the store is found to have lost its contents since this process last saw
   * them (keys.ts, epoch), before that reconnect's `onConnection(true)` or that read's result:
   * whoever holds state writes it back then. The memory store never loses its contents.
   */
  subscribe(onNotice: (notice: Notice) => void, onConnection?: (connected: boolean) => void, onLoss?: () => void): () => void;
  /** The contents' epoch as last seen (undefined: not known yet, or a memory store). */
  epoch(): string | undefined;
  /** Takes `epoch` (a last-known-state file's) as the last one seen while none is known. */
  assumeEpoch(epoch: string): void;
  connected(): boolean;
  close(): Promise<void>;
}
