/**
 * Keeps a nameserver's state snapshot true: reads the store in full on (re)connect and every
 * `resyncMs` (the safety net), applies change notices as they come, and after each change swaps
 * the runtime's state with ONE assignment (Runtime.publishState: a query never awaits the store;
 * UDP threads receive each snapshot as a subscriber).
 *
 * Fail static: while the store is unreachable, or no prober is heart-beating, the last known
 * state keeps being answered; each condition is logged once when it starts and once when it
 * ends, and shows in `sitedns_state_store_connected` and `sitedns_state_age_seconds`. With no
 * live prober for `staleAfterMs` while the store answers, the nameserver probes for itself
 * (self-probing.ts) until a prober is back.
 *
 * Self-healing: a store found without its contents (keys.ts, epoch) gets back the drains and
 * force-ups this nameserver holds, and the probers' views are carried over until they rewrite
 * them; on every reconnect the drains it holds that the store lacks and nobody undrained are
 * written back too; state read from the last-known-state file is carried over the same way after the first
 * read, for the sites the store has no state of.
 *
 * Incremental recomputes: with 10,000 probed sites a full recompute (combine() over every
 * site) once per load batch, up to 20 a second while probe results flow, costs about a quarter of
 * the process's CPU (docs/benchmarks.md, "10,000 probed sites"). A site's state
 * depends only on the voters, the voters' views of that site key, its forced state and the time
 * (combine.ts), so a recompute after view notices only re-combines the keys those notices named
 * and carries every other state over from the last combined map, provided the voters are the
 * same and no forced state expired since. The tick takes the same path: time changes a site's
 * state only through prober liveness (the voters) and forced-state expiry, both checked, so a
 * tick with neither is O(probers), not O(sites); with either it runs in full. Also in full:
 * every re-read, store outages and reconnects (the carry-over window), and any notice other
 * than a view (probers, forced states).
 */
import { probersLive, siteState, siteUp, siteUtilization, stateAgeSeconds, stateStoreConnected } from '../metrics/definitions.js';
import type { SiteModel, ZoneSet } from '../model/zone-model.js';
import type { Runtime } from './runtime.js';
import type { Logger } from '../util/logger.js';
import { combine, combineSite, liveProbers, quorumWarning, votersOf, DEFAULT_STALE_AFTER_MS, type Voters } from './combine.js';
import { makeSnapshot, recordDelta, stateOf, type SiteState, type StateSnapshot } from './snapshot.js';
import { SelfProbing, type SelfProber } from './self-probing.js';
import { readStateFile, type StateFileWriter } from './state-file.js';
import { siteCondition, SITE_CONDITIONS } from './status.js';
import { applyNotice, emptyContents, type CurrentSite, type ForcedState, type Notice, type StateStore, type StoreContents } from './types.js';

export interface FollowerOptions {
  store: StateStore;
  runtime: Runtime;
  logger: Logger;
  staleAfterMs?: number;
  resyncMs?: number;
  tickMs?: number;
  stateFile?: StateFileWriter;
  /** The clock (tests drive it); default Date.now. */
  now?: () => number;
  /** Probes for this nameserver while no prober is live (self-probing.ts); none: fail static only. */
  selfProber?: SelfProber;
  /** The hysteresis current sites' rule (policy/shared-current-sites.ts); none: no current sites are kept. */
  currentSites?: CurrentSitesRule;
}

/**
 * The hysteresis current sites for the site states at `now`, from the store's records (`stored`)
 * and this nameserver's last published ones (`own`), and which of them to write to the store.
 * Given to the follower (state/ is below policy/, where the rule lives).
 */
export type CurrentSitesRule = (
  zones: ZoneSet,
  stored: ReadonlyMap<string, CurrentSite>,
  own: ReadonlyMap<string, string>,
  states: ReadonlyMap<string, SiteState>,
  now: number,
) => { readonly current: Map<string, string>; readonly writes: Map<string, string> };

const NO_CURRENT_SITES: CurrentSitesRule = () => ({ current: new Map(), writes: new Map() });

/**
 * 'changes': re-combine what changed since the last recompute (the sites view notices named),
 * falling back to a full one when that would not give the same result; 'full': every site.
 */
export type RecomputeMode = 'full' | 'changes';

/** What the last combined map was computed from, as far as untouched sites care. */
interface CombinedBase {
  readonly voters: readonly string[];
  readonly stale: boolean;
  /** The earliest drain/force-up expiry still ahead at the time (Infinity: none). */
  readonly nextExpiry: number;
}

/** Load-only changes are applied at most this late (up/down changes at once). */
export const LOAD_BATCH_MS = 50;

/** How long after a reconnect views not yet rewritten are carried over from before the outage. */
export const CARRY_OVER_MS = 10_000;

function carryOver(current: StoreContents, before: Pick<StoreContents, 'probers' | 'views'>): StoreContents {
  const probers = new Map(before.probers);
  for (const [id, info] of current.probers) probers.set(id, info);
  const views = new Map(before.views);
  for (const [id, mine] of current.views) views.set(id, new Map([...(before.views.get(id) ?? []), ...mine]));
  return { ...current, probers, views };
}

export type StartSource = 'store' | 'state-file' | 'assumed-up';

export class StateFollower {
  private contents: StoreContents = emptyContents();
  private readonly store: StateStore;
  private readonly runtime: Runtime;
  private readonly log: Logger;
  private readonly staleAfterMs: number;
  private readonly resyncMs: number;
  private readonly tickMs: number;
  private readonly stateFile: StateFileWriter | undefined;
  private lastHeardAt = 0;
  private storeUp = false;
  private everRead = false;
  private outageLogged = false;
  private failedReads = 0;
  /** Probers and views when the store last went away (with a live prober). */
  private remembered: Pick<StoreContents, 'probers' | 'views'> | undefined;
  private carryUntil = 0;
  /** Site states read from the last-known-state file (carried over after the first read). */
  private fileSites: ReadonlyMap<string, SiteState> | undefined;
  /** Forced states being written back (taken as in the store by every read until the write-backs are done). */
  private restoring: ReadonlyMap<string, ForcedState> | undefined;
  /** Write-backs running. */
  private writeBacks = 0;
  private firstReadAt = 0;
  /** The newest prober heartbeat seen, kept when its prober leaves (self-probing waits stale-after from it). */
  private newestHeartbeat = 0;
  private readonly selfProbing: SelfProbing | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  private probersStale = false;
  /** The quorum warning last logged (once per change of the live prober count's parity). */
  private quorumWarned: string | undefined;
  /** The site states last swapped in (what recompute compares against). */
  private lastSites: ReadonlyMap<string, SiteState> | null = null;
  /** An urgent recompute waiting for the end of this event-loop turn. */
  private urgentPending: NodeJS.Immediate | undefined;
  /** Site keys named by view notices since the last recompute. */
  private touched = new Set<string>();
  /** Something other than a view changed since the last recompute: the next one is full. */
  private fullNeeded = true;
  /** Null when the next recompute must be full (none yet, or the last one ran on carried-over views). */
  private base: CombinedBase | null = null;
  private readonly now: () => number;
  private readonly currentSitesRule: CurrentSitesRule;
  /** How many recomputes of each kind ran (tests, and a look at the cost). */
  readonly recomputes = { full: 0, incremental: 0 };
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private unsubscribeZones: (() => void) | undefined;

  constructor(options: FollowerOptions) {
    this.store = options.store;
    this.runtime = options.runtime;
    this.log = options.logger.child({ component: 'state' });
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.resyncMs = options.resyncMs ?? 1000;
    this.tickMs = options.tickMs ?? 250;
    this.stateFile = options.stateFile;
    this.now = options.now ?? Date.now;
    this.currentSitesRule = options.currentSites ?? NO_CURRENT_SITES;
    if (options.selfProber) this.selfProbing = new SelfProbing(options.selfProber, this.log, this.staleAfterMs, (urgent) => this.selfVerdict(urgent));
  }

  get connected(): boolean {
    return this.storeUp;
  }

  /** Whether this nameserver probes the sites itself now (no live prober). */
  get selfProbingActive(): boolean {
    return this.selfProbing?.active ?? false;
  }

  /**
   * Age of the state answered from: time since the newest prober heartbeat seen (so it grows
   * when the probers die as well as when the store is unreachable), or since the store last
   * answered when no prober is known.
   */
  ageMs(now = this.now()): number {
    if (this.lastHeardAt === 0) return Infinity;
    let newest = 0;
    for (const p of this.contents.probers.values()) newest = Math.max(newest, p.heartbeatAt);
    return now - (newest > 0 ? Math.min(newest, this.lastHeardAt) : this.lastHeardAt);
  }

  /**
   * Subscribes and reads the store once. When the store is not reachable within `limitMs`, the
   * nameserver starts from the last-known-state file if there is one, else with every site up.
   */
  async start(limitMs: number): Promise<StartSource> {
    stateStoreConnected.set(0);
    this.unsubscribe = this.store.subscribe(
      (notice) => this.apply(notice),
      (connected) => this.connection(connected),
      () => this.contentsLost(),
    );
    // A reload may add, drop or change hysteresis lists: their current sites are decided anew.
    this.unsubscribeZones = this.runtime.subscribeZones(() => this.recompute(this.now(), 'changes'));
    this.timers.push(setInterval(() => void this.resync(), this.resyncMs));
    this.timers.push(setInterval(() => this.tick(), this.tickMs));
    for (const t of this.timers) t.unref?.();
    let storeError: string | undefined;
    try {
      await this.store.ready(limitMs);
      if (await this.resync()) return 'store';
    } catch (error) {
      // Fall through: fail static from the file. The reason is logged with it (an unreachable
      // store and refused credentials call for different fixes).
      storeError = (error as Error).message;
    }
    if (this.everRead) return 'store';
    return this.startFromFile(storeError);
  }

  private startFromFile(storeError: string | undefined): StartSource {
    const path = this.stateFile?.path;
    const loaded = path ? readStateFile(path) : { error: 'disabled' };
    if ('error' in loaded) {
      this.log.warn({ stateFile: path ?? null, why: loaded.error, store: storeError }, 'state store unreachable at start and no last-known-state file: answering with every site up, load unknown');
      return 'assumed-up';
    }
    if (!this.everRead) {
      this.holdFromFile(loaded.sites, loaded.writtenAt, loaded.epoch);
      this.swap(makeSnapshot(loaded.sites, false, this.now(), this.currentSitesFor(loaded.sites, this.now())), 'all');
      this.log.warn({ stateFile: path, writtenAt: new Date(loaded.writtenAt).toISOString(), sites: loaded.sites.size, store: storeError }, 'state store unreachable at start: answering from the last-known-state file');
    }
    return 'state-file';
  }

  /**
   * What the file tells beyond the answers: its states are carried over after the first read for
   * the sites the store has no state of (a Redis back empty, before the probers rewrite), and
   * its drains and force-ups are written back if that store lost its contents since the file's
   * epoch (a store that kept them is the truth: an undrain made meanwhile stands).
   */
  private holdFromFile(sites: ReadonlyMap<string, SiteState>, writtenAt: number, epoch: string | undefined): void {
    this.fileSites = sites;
    for (const [key, state] of sites) if (state.forced) this.contents.forced.set(key, { ...state.forced, at: writtenAt });
    if (epoch !== undefined) this.store.assumeEpoch(epoch);
  }

  /**
   * The store lost its contents (a Redis restarted empty or flushed): write back the drains and
   * force-ups this nameserver holds, and carry the probers' views over until they rewrite them.
   */
  private contentsLost(): void {
    const now = this.now();
    if (this.remembered === undefined && this.contents.views.size > 0) this.rememberViews();
    this.carryUntil = Math.max(this.carryUntil, now + CARRY_OVER_MS);
    this.fullNeeded = true;
    this.writeBack('lost');
  }

  /**
   * Writes back the unexpired drains and force-ups this nameserver holds that the store lacks:
   * never over one already there, never one undrained since it was set (state/undrained.ts), so
   * an undrain made while this nameserver was cut off stands. They count as in the store until
   * every write-back is done (a re-read meanwhile must not answer a drained site), then the
   * store is re-read. 'lost': the store lost its contents (logged whatever was written);
   * 'reconnect': every reconnect, since a Redis restarted from an older snapshot keeps its epoch
   * but not the drains made after it (logged when one was missing).
   */
  private writeBack(why: 'lost' | 'reconnect'): void {
    const now = this.now();
    const held = new Map([...this.contents.forced].filter(([, forced]) => forced.until > now));
    if (why === 'reconnect' && (held.size === 0 || this.writeBacks > 0)) return;
    this.restoring = new Map([...(this.restoring ?? []), ...held]);
    this.writeBacks++;
    void this.restore(held, why).finally(() => {
      if (--this.writeBacks > 0) return;
      this.restoring = undefined;
      void this.resync();
    });
  }

  private async restore(held: ReadonlyMap<string, ForcedState>, why: 'lost' | 'reconnect'): Promise<void> {
    const counts = { written: 0, alreadyThere: 0, undrainedSince: 0, failed: 0 };
    for (const [key, forced] of held) {
      try {
        const result = await this.store.restoreForced(key, forced);
        if (result === 'written') counts.written++;
        else if (result === 'present') counts.alreadyThere++;
        else counts.undrainedSince++;
      } catch {
        counts.failed++;
      }
    }
    const drains = [...held.values()].filter((forced) => forced.state === 'down').length;
    const fields = { drains, forcedUp: held.size - drains, ...counts };
    if (why === 'lost') this.log.warn(fields, 'state store lost its contents: wrote back the drains and force-ups this nameserver held');
    else if (counts.written > 0) this.log.warn(fields, 'state store was missing drains or force-ups this nameserver held (a Redis restarted from an older snapshot?): wrote them back');
  }

  /** Forced states being written back count as in the store until the write-back is done. */
  private takeRestoring(contents: StoreContents): void {
    const restoring = this.restoring;
    if (restoring) for (const [key, forced] of restoring) if (!contents.forced.has(key)) contents.forced.set(key, forced);
  }

  private connection(connected: boolean): void {
    if (connected) {
      if (this.everRead) this.writeBack('reconnect');
      void this.resync();
      return;
    }
    this.markDown();
  }

  private markUp(): void {
    this.lastHeardAt = this.now();
    // A notice the subscriber connection delivers after the command connection closed, or a read
    // answered just before it did, is heard but is no reconnect: the store is up again only once
    // both connections are (the connection listener's resync then marks it).
    if (this.storeUp || !this.store.connected()) return;
    this.storeUp = true;
    this.fullNeeded = true;
    stateStoreConnected.set(1);
    if (this.outageLogged) this.log.info('state store reachable again: following it');
    if (this.everRead) this.carryUntil = this.now() + CARRY_OVER_MS;
    this.outageLogged = false;
  }

  private markDown(): void {
    if (!this.storeUp) return;
    this.storeUp = false;
    this.fullNeeded = true;
    stateStoreConnected.set(0);
    this.outageLogged = true;
    // Remember what the probers said when the store went away.
    if (liveProbers(this.contents, this.lastHeardAt, this.staleAfterMs).length > 0) this.rememberViews();
    this.log.warn({ lastHeardAt: new Date(this.lastHeardAt).toISOString() }, 'state store unreachable: answering from the last known state (logged once)');
    this.recompute();
  }

  /** Keeps the probers and views as they are now for the carry-over (notices mutate `contents` in place after a reconnect, so a copy). */
  private rememberViews(): void {
    this.remembered = { probers: new Map(this.contents.probers), views: new Map([...this.contents.views].map(([id, v]) => [id, new Map(v)])) };
  }

  /** Full re-read (on connect and every few seconds); false when the store did not answer. */
  async resync(): Promise<boolean> {
    if (!this.store.connected()) {
      this.markDown();
      return false;
    }
    try {
      const contents = await this.store.readAll();
      this.takeRestoring(contents);
      this.noteHeartbeats(contents);
      this.contents = contents;
      if (!this.everRead) this.firstReadAt = this.now();
      this.everRead = true;
      this.failedReads = 0;
      this.markUp();
      this.recompute();
      return true;
    } catch {
      // One slow read on a busy machine is not an outage; three in a row (socket still open but
      // Redis not answering, e.g. stopped) are.
      if (++this.failedReads >= 3) this.markDown();
      return false;
    }
  }

  private apply(notice: Notice): void {
    // This nameserver's own write coming back, or another's that says the same: nothing changes.
    if (notice.t === 'current' && this.contents.current.get(notice.key)?.site === notice.current.site) return;
    // Up/down changes, drains and probers coming or going apply at once (the failover path);
    // load-only changes, which arrive with nearly every probe, are batched for up to
    // LOAD_BATCH_MS so a nameserver does not rebuild its snapshot for each one.
    let urgent = notice.t !== 'view' && notice.t !== 'report';
    if (notice.t === 'view') {
      const before = this.contents.views.get(notice.prober)?.get(notice.key);
      urgent = !before || !notice.view || before.up !== notice.view.up;
    }
    if (notice.t === 'prober') {
      // A prober leaving takes its heartbeat out of the store: the last one it wrote counts.
      const info = notice.info ?? this.contents.probers.get(notice.prober);
      if (info && info.heartbeatAt > this.newestHeartbeat) this.newestHeartbeat = info.heartbeatAt;
    }
    applyNotice(this.contents, notice);
    this.markUp();
    if (notice.t === 'report') return; // reports reach answers through the probers' views
    // A view changes the state of the site it names only (combine() groups views by notice.key,
    // as it is, whatever site it names); anything else may change any site.
    if (notice.t === 'view') this.touched.add(notice.key);
    else if (notice.t !== 'current') this.fullNeeded = true; // a current site changes no site state
    this.schedule(urgent);
  }

  /** A verdict of this nameserver's own probes: recomputed in full (self-probing overlays every site). */
  private selfVerdict(urgent: boolean): void {
    this.fullNeeded = true;
    this.schedule(urgent);
  }

  private schedule(urgent: boolean): void {
    if (urgent) {
      // Every verdict that arrives in this event-loop turn joins one recompute, run before the
      // loop reads more input (setImmediate: well under a millisecond later). With 10,000
      // probed sites, one recompute per verdict would redo everything thousands of times.
      this.urgentPending ??= setImmediate(() => {
        this.urgentPending = undefined;
        this.recompute(this.now(), 'changes');
      });
    } else if (!this.batchTimer) {
      this.batchTimer = setTimeout(() => {
        this.batchTimer = undefined;
        this.recompute(this.now(), 'changes');
      }, LOAD_BATCH_MS);
      this.batchTimer.unref?.();
    }
  }

  private tick(): void {
    stateAgeSeconds.set(Number.isFinite(this.ageMs()) ? this.ageMs() / 1000 : -1); // -1: never heard from the store
    // 'changes': in full only when the voters, their staleness or a forced state's expiry changed
    // (with 10,000 sites a full recompute four times a second costs half the follower's CPU).
    this.recompute(this.now(), 'changes');
  }

  /**
   * Recomputes the site states; swaps the snapshot only when something changed. 'changes' (after
   * notices) re-combines only the sites named by view notices since the last recompute when
   * that gives what a full one would (see the module comment), else it runs in full; the tick
   * uses it too. 'full' (re-read, outage) always re-combines every site.
   */
  recompute(now = this.now(), mode: RecomputeMode = 'full'): void {
    if (!this.everRead) return;
    const livenessAt = this.storeUp ? now : this.lastHeardAt;
    const options = { staleAfterMs: this.staleAfterMs, livenessAt };
    let input = this.contents;
    const carrying = now < this.carryUntil && this.remembered !== undefined;
    const carryingFile = now < this.carryUntil && this.fileSites !== undefined;
    if (!carryingFile) this.fileSites = undefined; // the file's states serve the first window after the first read only
    if (carrying) {
      // Just reconnected: a restarted Redis may have come back empty (no persistence) and the
      // probers are still rewriting their views. Views not rewritten yet are carried over from
      // before the outage, so no site flips for lack of data (fail static).
      input = carryOver(input, this.remembered!);
    }
    const voters = votersOf(input, now, options);
    probersLive.set(voters.live.length);
    this.selfProbing?.update(input, voters.live, this.storeUp, this.quietSince(input), now);
    const ownVerdicts = this.selfProbing?.overlaying ?? false;
    const even = quorumWarning(voters.live.length);
    if (even !== this.quorumWarned) {
      this.quorumWarned = even;
      if (even !== undefined) this.log.warn({ probers: voters.live }, even);
    }
    if (voters.stale !== this.probersStale) {
      this.probersStale = voters.stale;
      if (voters.stale) this.log.warn({ staleAfterMs: this.staleAfterMs }, 'no prober heart-beating: answering from the last known state (logged once)');
      else this.log.info({ probers: voters.live }, 'probers heart-beating again');
    }
    const overlaid = carrying || carryingFile || ownVerdicts;
    const incremental = mode === 'changes' && !this.fullNeeded && !overlaid && this.lastSites !== null && this.sameBase(voters, now);
    const touched = this.touched;
    this.touched = new Set();
    this.fullNeeded = false;
    if (incremental) {
      this.recomputes.incremental++;
      this.recomputeTouched(input, touched, voters, now);
      return;
    }
    this.recomputes.full++;
    const combined = combine(input, now, options);
    this.selfProbing?.overlay(combined.sites, input, voters.live, now);
    if (carryingFile) this.fillFromFile(combined.sites);
    // Carried-over and own views are not what notices update: the first recompute after them is full.
    this.base = overlaid ? null : { voters: voters.voters, stale: voters.stale, nextExpiry: nextExpiry(input, now) };
    // Site by site, not as a JSON signature of all of them (at 10,000 sites the signature
    // costs most of a recompute); the gauges are set for the sites that changed only.
    const changed = this.lastSites === null ? 'all' : changedSites(this.lastSites, combined.sites);
    const fresh = this.storeUp && !combined.stale;
    // Freshness is part of what a snapshot says (/v1/status, explain, readiness): when only it
    // changes (the probers fall silent or the store goes away while every site keeps its last
    // state, the usual case), the snapshot is swapped too. Comparing the sites alone kept
    // answering "fresh" through an outage.
    const currentSites = this.currentSitesFor(combined.sites, now, ownVerdicts);
    if (changed === null && fresh === this.runtime.state.fresh && currentSites === this.runtime.state.currentSites) return;
    this.lastSites = combined.sites;
    this.swap(makeSnapshot(combined.sites, fresh, now, currentSites), changed ?? new Set());
  }

  /** Sites the store has no state of keep the file's (a forced one excepted: the store's drains are the truth). */
  private fillFromFile(sites: Map<string, SiteState>): void {
    for (const [key, state] of this.fileSites!) if (!sites.has(key) && !state.forced) sites.set(key, state);
  }

  /**
   * Since when no prober was heard: the newest heartbeat ever seen (a prober that left cleanly
   * took its heartbeat out of the store, but was heard until then), or the first read when none was.
   */
  private quietSince(input: StoreContents): number {
    this.noteHeartbeats(input);
    return Math.max(this.firstReadAt, this.newestHeartbeat);
  }

  private noteHeartbeats(contents: StoreContents): void {
    for (const p of contents.probers.values()) if (p.heartbeatAt > this.newestHeartbeat) this.newestHeartbeat = p.heartbeatAt;
  }

  /** Whether states combined from `base` still hold for sites no notice touched since. */
  private sameBase(voters: Voters, now: number): boolean {
    const base = this.base;
    if (base === null || base.stale !== voters.stale || now >= base.nextExpiry) return false;
    if (base.voters.length !== voters.voters.length) return false;
    for (let i = 0; i < voters.voters.length; i++) if (base.voters[i] !== voters.voters[i]) return false;
    return true;
  }

  /** Re-combines the touched sites only; the other states are the last map's. */
  private recomputeTouched(input: StoreContents, touched: ReadonlySet<string>, voters: Voters, now: number): void {
    const before = this.lastSites!;
    let sites: Map<string, SiteState> | null = null; // copied on the first change (the old snapshot stays as it was)
    let changed: Set<string> | null = null;
    for (const key of touched) {
      const state = combineSite(input, key, voters, now);
      const old = before.get(key);
      if (state === undefined ? old === undefined : old !== undefined && sameSiteState(old, state)) continue;
      sites ??= new Map(before);
      if (state === undefined) sites.delete(key);
      else sites.set(key, state);
      (changed ??= new Set()).add(key);
    }
    // The hysteresis rule reads loads as of `now` (a stale load counts as unknown): it is
    // evaluated on every tick too, not only when a site changed.
    const currentSites = this.currentSitesFor(sites ?? before, now);
    if (sites === null && currentSites === this.runtime.state.currentSites) return;
    this.lastSites = sites ?? before;
    const snapshot = makeSnapshot(this.lastSites, this.storeUp && !voters.stale, now, currentSites);
    // The UDP threads are sent these sites only (state/messages.ts); they can when the snapshot
    // being replaced is the one this map was copied from.
    if (this.runtime.state.sites === before) recordDelta(snapshot, { from: this.runtime.state.version, changed: changed ?? new Set() });
    this.swap(snapshot, changed ?? new Set());
  }

  /**
   * The hysteresis current sites for these site states (the injected rule): the runtime's own
   * map when nothing changed (so callers compare by identity); this nameserver's own decisions
   * are written to the store. `local`: the states hold this nameserver's own verdicts
   * (self-probing.ts), which stay in the process, and so do the decisions made from them: they
   * start from its own last decisions (the store's record only for lists it has none of) and are
   * not written.
   */
  private currentSitesFor(sites: ReadonlyMap<string, SiteState>, now: number, local = false): ReadonlyMap<string, string> {
    const own = this.runtime.state.currentSites;
    const stored = local ? new Map([...this.contents.current].filter(([key]) => !own.has(key))) : this.contents.current;
    const { current, writes } = this.currentSitesRule(this.runtime.zones, stored, own, sites, now);
    // Store unreachable: decided locally; once it is back the re-read decides again and writes.
    if (this.storeUp && !local) for (const [key, site] of writes) {
      // Held at once, so the write's own notice (synchronous from the memory store) is no news.
      this.contents.current.set(key, { site });
      this.log.info({ list: key, site }, 'hysteresis: current site decided');
      this.store.setCurrent(key, { site }).catch((error: Error) => this.log.warn({ list: key, site, err: error.message }, 'could not store the hysteresis current site'));
    }
    return sameCurrentSites(current, own) ? own : current;
  }

  private swap(snapshot: StateSnapshot, changed: ReadonlySet<string> | 'all'): void {
    this.runtime.publishState(snapshot); // the one assignment queries see; then its subscribers
    this.stateFile?.save(snapshot.sites, this.store.epoch());
    const setGauges = (site: SiteModel) => {
      const s: SiteState = stateOf(snapshot, site.key);
      siteUp.labels(site.zone, site.id).set(s.up ? 1 : 0);
      const condition = siteCondition(snapshot.sites.get(site.key));
      for (const state of SITE_CONDITIONS) siteState.labels(site.zone, site.id, state).set(state === condition ? 1 : 0);
      if (s.utilization !== undefined) siteUtilization.labels(site.zone, site.id).set(s.utilization);
    };
    if (changed === 'all') {
      for (const zone of this.runtime.zones.zones.values()) for (const site of zone.sites) setGauges(site);
    } else {
      // The changed keys only, not a walk over every site of every zone per swap.
      const index = sitesByKey(this.runtime.zones);
      for (const key of changed) {
        const site = index.get(key);
        if (site !== undefined) setGauges(site);
      }
    }
  }

  /** The raw store contents as last seen (status shows forced states and probers from it). */
  snapshotContents(): StoreContents {
    return this.contents;
  }

  async stop(): Promise<void> {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    if (this.urgentPending) clearImmediate(this.urgentPending);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.selfProbing?.stop();
    this.unsubscribe?.();
    this.unsubscribeZones?.();
    this.stateFile?.flush();
  }
}

const siteIndexes = new WeakMap<ZoneSet, Map<string, SiteModel>>();

/** The zone set's sites by key (built once per zone set; a reload brings a new one). */
function sitesByKey(zones: ZoneSet): Map<string, SiteModel> {
  let index = siteIndexes.get(zones);
  if (index === undefined) {
    index = new Map();
    for (const zone of zones.zones.values()) for (const site of zone.sites) index.set(site.key, site);
    siteIndexes.set(zones, index);
  }
  return index;
}

/**
 * The keys of the sites whose state differs between two combined maps ('all' when the set of
 * sites itself changed, as after a reload), or null when nothing did. States compare field by
 * field (combine.ts builds them fresh each time, so identity says nothing).
 */
export function changedSites(before: ReadonlyMap<string, SiteState>, after: ReadonlyMap<string, SiteState>): Set<string> | 'all' | null {
  if (before.size !== after.size) return 'all';
  let changed: Set<string> | null = null;
  for (const [key, state] of after) {
    const old = before.get(key);
    if (old === undefined) return 'all';
    if (!sameSiteState(old, state)) (changed ??= new Set()).add(key);
  }
  return changed;
}

/** Whether two current-site maps say the same. */
function sameCurrentSites(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, site] of a) if (b.get(key) !== site) return false;
  return true;
}

/** The earliest forced-state expiry after `now` (Infinity when none): a full recompute is due then. */
function nextExpiry(contents: StoreContents, now: number): number {
  let next = Infinity;
  for (const forced of contents.forced.values()) if (forced.until > now && forced.until < next) next = forced.until;
  return next;
}

function sameSiteState(a: SiteState, b: SiteState): boolean {
  if (a.up !== b.up || a.load !== b.load || a.utilization !== b.utilization || a.rttMs !== b.rttMs) return false;
  if (a.checkedAt !== b.checkedAt || a.loadAt !== b.loadAt || a.reason !== b.reason) return false;
  const f = a.forced;
  const g = b.forced;
  if (f === undefined || g === undefined) return f === g;
  return f.state === g.state && f.by === g.by && f.reason === g.reason && f.until === g.until;
}
