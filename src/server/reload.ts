/**
 * Live reload: re-read and validate the zones, swap the compiled ZoneSet into the runtime with one
 * assignment (a query sees the old set or the new one, never half of each), and tell listeners
 * (the prober follows the new sites through `onReload`). ZoneStore keeps each broken or deleted
 * file's last good zone, so a bad edit never takes a zone off the air; the problem is logged as
 * `file:line: path: message` once (not again at every later reload while it stays unfixed) and
 * counted in `sitedns_config_reload_errors_total`.
 */
import { compileZoneFiles } from '../config/compile.js';
import { formatProblem, type ConfigProblem } from '../config/errors.js';
import { loadZoneDirectory } from '../config/load.js';
import type { ZoneSet } from '../model/zone-model.js';
import { configGeneration, configLoadedTimestamp, configProblems, configReloadErrorsTotal, configReloadsTotal, zonesServed } from '../metrics/definitions.js';
import type { Logger } from '../util/logger.js';
import type { Runtime } from '../state/runtime.js';
import type { ReloadReport, ZoneStore } from './zone-store.js';

export type ReloadTrigger = 'start' | 'sighup' | 'watch' | 'api';

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

export type ReloadListener = (zones: ZoneSet, outcome: ReloadOutcome) => void;

export class ReloadController {
  private reported = new Set<string>();
  private readonly listeners = new Set<ReloadListener>();
  private last: ReloadOutcome | undefined;

  constructor(
    private readonly target: { readonly runtime: Runtime; readonly zoneStore: ZoneStore },
    private readonly log: Logger,
  ) {}

  /** The latest outcome (undefined before the first `start`/`reload`). */
  get lastOutcome(): ReloadOutcome | undefined {
    return this.last;
  }

  /** Subscribes to successful swaps (the prober re-reads its sites here). Returns an unsubscribe function. */
  onReload(listener: ReloadListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Records the start-up load the nameserver already did (and logged): metrics, and the
   * problems so that the first reload does not report them as new. The zone files are checked
   * again for that (without swapping anything): the nameserver keeps its report to itself.
   */
  start(): ReloadOutcome {
    const problems = this.startProblems();
    for (const p of problems) configReloadErrorsTotal.inc({ code: p.code });
    this.reported = new Set(problems.map(formatProblem));
    return this.record('start', this.target.runtime.zones, problems, [...this.reported], []);
  }

  /**
   * The problems of the load the nameserver already did, from its ZoneStore. Compiling the zone
   * files a second time just to list them doubled the start-up CPU and left a whole compiled
   * zone set (~120 MB at 100,000 names) as garbage in the heap. Only a store that never
   * loaded (not the nameserver's) is checked from disk.
   */
  private startProblems(): readonly ConfigProblem[] {
    const last = this.target.zoneStore.lastReport;
    if (last !== undefined) return last.problems;
    const loaded = loadZoneDirectory(this.target.zoneStore.path);
    return [...loaded.problems, ...compileZoneFiles(loaded.files).problems];
  }

  async reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const started = performance.now();
    let report: ReloadReport;
    try {
      report = await this.target.zoneStore.load();
    } catch (error) {
      // ZoneStore reports problems rather than throwing; anything else is a bug, but it must
      // not stop the server: keep serving, count it, say so.
      const problem: ConfigProblem = { file: this.target.zoneStore.path, line: 0, path: '(root)', message: `reload failed: ${(error as Error).message}`, code: 'EZONE_READ' };
      configReloadErrorsTotal.inc({ code: problem.code });
      this.log.error({ err: error, trigger }, formatProblem(problem));
      return this.record(trigger, this.target.runtime.zones, [problem], [formatProblem(problem)], []);
    }
    // The swap: one assignment, read once per query by the handler.
    this.target.runtime.zones = report.zoneSet;

    const lines = report.problems.map(formatProblem);
    const fresh: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (this.reported.has(lines[i])) continue;
      fresh.push(lines[i]);
      configReloadErrorsTotal.inc({ code: report.problems[i].code });
      this.log.error({ code: report.problems[i].code, trigger }, lines[i]);
    }
    this.reported = new Set(lines);
    const outcome = this.record(trigger, report.zoneSet, report.problems, fresh, report.keptFiles);
    this.log.info(
      {
        trigger,
        generation: outcome.generation,
        zones: outcome.zones,
        problems: lines.length,
        kept: report.keptFiles.length > 0 ? report.keptFiles : undefined,
        ms: Math.round((performance.now() - started) * 10) / 10,
      },
      lines.length === 0 ? 'zones reloaded' : 'zones reloaded; broken files keep their last good zone',
    );
    for (const listener of this.listeners) {
      try {
        listener(report.zoneSet, outcome);
      } catch (error) {
        this.log.error({ err: error }, 'a reload listener failed');
      }
    }
    return outcome;
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
