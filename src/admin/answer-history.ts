/**
 * The recent past the status page draws (GET /v1/history): how the answers were shared between
 * the sites, and when each site changed state, over the last minutes. Memory is bounded: a
 * fixed number of samples (window / interval), each with one count per site, and at most
 * MAX_CHANGES state changes, both dropped once older than the window.
 *
 * - Answer shares come from the answer counters every answerer keeps (sitedns_site_answers_total,
 *   the UDP threads' summed in), read once per interval: a sample holds each site's answers
 *   since the previous one, over every name that handed the site out.
 * - State changes come from every snapshot the runtime publishes, each site's condition read
 *   through the one site view (state/status.ts), so the page and `sitedns status` agree.
 */
import type { ZoneSet } from '../model/zone-model.js';
import type { Runtime, Unsubscribe } from '../state/runtime.js';
import { siteKey } from '../state/keys.js';
import { statusView, type SiteCondition } from '../state/status.js';

/** One cumulative counter value: answers of `name` that handed out site `site` (an id). */
export interface AnswerCount {
  readonly name: string;
  readonly site: string;
  readonly value: number;
}

export interface AnswerSample {
  /** End of the interval (ms since the epoch). */
  readonly at: number;
  /** Answers per site key over the interval; sites without answers are left out. */
  readonly answers: Readonly<Record<string, number>>;
}

export interface StateChange {
  readonly at: number;
  readonly site: string;
  readonly from: SiteCondition;
  readonly to: SiteCondition;
  readonly reason: string;
}

export interface HistoryView {
  readonly now: number;
  /** When this history began (ms since the epoch): nothing before it is known. */
  readonly since: number;
  readonly windowMs: number;
  readonly intervalMs: number;
  readonly samples: readonly AnswerSample[];
  readonly changes: readonly StateChange[];
}

export interface AnswerHistoryOptions {
  readonly runtime: Runtime;
  /** Every answer counter now (cumulative). */
  readonly counts: () => Promise<Iterable<AnswerCount>>;
  readonly intervalMs?: number;
  readonly windowMs?: number;
  readonly now?: () => number;
}

const DEFAULT_HISTORY_INTERVAL_MS = 5_000;
const DEFAULT_HISTORY_WINDOW_MS = 15 * 60_000;
/** State changes kept at most, however many sites flap within the window. */
export const MAX_CHANGES = 500;

export class AnswerHistory {
  readonly intervalMs: number;
  readonly windowMs: number;
  private readonly runtime: Runtime;
  private readonly counts: () => Promise<Iterable<AnswerCount>>;
  private readonly now: () => number;
  /** Ring of samples, oldest first once full. */
  private readonly ring: (AnswerSample | undefined)[];
  private next = 0;
  private changes: StateChange[] = [];
  private conditions = new Map<string, SiteCondition>();
  /** The last cumulative value per `name site` series. */
  private previous: Map<string, number> | undefined;
  private zoneOfName: { zones: ZoneSet; byName: Map<string, string> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;
  private unsubscribe: Unsubscribe | undefined;
  private startedAt = 0;

  constructor(o: AnswerHistoryOptions) {
    this.runtime = o.runtime;
    this.counts = o.counts;
    this.now = o.now ?? Date.now;
    this.intervalMs = o.intervalMs ?? DEFAULT_HISTORY_INTERVAL_MS;
    this.windowMs = o.windowMs ?? DEFAULT_HISTORY_WINDOW_MS;
    this.ring = new Array(Math.max(1, Math.ceil(this.windowMs / this.intervalMs)));
  }

  /** Follows the runtime's snapshots and samples the counters every interval until stop(). */
  start(): void {
    if (this.unsubscribe !== undefined) return;
    this.startedAt = this.now();
    this.observeState();
    this.unsubscribe = this.runtime.subscribeState(() => this.observeState());
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads the counters once; the first read is the baseline of the next sample. */
  async sample(): Promise<void> {
    // A slow read (threads busy) is not stacked under the next tick: that tick is skipped.
    if (this.sampling) return;
    this.sampling = true;
    try {
      const now = this.now();
      const current = new Map<string, number>();
      const answers: Record<string, number> = {};
      for (const c of await this.counts()) {
        const series = `${c.name} ${c.site}`;
        current.set(series, c.value);
        const before = this.previous?.get(series) ?? 0;
        // A counter never steps back (admin/answerer-metrics.ts); if one did, all of it is new.
        const added = c.value >= before ? c.value - before : c.value;
        if (added <= 0 || this.previous === undefined) continue;
        const zone = this.zoneOf(c.name);
        if (zone === undefined) continue;
        const key = siteKey(zone, c.site);
        answers[key] = (answers[key] ?? 0) + added;
      }
      if (this.previous !== undefined) {
        this.ring[this.next] = { at: now, answers };
        this.next = (this.next + 1) % this.ring.length;
      }
      this.previous = current;
    } finally {
      this.sampling = false;
    }
  }

  view(): HistoryView {
    const now = this.now();
    const since = now - this.windowMs;
    const samples: AnswerSample[] = [];
    for (let i = 0; i < this.ring.length; i++) {
      const s = this.ring[(this.next + i) % this.ring.length];
      if (s !== undefined && s.at > since) samples.push(s);
    }
    this.changes = this.changes.filter((c) => c.at > since);
    return { now, since: this.startedAt, windowMs: this.windowMs, intervalMs: this.intervalMs, samples, changes: [...this.changes] };
  }

  private observeState(): void {
    const now = this.now();
    const { sites } = statusView(this.runtime.zones, this.runtime.state, { kind: 'history', connected: true }, now);
    const seen = new Map<string, SiteCondition>();
    for (const site of sites) {
      seen.set(site.site, site.state);
      const before = this.conditions.get(site.site);
      if (before !== undefined && before !== site.state) this.changes.push({ at: now, site: site.site, from: before, to: site.state, reason: site.reason });
    }
    this.conditions = seen;
    if (this.changes.length > MAX_CHANGES) this.changes = this.changes.slice(-MAX_CHANGES);
  }

  /** The zone a Pool/Group/Site Name belongs to, from the zones served now. */
  private zoneOf(name: string): string | undefined {
    const zones = this.runtime.zones;
    if (this.zoneOfName?.zones !== zones) {
      const byName = new Map<string, string>();
      for (const zone of zones.zones.values()) for (const dn of zone.dynamicNames) byName.set(dn.name, dn.zone);
      this.zoneOfName = { zones, byName };
    }
    return this.zoneOfName.byName.get(name);
  }
}
