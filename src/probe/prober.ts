/**
 * The prober: probes every site of the served zones on its own jittered schedule, feeds each raw
 * result to the anti-flap machine (debounce.ts), folds in the site's pushed load reports
 * (seed 002), and writes its view of each site to the state store. It heart-beats its presence so
 * readers can tell a live prober from a dead one (combine.ts).
 *
 * Runs in-process for `serve` without --redis (the embedded default) and as `sitedns probe`
 * against Redis; the code is the same, only the store differs. Follows the zones published to a
 * runtime (follow): new sites start being probed, removed ones stop and their views are deleted.
 */
import os from 'node:os';
import { probeDuration, probeFailuresTotal } from '../metrics/definitions.js';
import type { SiteModel, ZoneSet } from '../model/zone-model.js';
import type { Runtime } from '../state/runtime.js';
import type { StateStore, LoadReport, ProbeView } from '../state/types.js';
import type { Logger } from '../util/logger.js';
import { compileCheck, DEFAULT_INTERVAL_MS, type CompiledCheck } from './checks.js';
import { debounceConfig, initialHealth, step, type DebounceConfig, type HealthState, type ProbeResult } from './debounce.js';

export interface ProberOptions {
  store: StateStore;
  logger: Logger;
  /** Unique per prober process (default: host-pid). */
  id?: string;
  heartbeatMs?: number;
  /** A view is rewritten at least this often even when nothing changed (keeps "last check" true). */
  refreshMs?: number;
  random?: () => number;
}

interface SiteTask {
  readonly site: SiteModel;
  readonly signature: string;
  readonly check: CompiledCheck | undefined;
  readonly cfg: DebounceConfig;
  readonly pushIntervalMs: number | undefined;
  readonly startedAt: number;
  health: HealthState;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
  probeLoad: { value: number; at: number } | undefined;
  rttMs: number | undefined;
  checkedAt: number;
  written: ProbeView | null | undefined;
  writtenAt: number;
}

export const DEFAULT_HEARTBEAT_MS = 500;

export function defaultProberId(): string {
  return `${os.hostname()}-${process.pid}`;
}

export class Prober {
  readonly id: string;
  private readonly store: StateStore;
  private readonly log: Logger;
  private readonly heartbeatMs: number;
  private readonly refreshMs: number;
  private readonly random: () => number;
  private readonly tasks = new Map<string, SiteTask>();
  /** Sites without a probe: up by definition; a pushed report still gives them a load. */
  private unprobed = new Map<string, SiteModel>();
  private readonly reports = new Map<string, LoadReport>();
  private readonly startedAt = Date.now();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private unfollow: (() => void) | undefined;
  private firstRoundWaiters: (() => void)[] = [];
  private writeFailing = false;
  private stopped = false;
  /** The store lost its contents (redis-store.ts, epoch): the next resync says what it wrote back. */
  private contentsLost = false;

  constructor(options: ProberOptions) {
    this.store = options.store;
    this.id = options.id ?? defaultProberId();
    this.log = options.logger.child({ component: 'prober', prober: this.id });
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.refreshMs = options.refreshMs ?? 2000;
    this.random = options.random ?? Math.random;
  }

  /** Starts heart-beating and listening for pushed reports; call setZones() to start probing. */
  async start(): Promise<void> {
    this.unsubscribe = this.store.subscribe(
      (notice) => {
        if (notice.t !== 'report') return;
        this.reports.set(notice.key, notice.report);
        const task = this.tasks.get(notice.key);
        if (task) this.publish(task, Date.now());
        else this.publishUnprobed(notice.key);
      },
      (connected) => {
        if (connected) void this.resync();
      },
      () => {
        this.contentsLost = true;
        void this.resync();
      },
    );
    await this.beat(true);
    this.heartbeatTimer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.heartbeatTimer.unref?.();
  }

  /**
   * After a (re)connect, or the store found without its contents: take the pushed reports and
   * rewrite the heartbeat and every view at once (writes may have been lost, or all of them).
   */
  private async resync(): Promise<void> {
    const lost = this.contentsLost;
    this.contentsLost = false;
    try {
      const contents = await this.store.readAll();
      for (const [key, report] of contents.reports) {
        const known = this.reports.get(key);
        if (!known || known.at < report.at) this.reports.set(key, report);
      }
      const mine = contents.views.get(this.id);
      // Views this prober wrote in an earlier life for sites it no longer probes.
      if (mine) for (const key of mine.keys()) if (!this.tasks.has(key)) void this.write(key, null);
      await this.beat(true);
      let views = 0;
      for (const task of this.tasks.values()) {
        task.written = undefined;
        if (this.publish(task, Date.now())) views++;
      }
      for (const key of this.unprobed.keys()) if (this.publishUnprobed(key)) views++;
      if (lost) this.log.warn({ views, heartbeat: true }, 'state store lost its contents: wrote back this prober\'s heartbeat and views');
    } catch (error) {
      this.log.debug({ err: error }, 'resync failed; will retry on the next connect');
    }
  }

  private async beat(announce = false): Promise<void> {
    if (this.stopped) return;
    try {
      await this.store.heartbeat({ id: this.id, heartbeatAt: Date.now(), startedAt: this.startedAt, host: os.hostname(), pid: process.pid, intervalMs: this.heartbeatMs }, announce);
      this.writeOk();
    } catch (error) {
      this.writeFailed(error);
    }
  }

  /** Probes the sites of the zones `runtime` serves now and of every zone set published to it later. */
  follow(runtime: Runtime): void {
    this.unfollow?.();
    this.setZones(runtime.zones);
    this.unfollow = runtime.subscribeZones((zones) => this.setZones(zones));
  }

  /** Starts, keeps or stops per-site tasks so they match the zones (follow() calls it with each zone set). */
  setZones(zoneSet: ZoneSet): void {
    const wanted = new Map<string, SiteModel>();
    const unprobed = new Map<string, SiteModel>();
    for (const zone of zoneSet.zones.values()) for (const site of zone.sites) (site.probe ? wanted : unprobed).set(site.key, site);
    for (const key of this.unprobed.keys()) if (!unprobed.has(key) && !wanted.has(key) && this.reports.has(key)) void this.write(key, null);
    this.unprobed = unprobed;
    for (const key of unprobed.keys()) if (this.reports.has(key)) this.publishUnprobed(key);
    for (const [key, task] of this.tasks) {
      const site = wanted.get(key);
      if (site && signatureOf(site) === task.signature) continue;
      this.stopTask(task);
      this.tasks.delete(key);
      if (!site) {
        this.log.info({ site: key }, 'site removed: no longer probed');
        void this.write(key, null);
      }
    }
    for (const [key, site] of wanted) {
      if (this.tasks.has(key)) continue;
      const task = this.makeTask(site);
      this.tasks.set(key, task);
      this.schedule(task, this.random() * Math.min(task.cfg.intervalMs, 250));
    }
    this.checkFirstRound();
  }

  private makeTask(site: SiteModel): SiteTask {
    const probe = site.probe!;
    const check = compileCheck(probe);
    const intervalMs = probe.interval ?? (check ? DEFAULT_INTERVAL_MS : probe.push_interval!);
    return {
      site,
      signature: signatureOf(site),
      check,
      cfg: debounceConfig({ rise: probe.rise, fall: probe.fall, intervalMs, flapHalfLifeMs: probe.flap_half_life }),
      pushIntervalMs: probe.push_interval,
      startedAt: Date.now(),
      health: initialHealth(Date.now()),
      timer: undefined,
      stopped: false,
      probeLoad: undefined,
      rttMs: undefined,
      checkedAt: 0,
      written: undefined,
      writtenAt: 0,
    };
  }

  private schedule(task: SiteTask, delayMs: number): void {
    if (task.stopped || this.stopped) return;
    task.timer = setTimeout(() => void this.runTask(task), delayMs);
  }

  private async runTask(task: SiteTask): Promise<void> {
    if (task.stopped) return;
    const now0 = Date.now();
    if (!task.check) {
      // Pushed reports only: the site is judged by their freshness alone.
      task.checkedAt = now0;
      this.publish(task, now0);
      this.schedule(task, task.pushIntervalMs!);
      return;
    }
    let result: ProbeResult;
    try {
      result = await task.check.run();
    } catch (error) {
      result = { ok: false, decisive: false, reason: (error as Error).message };
    }
    if (task.stopped) return;
    const now = Date.now();
    this.observe(task, result);
    const out = step(task.health, { result, now, pushAlive: this.pushAlive(task, now) }, task.cfg);
    const before = task.health.status;
    task.health = out.state;
    task.checkedAt = now;
    if (result.rttMs !== undefined) task.rttMs = result.rttMs;
    if (result.load !== undefined) task.probeLoad = { value: result.load, at: now };
    if (out.changed) {
      const level = out.state.status === 'down' ? 'warn' : 'info';
      this.log[level]({ site: task.site.key, from: before, to: out.state.status, reason: out.state.reason }, `site ${out.state.status}`);
    }
    this.publish(task, now);
    if (before === 'unknown' && out.state.status !== 'unknown') this.checkFirstRound();
    const jitter = out.recheck ? 1 : 0.9 + 0.2 * this.random();
    this.schedule(task, out.nextInMs * jitter);
  }

  private observe(task: SiteTask, result: ProbeResult): void {
    const kind = task.check!.kind;
    if (result.ok && result.rttMs !== undefined) probeDuration.labels(task.site.zone, task.site.id, kind).observe(result.rttMs / 1000);
    if (!result.ok) probeFailuresTotal.labels(task.site.zone, task.site.id, failureCategory(result.reason)).inc();
  }

  /** Seed 002: a site's own reports, arriving within 1.5 intervals, vouch that it is alive. */
  private pushAlive(task: SiteTask, now: number): boolean {
    if (task.pushIntervalMs === undefined) return false;
    const report = this.reports.get(task.site.key);
    return report !== undefined && now - report.at <= task.pushIntervalMs * 1.5;
  }

  /** This prober's view of a site right now (null while nothing is known yet). */
  viewOf(task: SiteTask, now: number): ProbeView | null {
    const report = this.reports.get(task.site.key);
    let pushSilentMs = 0;
    if (task.pushIntervalMs !== undefined) {
      // Silent for 3 report intervals counts as down; the prober's start is the first
      // moment we could have heard from it.
      const last = Math.max(report?.at ?? 0, this.startedAt, task.startedAt);
      const silent = now - last;
      if (silent > 3 * task.pushIntervalMs) pushSilentMs = now - (report?.at ?? task.startedAt);
    }
    const status = task.health.status;
    if (task.check && status === 'unknown' && pushSilentMs === 0) return null;
    let up = status !== 'down';
    let reason = task.check ? task.health.reason : report ? 'pushed reports arriving' : 'waiting for pushed reports';
    if (pushSilentMs > 0) {
      up = false;
      reason = report ? `pushed reports stopped ${Math.round(pushSilentMs / 100) / 10}s ago` : 'no pushed report yet';
    }
    // The freshest load wins: the site's own report or the probe's reading.
    let load: number | undefined;
    let loadAt: number | undefined;
    if (task.probeLoad) ({ value: load, at: loadAt } = task.probeLoad);
    if (report && (loadAt === undefined || report.at > loadAt)) {
      load = report.load;
      loadAt = report.at;
    }
    const view: { -readonly [K in keyof ProbeView]: ProbeView[K] } = {
      up,
      checkedAt: task.checkedAt || now,
      since: pushSilentMs > 0 ? now - pushSilentMs : task.health.since,
      reason,
    };
    if (load !== undefined) {
      view.load = load;
      view.utilization = round4(load / task.site.capacity);
      view.loadAt = loadAt;
    }
    if (task.rttMs !== undefined) view.rttMs = task.rttMs;
    if (!up && pushSilentMs === 0 && task.health.decisive >= task.cfg.fall) view.decisive = true;
    return view;
  }

  /** A site without a probe that pushed a load: up, with that load (no liveness judgement). True when written. */
  private publishUnprobed(key: string): boolean {
    const site = this.unprobed.get(key);
    const report = this.reports.get(key);
    if (!site || !report) return false;
    void this.write(key, { up: true, load: report.load, utilization: round4(report.load / site.capacity), loadAt: report.at, checkedAt: report.at, since: report.at, reason: 'pushed load (no probe)' });
    return true;
  }

  /** Writes the task's view when it changed or is due for a refresh; true when it did. */
  private publish(task: SiteTask, now: number): boolean {
    const view = this.viewOf(task, now);
    const prev = task.written;
    const same =
      prev !== undefined &&
      (prev === null ? view === null : view !== null && prev.up === view.up && prev.load === view.load && prev.reason === view.reason && prev.utilization === view.utilization);
    if (same && now - task.writtenAt < this.refreshMs) return false;
    if (view === null && prev === undefined) return false;
    task.written = view;
    task.writtenAt = now;
    void this.write(task.site.key, view).then((ok) => {
      if (!ok) task.written = undefined; // rewritten at the next probe
    });
    return true;
  }

  private async write(key: string, view: ProbeView | null): Promise<boolean> {
    try {
      await this.store.writeView(this.id, key, view);
      this.writeOk();
      return true;
    } catch (error) {
      this.writeFailed(error);
      return false;
    }
  }

  private writeOk(): void {
    if (!this.writeFailing) return;
    this.writeFailing = false;
    this.log.info('state store writable again');
  }

  private writeFailed(error: unknown): void {
    if (this.writeFailing) return;
    this.writeFailing = true;
    this.log.error({ err: (error as Error).message }, 'cannot write to the state store; probing on and retrying (logged once)');
  }

  /** Resolves true once every probed site has a first verdict, or false when `limitMs` passed first. */
  firstRound(limitMs: number): Promise<boolean> {
    if (this.firstRoundDone()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), limitMs);
      this.firstRoundWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private firstRoundDone(): boolean {
    for (const task of this.tasks.values()) if (task.check && task.health.status === 'unknown') return false;
    return true;
  }

  private checkFirstRound(): void {
    if (this.firstRoundWaiters.length === 0 || !this.firstRoundDone()) return;
    const waiters = this.firstRoundWaiters;
    this.firstRoundWaiters = [];
    for (const w of waiters) w();
  }

  /** Health of every probed site, for tests and `sitedns probe --once`. */
  health(): Map<string, HealthState> {
    return new Map([...this.tasks].map(([k, t]) => [k, t.health]));
  }

  private stopTask(task: SiteTask): void {
    task.stopped = true;
    if (task.timer) clearTimeout(task.timer);
  }

  /** Stops probing; `leave` removes this prober's heartbeat and views so readers drop it at once. */
  async stop(leave = true): Promise<void> {
    this.stopped = true;
    for (const task of this.tasks.values()) this.stopTask(task);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.unsubscribe?.();
    this.unfollow?.();
    if (leave) await this.store.removeProber(this.id).catch(() => undefined);
  }
}

function signatureOf(site: SiteModel): string {
  return JSON.stringify([site.probe, site.capacity]);
}

function failureCategory(reason: string): string {
  if (reason.startsWith('HTTP')) return 'status';
  if (reason.startsWith('timeout')) return 'timeout';
  if (reason === 'connection refused') return 'refused';
  if (reason === 'connection reset') return 'reset';
  return 'other';
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
