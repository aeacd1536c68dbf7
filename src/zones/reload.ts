/**
 * The one way zones are (re)loaded, whatever the trigger (start, SIGHUP, a file change, POST
 * /v1/reload) and whoever answers (the main thread, a UDP thread):
 *
 *   await zoneStore.load() -> prebuilt-answer table -> runtime.publishZones (one assignment)
 *
 * The table is built before the set is published, so no query ever builds it. Its builder is
 * given by whoever answers (server/fast-path.ts): this module answers nothing, and `sitedns
 * probe`, which loads zones the same way to probe their sites, builds no table. The compile and
 * the table run in slices of a few milliseconds (util/slices.ts), so the thread that loads keeps
 * answering queries and handling probe results meanwhile. A load that changed
 * nothing publishes the set served already (its table is built): subscribers still hear of it,
 * so a reload always rolls through the answerers. `publishLoad` is
 * those steps; ReloadController adds, for the process that reads the files, serialized reloads,
 * the config metrics and the log lines; AnswererZones is an answerer's side, compiling the files
 * its primary validated (never the disk: every answerer serves the primary's generation, even when
 * a file changes during a rolling reload).
 *
 * A signed zone's keys are read at every load (dnssec/keys.ts), and the zones are loaded again
 * when the key timing reaches its next change (trigger `keys`): a key is published, starts or
 * stops signing, or goes at the time its file names, with no SIGHUP. Signing a changed zone, or one
 * due to be signed again (trigger `resign`), runs on the loader thread; the compile here adopts
 * its signatures (dnssec/signature-bytes.ts), and so does every answerer, which serves the same
 * RRSIG bytes. The first load, before anything is served, and a kept zone (its file broken) signed
 * again from its last good config sign on the thread that loads.
 *
 * ZoneStore keeps each broken or deleted file's last good zone, so a bad edit never takes a zone
 * off the air; the problem is logged as `file:line: path: message` once (not again at every later
 * reload while it stays unfixed) and counted in `sitedns_config_reload_errors_total`.
 */
import type { ValidatedFile } from '../config/changed-files.js';
import { formatProblem, type ConfigProblem } from '../config/errors.js';
import { KeyError } from '../dnssec/key-file.js';
import type { ZoneKeySet } from '../dnssec/types.js';
import type { ZoneSet } from '../model/zone-model.js';
import { configGeneration, configLoadedTimestamp, configProblems, configReloadErrorsTotal, configReloadsTotal, zonesServed } from '../metrics/definitions.js';
import { Runtime } from '../state/runtime.js';
import { CodedError } from '../util/coded-error.js';
import type { Logger } from '../util/logger.js';
import type { SliceStats } from '../util/slices.js';
import { RESIGN_RETRY_MS, ZoneStore, type ReloadReport } from './zone-store.js';

/**
 * `keys`: a signed zone's key timing (dnssec/key-timing.ts) reached its next change; `resign`: a
 * signed zone's signatures are due to be made again (docs/dnssec.md).
 */
export type ReloadTrigger = 'start' | 'sighup' | 'watch' | 'api' | 'keys' | 'resign';

/** The zones a primary serves, as validated, for its answerers to compile, with the primary's generation. */
export interface ZoneTexts {
  readonly generation: number;
  /** Every zone served (the last good version of a broken file included), a signed one with its signatures. */
  readonly files: readonly ValidatedFile[];
  /** The keys of every signed zone served, by origin (KeyObjects cross threads by postMessage). */
  readonly keySets: ReadonlyMap<string, ZoneKeySet>;
}

/** Nothing to serve: the first load found no zone (the runtime still has none). */
export class NoZonesError extends CodedError<'ENO_ZONES'> {
  constructor(readonly path: string, readonly report: ReloadReport) {
    super('ENO_ZONES', `no zone could be loaded from ${path}`);
  }
}

/**
 * What a process or thread that answers queries builds from a set before it is published: the
 * prebuilt-answer table (server/fast-path.ts prebuildTableInSlices), in the load's slices.
 */
export type Prebuild = (zoneSet: ZoneSet, slices: SliceStats) => Promise<unknown>;

export interface PublishOptions {
  /**
   * Built before the set is published: a process or thread that answers queries passes the
   * table builder, `sitedns probe` null. Required, so an answerer cannot leave it out by mistake
   * and have its first queries build the table.
   */
  readonly prebuild: Prebuild | null;
  /** The number the set takes: an answerer's copy keeps its primary's (default: the store's own). */
  readonly generation?: number;
}

/** The copy of each loaded set numbered as its primary's, kept so the same load gets the same copy. */
const numbered = new WeakMap<ZoneSet, ZoneSet>();

/**
 * `set` under another generation number. A load that changed nothing returns the store's same
 * set, and must give the same copy too: the prebuilt table is kept per set object, and a new
 * copy would make every answerer rebuild it (0.2-0.3 s at 100,000 names) on every reload.
 */
function withGeneration(set: ZoneSet, generation: number): ZoneSet {
  const known = numbered.get(set);
  if (known !== undefined && known.generation === generation) return known;
  const copy: ZoneSet = Object.freeze({ ...set, generation });
  numbered.set(set, copy);
  return copy;
}

/** A load's report, with the slices its compile and table ran in on this thread. */
export type PublishedReport = ReloadReport & { readonly slices: SliceStats };

/**
 * Loads through the store, builds the prebuilt table, publishes: the steps every load takes.
 * Throws NoZonesError, publishing nothing, when neither the runtime nor the load has a zone.
 */
export async function publishLoad(zoneStore: ZoneStore, runtime: Runtime, options: PublishOptions): Promise<PublishedReport> {
  const slices: SliceStats = { slices: 0, longestMs: 0 };
  const loaded = await zoneStore.load(slices);
  const zoneSet: ZoneSet = options.generation === undefined ? loaded.zoneSet : withGeneration(loaded.zoneSet, options.generation);
  const report = { ...loaded, zoneSet, slices };
  if (zoneSet.zones.size === 0 && runtime.zones.zones.size === 0) throw new NoZonesError(zoneStore.path, report);
  if (options.prebuild !== null) await options.prebuild(zoneSet, slices);
  runtime.publishZones(zoneSet);
  return report;
}

/**
 * A UDP thread's zones: compiled from the validated files the main thread sends (nothing to
 * read or parse here). The main thread reported any problem: one here is a bug, logged at debug.
 * A signed zone adopts the signatures the main thread serves (each file's `signed`), compiled
 * again whenever their signing time changes: a thread signs nothing at load, answers the main
 * thread's RRSIG bytes, and its signatures fall due when the main thread's do.
 */
export class AnswererZones {
  private files: readonly ValidatedFile[] = [];
  private keySets: ReadonlyMap<string, ZoneKeySet> = new Map();
  private previous: Promise<unknown> = Promise.resolve();
  private readonly store: ZoneStore;

  constructor(
    readonly runtime: Runtime,
    path: string,
    private readonly log: Logger,
    private readonly prebuild: Prebuild,
  ) {
    // The key sets the primary loaded: an answerer never reads key files.
    const keysFor = (origin: string) => {
      const keySet = this.keySets.get(origin);
      if (keySet === undefined) throw new KeyError('EKEY_NONE', origin, 'no key set from the primary');
      return keySet;
    };
    this.store = new ZoneStore(path, { source: () => this.files, keys: { keysFor, now: Date.now } });
  }

  /**
   * Loads run one after another, each with its own files: the store reads `files` when its load
   * runs, so two reload messages handled in one pass must not share them.
   */
  load(zones: ZoneTexts): Promise<ReloadReport> {
    const run = this.previous.then(async () => {
      this.files = zones.files;
      this.keySets = zones.keySets;
      const started = performance.now();
      const report = await publishLoad(this.store, this.runtime, { prebuild: this.prebuild, generation: zones.generation });
      for (const p of report.problems) this.log.debug({ code: p.code }, formatProblem(p));
      if (report.compiledFiles !== 0) this.log.info({ generation: report.zoneSet.generation, ...sliceFields(report, started) }, 'zones compiled');
      return report;
    });
    this.previous = run.catch(() => undefined);
    return run;
  }
}

/**
 * A load's duration, its slices and the longest of them (ms): the longest this thread stopped
 * answering for it (on a busy machine, with the time it waited for a CPU meanwhile); and the
 * signed zones it compiled, signed here or adopting signatures made elsewhere.
 */
function sliceFields(report: PublishedReport, started: number): { ms: number; slices: number; sliceMs: number; signing?: ReloadReport['signing'] } {
  const signing = report.signing !== undefined && report.signing.here + report.signing.adopted > 0 ? report.signing : undefined;
  return { ms: Math.round((performance.now() - started) * 10) / 10, slices: report.slices.slices, sliceMs: Math.round(report.slices.longestMs * 10) / 10, signing };
}

export interface ReloadOutcome {
  readonly trigger: ReloadTrigger;
  readonly generation: number;
  readonly zones: readonly string[];
  /** Every problem of this load (`file:line: path: message`). */
  readonly problems: readonly string[];
  /** Problems not reported by the previous load (these were logged and counted now). */
  readonly newProblems: readonly string[];
  /** Files whose last good zone is still served. */
  readonly keptFiles: readonly string[];
}

export interface ReloadControllerOptions {
  readonly zoneStore: ZoneStore;
  /** What this process builds before each publish (PublishOptions.prebuild: null when it answers no query). */
  readonly prebuild: Prebuild | null;
}

/** Node runs a timer longer than 2^31 - 1 ms at once: a later key change is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The process that reads the zone files: its runtime, its loads (one at a time), their metrics and logs. */
export class ReloadController {
  /** Published to by every load; no zone until `start`. */
  readonly runtime = new Runtime();
  readonly zoneStore: ZoneStore;
  private readonly prebuild: Prebuild | null;
  private reported = new Set<string>();
  private last: ReloadOutcome | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private queued: Promise<ReloadOutcome> | null = null;
  private served: ZoneTexts = { generation: 0, files: [], keySets: new Map() };
  private keyTimer: NodeJS.Timeout | undefined;
  /** When the next re-signing load is due (the store's clock, ms); undefined: no signed zone. */
  resignAt: number | undefined;

  constructor(
    options: ReloadControllerOptions,
    private readonly log: Logger,
  ) {
    this.zoneStore = options.zoneStore;
    this.prebuild = options.prebuild;
    this.runtime.subscribeZones((zones) => {
      this.served = { generation: zones.generation, files: this.zoneStore.validatedFiles(), keySets: this.zoneStore.keySets() };
    });
  }

  /** Stops waiting for the next key change or re-signing and ends the store's loader thread. */
  close(): Promise<void> {
    clearTimeout(this.keyTimer);
    this.keyTimer = undefined;
    return this.zoneStore.close();
  }

  /** The latest outcome (undefined before the first load). */
  get lastOutcome(): ReloadOutcome | undefined {
    return this.last;
  }

  /**
   * The zones and generation served now, for answerers that compile them (a store that keeps
   * them). Taken when a set is published, not read from the store: the store holds the next set
   * while its table is built in slices, and an answerer started then must serve what this
   * process serves.
   */
  zoneTexts(): ZoneTexts {
    return this.served;
  }

  /** The first load; rejects (NoZonesError) when it finds no zone to serve. */
  start(): Promise<ReloadOutcome> {
    return this.reload('start');
  }

  /**
   * Loads and publishes. One load at a time: a request made while none runs, or before the
   * queued one starts, joins the queued one; a request made while a load runs gets one more
   * load after it (the files may have changed after it read them).
   */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    if (this.queued !== null) return this.queued;
    const next = this.running.then(() => {
      this.queued = null;
      return this.run(trigger);
    });
    this.queued = next;
    this.running = next.catch(() => undefined);
    return next;
  }

  private async run(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const started = performance.now();
    let report: PublishedReport;
    try {
      report = await publishLoad(this.zoneStore, this.runtime, { prebuild: this.prebuild });
    } catch (error) {
      if (error instanceof NoZonesError) {
        this.reportProblems(error.report.problems, trigger);
        throw error;
      }
      if (this.runtime.zones.zones.size === 0) throw error; // nothing served yet: the start fails
      // ZoneStore reports problems rather than throwing; anything else is a bug, but it must
      // not stop the server: keep serving, count it, say so.
      const problem: ConfigProblem = { file: this.zoneStore.path, line: 0, path: '(root)', message: `reload failed: ${(error as Error).message}`, code: 'EZONE_READ' };
      configReloadErrorsTotal.inc({ code: problem.code });
      this.log.error({ err: error, trigger }, formatProblem(problem));
      // The timed loads go on, a retry interval on at the earliest: signatures still fall due.
      const retryAt = this.zoneStore.now() + RESIGN_RETRY_MS;
      this.waitForTimedLoad(Math.max(this.zoneStore.lastReport?.nextKeyChangeAt ?? Infinity, retryAt), Math.max(this.zoneStore.nextResignAt(), retryAt));
      return this.record(trigger, this.runtime.zones, [problem], [formatProblem(problem)], []);
    }
    const fresh = this.reportProblems(report.problems, trigger);
    this.waitForTimedLoad(report.nextKeyChangeAt, this.zoneStore.nextResignAt());
    const outcome = this.record(trigger, report.zoneSet, report.problems, fresh, report.keptFiles);
    this.log.info(
      {
        trigger,
        generation: outcome.generation,
        zones: outcome.zones,
        problems: outcome.problems.length,
        kept: report.keptFiles.length > 0 ? report.keptFiles : undefined,
        ...sliceFields(report, started),
      },
      trigger === 'start' ? 'zones loaded' : outcome.problems.length === 0 ? 'zones reloaded' : 'zones reloaded; broken files keep their last good zone',
    );
    return outcome;
  }

  /**
   * The load the clock asks for next: at a signed zone's next key timing change (trigger `keys`:
   * its key set is loaded then), or when a signed zone's signatures are due (trigger `resign`:
   * the store compiles and signs it again before they expire, RFC 6781 §4.4.2), whichever is first.
   */
  private waitForTimedLoad(keysAt: number, resignAt: number): void {
    clearTimeout(this.keyTimer);
    this.keyTimer = undefined;
    this.resignAt = Number.isFinite(resignAt) ? resignAt : undefined;
    const at = Math.min(keysAt, resignAt);
    if (!Number.isFinite(at)) return;
    const trigger: ReloadTrigger = keysAt <= resignAt ? 'keys' : 'resign';
    const wait = Math.max(0, at - this.zoneStore.now());
    this.keyTimer = setTimeout(() => (wait > MAX_TIMER_MS ? this.waitForTimedLoad(keysAt, resignAt) : void this.reload(trigger).catch(() => undefined)), Math.min(wait, MAX_TIMER_MS));
    this.keyTimer.unref();
  }

  /** Logs and counts the problems the previous load did not have; returns them. */
  private reportProblems(problems: readonly ConfigProblem[], trigger: ReloadTrigger): string[] {
    const lines = problems.map(formatProblem);
    const fresh: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (this.reported.has(lines[i])) continue;
      fresh.push(lines[i]);
      configReloadErrorsTotal.inc({ code: problems[i].code });
      this.log.error({ code: problems[i].code, trigger }, lines[i]);
    }
    this.reported = new Set(lines);
    return fresh;
  }

  private record(trigger: ReloadTrigger, zones: ZoneSet, problems: readonly ConfigProblem[], fresh: string[], kept: readonly string[]): ReloadOutcome {
    configReloadsTotal.inc({ trigger, result: problems.length === 0 ? 'ok' : 'problems' });
    configProblems.set(problems.length);
    configGeneration.set(zones.generation);
    configLoadedTimestamp.set(zones.loadedAt / 1000);
    zonesServed.set(zones.zones.size);
    this.last = { trigger, generation: zones.generation, zones: [...zones.zones.keys()], problems: problems.map(formatProblem), newProblems: fresh, keptFiles: kept };
    return this.last;
  }
}
