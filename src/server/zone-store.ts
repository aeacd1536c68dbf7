/**
 * Keeps the served zones: loads a zones directory, compiles it, and on every reload swaps in a
 * new ZoneSet where each broken, emptied or deleted file keeps its last good zone (nothing is
 * lost to a bad edit). Problems are returned as `file:line: path: message` records.
 */
import { compileZoneFiles, makeZoneSet } from '../config/compile.js';
import type { ConfigProblem } from '../config/errors.js';
import { displayName, loadZoneDirectory } from '../config/load.js';
import type { ZoneModel, ZoneSet } from '../model/zone-model.js';

export interface ReloadReport {
  readonly zoneSet: ZoneSet;
  readonly problems: readonly ConfigProblem[];
  /** Files whose last good zone is still served because the new version failed or vanished. */
  readonly keptFiles: readonly string[];
  readonly changed: boolean;
}

export class ZoneStore {
  private lastGood = new Map<string, ZoneModel>();
  private current: ZoneSet = makeZoneSet([]);

  constructor(readonly path: string) {}

  get zoneSet(): ZoneSet {
    return this.current;
  }

  load(): ReloadReport {
    const loaded = loadZoneDirectory(this.path);
    const compiled = compileZoneFiles(loaded.files);
    const problems = [...loaded.problems, ...compiled.problems];
    const next = new Map<string, ZoneModel>();
    for (const zone of compiled.zones) next.set(zone.file, zone);
    const kept: string[] = [];
    const presentFiles = new Set([...loaded.files.map((f) => f.file), ...loaded.failedFiles.map(displayName)]);
    for (const [file, zone] of this.lastGood) {
      if (next.has(file)) continue;
      // Broken or deleted: keep serving the last good version, unless another file now serves that zone.
      if ([...next.values()].some((z) => z.origin === zone.origin)) continue;
      next.set(file, zone);
      kept.push(file);
      if (!presentFiles.has(file)) {
        problems.push({ file, line: 0, path: '(root)', message: 'zone file removed; still serving its last good zone until restart', code: 'EZONE_READ' });
      }
    }
    this.lastGood = next;
    this.current = makeZoneSet(next.values());
    return { zoneSet: this.current, problems, keptFiles: kept, changed: true };
  }
}
