/**
 * The embedded default: the state store in this process's memory. `serve` without --redis runs
 * the prober in-process against it; the admin listener reaches it for status/drain/report.
 * Notices are delivered synchronously, after the change is stored.
 */
import { AuditRing, mergeTrails, trailOf } from './audit.js';
import { prunable, undrainedAt, undrainedSince } from './undrained.js';
import { applyNotice, emptyContents, type AuditEntry, type AuditTrailName, type CurrentSite, type ForcedState, type LoadReport, type Notice, type ProbeView, type ProberInfo, type RestoreResult, type StateStore, type StoreContents, type Undrained } from './types.js';

export class MemoryStateStore implements StateStore {
  readonly kind = 'memory' as const;
  private readonly contents = emptyContents();
  private readonly listeners = new Set<(notice: Notice) => void>();
  /** Site key -> its last undrain (state/undrained.ts). */
  private readonly undrained = new Map<string, Undrained>();
  private readonly trails: Record<AuditTrailName, AuditRing> = { operator: new AuditRing(), reports: new AuditRing() };

  async ready(): Promise<void> {}

  async readAll(): Promise<StoreContents> {
    const c = this.contents;
    return {
      probers: new Map(c.probers),
      views: new Map([...c.views].map(([id, v]) => [id, new Map(v)])),
      forced: new Map(c.forced),
      reports: new Map(c.reports),
      current: new Map(c.current),
    };
  }

  private emit(notice: Notice): void {
    applyNotice(this.contents, notice);
    for (const listener of this.listeners) listener(notice);
  }

  async writeView(prober: string, key: string, view: ProbeView | null): Promise<void> {
    this.emit({ t: 'view', prober, key, view });
  }

  async heartbeat(info: ProberInfo, announce = false): Promise<void> {
    // Heartbeats other than the first are not announced (readers see them on their periodic
    // re-read), as in Redis.
    if (announce) this.emit({ t: 'prober', prober: info.id, info });
    else this.contents.probers.set(info.id, info);
  }

  async removeProber(id: string): Promise<void> {
    this.emit({ t: 'prober', prober: id, info: null });
  }

  async setForced(key: string, forced: ForcedState | null, now = Date.now()): Promise<void> {
    if (forced === null) {
      for (const [site, record] of this.undrained) if (prunable(record, now)) this.undrained.delete(site);
      this.undrained.set(key, undrainedAt(now));
    }
    this.emit({ t: 'forced', key, forced });
  }

  async restoreForced(key: string, forced: ForcedState): Promise<RestoreResult> {
    if (undrainedSince(this.undrained.get(key), forced)) return 'undrained';
    if (this.contents.forced.has(key)) return 'present';
    this.emit({ t: 'forced', key, forced });
    return 'written';
  }

  async report(key: string, report: LoadReport): Promise<void> {
    this.emit({ t: 'report', key, report });
  }

  async setCurrent(key: string, current: CurrentSite): Promise<void> {
    this.emit({ t: 'current', key, current });
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    this.trails[trailOf(entry.action)].push(entry);
  }

  async readAudit(): Promise<AuditEntry[]> {
    return mergeTrails(this.trails.operator.list(), this.trails.reports.list());
  }

  subscribe(onNotice: (notice: Notice) => void, onConnection?: (connected: boolean) => void): () => void {
    this.listeners.add(onNotice);
    onConnection?.(true);
    return () => this.listeners.delete(onNotice);
  }

  connected(): boolean {
    return true;
  }

  epoch(): string | undefined {
    return undefined;
  }

  assumeEpoch(): void {}

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
