/**
 * Keeps a nameserver's state snapshot true: reads the store in full on (re)connect and every
 * `resyncMs` (the safety net), applies change notices as they come, and after each change swaps
 * `runtime.state` with ONE assignment (a query never awaits the store).
 *
 * Fail static: while the store is unreachable, or no prober is heart-beating, the last known
 * state keeps being answered; each condition is logged once when it starts and once when it
 * ends, and shows in `sitedns_state_store_connected` and `sitedns_state_age_seconds`.
 */
import { siteUp, siteUtilization, stateAgeSeconds, stateStoreConnected } from '../admin/metrics.js';
import type { Runtime } from '../server/handler.js';
import type { Logger } from '../util/logger.js';
import { combine, DEFAULT_STALE_AFTER_MS } from './combine.js';
import { makeSnapshot, stateOf, type SiteState, type StateSnapshot } from './snapshot.js';
import { readStateFile, type StateFileWriter } from './state-file.js';
import { applyNotice, emptyContents, type Notice, type StateStore, type StoreContents } from './types.js';

export interface FollowerOptions {
  store: StateStore;
  runtime: Runtime;
  logger: Logger;
  staleAfterMs?: number;
  resyncMs?: number;
  tickMs?: number;
  stateFile?: StateFileWriter;
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
  private probersStale = false;
  private signature = '';
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private readonly listeners = new Set<(s: StateSnapshot) => void>();

  constructor(options: FollowerOptions) {
    this.store = options.store;
    this.runtime = options.runtime;
    this.log = options.logger.child({ component: 'state' });
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.resyncMs = options.resyncMs ?? 1000;
    this.tickMs = options.tickMs ?? 250;
    this.stateFile = options.stateFile;
  }

  get connected(): boolean {
    return this.storeUp;
  }

  /** Age of the state answered from: time since the store last told us anything. */
  ageMs(now = Date.now()): number {
    return this.lastHeardAt === 0 ? Infinity : now - this.lastHeardAt;
  }

  onSnapshot(listener: (s: StateSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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
    );
    this.timers.push(setInterval(() => void this.resync(), this.resyncMs));
    this.timers.push(setInterval(() => this.tick(), this.tickMs));
    for (const t of this.timers) t.unref?.();
    try {
      await this.store.ready(limitMs);
      if (await this.resync()) return 'store';
    } catch {
      /* fall through: fail static from the file */
    }
    if (this.everRead) return 'store';
    return this.startFromFile();
  }

  private startFromFile(): StartSource {
    const path = this.stateFile?.path;
    const loaded = path ? readStateFile(path) : { error: 'disabled' };
    if ('error' in loaded) {
      this.log.warn({ stateFile: path ?? null, why: loaded.error }, 'state store unreachable at start and no last-known-state file: answering with every site up, load unknown');
      return 'assumed-up';
    }
    if (!this.everRead) {
      this.swap(makeSnapshot(loaded.sites, false));
      this.log.warn({ stateFile: path, writtenAt: new Date(loaded.writtenAt).toISOString(), sites: loaded.sites.size }, 'state store unreachable at start: answering from the last-known-state file');
    }
    return 'state-file';
  }

  private connection(connected: boolean): void {
    if (connected) {
      void this.resync();
      return;
    }
    this.markDown();
  }

  private markUp(): void {
    this.lastHeardAt = Date.now();
    if (this.storeUp) return;
    this.storeUp = true;
    stateStoreConnected.set(1);
    if (this.outageLogged) this.log.info('state store reachable again: following it');
    this.outageLogged = false;
  }

  private markDown(): void {
    if (!this.storeUp) return;
    this.storeUp = false;
    stateStoreConnected.set(0);
    this.outageLogged = true;
    this.log.warn({ lastHeardAt: new Date(this.lastHeardAt).toISOString() }, 'state store unreachable: answering from the last known state (logged once)');
    this.recompute();
  }

  /** Full re-read (on connect and every few seconds); false when the store did not answer. */
  async resync(): Promise<boolean> {
    if (!this.store.connected()) {
      this.markDown();
      return false;
    }
    try {
      const contents = await this.store.readAll();
      this.contents = contents;
      this.everRead = true;
      this.markUp();
      this.recompute();
      return true;
    } catch {
      this.markDown();
      return false;
    }
  }

  private apply(notice: Notice): void {
    applyNotice(this.contents, notice);
    this.markUp();
    this.recompute();
  }

  private tick(): void {
    stateAgeSeconds.set(Number.isFinite(this.ageMs()) ? this.ageMs() / 1000 : 0);
    this.recompute();
  }

  /** Recomputes the site states; swaps the snapshot only when something changed. */
  recompute(now = Date.now()): void {
    if (!this.everRead) return;
    const combined = combine(this.contents, now, { staleAfterMs: this.staleAfterMs, livenessAt: this.storeUp ? now : this.lastHeardAt });
    if (combined.stale !== this.probersStale) {
      this.probersStale = combined.stale;
      if (combined.stale) this.log.warn({ staleAfterMs: this.staleAfterMs }, 'no prober heart-beating: answering from the last known state (logged once)');
      else this.log.info({ probers: combined.liveProbers }, 'probers heart-beating again');
    }
    const signature = JSON.stringify([...combined.sites]);
    if (signature === this.signature) return;
    this.signature = signature;
    this.swap(makeSnapshot(combined.sites, this.storeUp && !combined.stale, now));
  }

  private swap(snapshot: StateSnapshot): void {
    this.runtime.state = snapshot; // the one assignment queries see
    this.stateFile?.save(snapshot.sites);
    for (const zone of this.runtime.zones.zones.values()) {
      for (const site of zone.sites) {
        const s: SiteState = stateOf(snapshot, site.key);
        siteUp.labels(site.zone, site.id).set(s.up ? 1 : 0);
        if (s.utilization !== undefined) siteUtilization.labels(site.zone, site.id).set(s.utilization);
      }
    }
    for (const l of this.listeners) l(snapshot);
  }

  /** The raw store contents as last seen (status shows forced states and probers from it). */
  snapshotContents(): StoreContents {
    return this.contents;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.unsubscribe?.();
    this.stateFile?.flush();
  }
}
