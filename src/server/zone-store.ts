/**
 * Keeps the served zones: loads a zones directory, compiles it, and on every reload swaps in a
 * new ZoneSet where each broken, emptied or deleted file keeps its last good zone (nothing is
 * lost to a bad edit). Problems are returned as `file:line: path: message` records.
 *
 * A reload recompiles only the files whose text changed since their last good compile; the
 * others keep their (frozen, immutable) ZoneModel. With 100,000 names in 100 files (bench/scale)
 * a one-file edit reloads in tens of milliseconds instead of seconds, and the old and new sets
 * share their unchanged zones instead of doubling the memory during the swap (#8).
 */
import { createHash } from 'node:crypto';
import { compileZone, makeZoneSet } from '../config/compile.js';
import type { ConfigProblem } from '../config/errors.js';
import { displayName, listZoneFiles, parseZoneText, readZoneText } from '../config/load.js';
import type { ZoneModel, ZoneSet } from '../model/zone-model.js';

function textDigest(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}

export interface ReloadReport {
  readonly zoneSet: ZoneSet;
  readonly problems: readonly ConfigProblem[];
  /** Files whose last good zone is still served because the new version failed or vanished. */
  readonly keptFiles: readonly string[];
  readonly changed: boolean;
  /** Files compiled by this load (the others were unchanged and reused). */
  readonly compiledFiles?: number;
}

/** Where a load reads its files: the zones path on disk by default. */
export type ZoneSource = () => { path: string; text: string | { problems: ConfigProblem[] } }[];

export class ZoneStore {
  private lastGood = new Map<string, ZoneModel>();
  /**
   * A digest of the text each last good zone was compiled from: enough to see that a file is
   * unchanged without keeping every file's text (3.7 MB at 100,000 names, #8).
   */
  private lastDigest = new Map<string, string>();
  /**
   * The text of each last good zone, kept only with `keepTexts`: the UDP threads of
   * `serve --udp-threads` compile exactly what this store serves, kept files included (#8).
   */
  private lastText = new Map<string, string>();
  private current: ZoneSet = makeZoneSet([]);
  private last: ReloadReport | undefined;

  constructor(
    readonly path: string,
    private readonly options: { source?: ZoneSource; keepTexts?: boolean } = {},
  ) {}

  /** [file, text] of every zone served now (with `keepTexts`; else empty). */
  goodTexts(): [string, string][] {
    return [...this.lastText];
  }

  get zoneSet(): ZoneSet {
    return this.current;
  }

  /** The report of the latest load (undefined before the first). */
  get lastReport(): ReloadReport | undefined {
    return this.last;
  }

  load(): ReloadReport {
    const problems: ConfigProblem[] = [];
    let entries: ReturnType<ZoneSource>;
    if (this.options.source !== undefined) {
      entries = this.options.source();
    } else {
      let list: string[];
      try {
        list = listZoneFiles(this.path);
      } catch (error) {
        problems.push({ file: displayName(this.path), line: 0, path: '(root)', message: (error as Error).message, code: 'EZONE_READ' });
        list = [];
      }
      entries = list.map((path) => ({ path, text: readZoneText(path) }));
    }
    const nextText = new Map<string, string>();
    const next = new Map<string, ZoneModel>();
    const nextDigest = new Map<string, string>();
    const presentFiles = new Set<string>();
    const seen = new Map<string, string>();
    let compiledFiles = 0;
    for (const { path, text } of entries) {
      const file = displayName(path);
      presentFiles.add(file);
      if (typeof text !== 'string') {
        problems.push(...text.problems);
        continue;
      }
      const digest = textDigest(text);
      let zone = this.lastDigest.get(file) === digest ? this.lastGood.get(file) : undefined;
      if (zone === undefined) {
        compiledFiles++;
        const loaded = parseZoneText(text, file);
        if ('problems' in loaded) {
          problems.push(...loaded.problems);
          continue;
        }
        const compiled = compileZone(loaded);
        if ('problems' in compiled) {
          problems.push(...compiled.problems);
          continue;
        }
        const other = seen.get(compiled.origin);
        if (other !== undefined) {
          problems.push({ file, line: loaded.lineOf(['zone']), path: 'zone', message: `zone ${compiled.origin} is also defined in ${other}`, code: 'EZONE_CONFLICT' });
          continue;
        }
        zone = compiled;
      } else if (seen.has(zone.origin)) {
        problems.push({ file, line: 1, path: 'zone', message: `zone ${zone.origin} is also defined in ${seen.get(zone.origin)}`, code: 'EZONE_CONFLICT' });
        continue;
      }
      seen.set(zone.origin, file);
      next.set(file, zone);
      nextDigest.set(file, digest);
      if (this.options.keepTexts) nextText.set(file, text);
    }
    const kept: string[] = [];
    for (const [file, zone] of this.lastGood) {
      if (next.has(file)) continue;
      // Broken or deleted: keep serving the last good version, unless another file now serves that zone.
      if (seen.has(zone.origin)) continue;
      next.set(file, zone);
      nextDigest.set(file, this.lastDigest.get(file)!);
      if (this.options.keepTexts) nextText.set(file, this.lastText.get(file)!);
      seen.set(zone.origin, file);
      kept.push(file);
      if (!presentFiles.has(file)) {
        problems.push({ file, line: 0, path: '(root)', message: 'zone file removed; still serving its last good zone until restart', code: 'EZONE_READ' });
      }
    }
    this.lastGood = next;
    this.lastDigest = nextDigest;
    this.lastText = nextText;
    this.current = makeZoneSet(next.values());
    this.last = { zoneSet: this.current, problems, keptFiles: kept, changed: true, compiledFiles };
    return this.last;
  }
}
