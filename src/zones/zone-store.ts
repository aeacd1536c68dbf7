/**
 * Keeps the served zones: loads a zones directory, compiles it, and on every reload swaps in a
 * new ZoneSet where each broken, emptied or deleted file keeps its last good zone (nothing is
 * lost to a bad edit). Problems are returned as `file:line: path: message` records.
 *
 * Reading, parsing and validating of every reload run on the loader thread
 * (config/zone-loader.ts), which also compiles each changed file once to find compile problems;
 * this thread compiles only the files that changed and passed all of that (the first load, before
 * anything is served, reads and parses here). The others keep their (frozen, immutable) ZoneModel:
 * with 100,000 names in 100 files (bench/scale) a one-file edit costs this thread the compile of
 * that file only, and the old and new sets share their unchanged zones instead of doubling the
 * memory during the swap. That compile (half a second for the largest file the loader accepts)
 * runs in slices (util/slices.ts): the thread answers queries and probe results between them.
 *
 * A signed zone takes its key set from the store's KeySource at every load, changed file or not
 * (key files and key timing change apart from zone files), and is signed by the loader thread
 * when it changed (this thread adopts the signatures, dnssec/signature-bytes.ts); a zone whose
 * keys fail is refused like a broken file, its last good version served with its last good keys.
 * A kept signed zone whose signatures fall due is signed again here, from its last good validated
 * config with its last good keys; if that fails too, it is tried again at most once a minute and
 * refused a minute before its signatures expire (docs/dnssec.md): a validator rejects an expired
 * signature (RFC 4035 §5.3.1), so an answer that is refused beats one that fails to validate.
 */
import { compileZoneSteps, makeZoneSet } from '../config/compile.js';
import { loadChangedFiles, unpackConfigSteps, type ChangedFiles, type FileLoad, type ValidatedFile } from '../config/changed-files.js';
import type { ConfigProblem } from '../config/errors.js';
import { displayName, lineOfText } from '../config/load.js';
import { ZoneLoader } from '../config/zone-loader.js';
import { KeyError } from '../dnssec/key-file.js';
import type { KeySource } from '../dnssec/keys.js';
import type { ZoneSigning } from '../dnssec/signature-bytes.js';
import type { ZoneKeySet } from '../dnssec/types.js';
import type { ZoneModel, ZoneSet } from '../model/zone-model.js';
import { runInSlices, type SliceStats, type Steps } from '../util/slices.js';

/**
 * The least time between two tries to sign a kept zone again (and the least wait for a kept key
 * set whose timing change has passed): a zone that cannot be signed must not spin the reloads.
 * A zone still failing is refused this long before its signatures expire.
 */
export const RESIGN_RETRY_MS = 60_000;

export interface ReloadReport {
  readonly zoneSet: ZoneSet;
  readonly problems: readonly ConfigProblem[];
  /** Files whose last good zone is still served because the new version failed or vanished. */
  readonly keptFiles: readonly string[];
  /** Whether a zone changed: if not, `zoneSet` is the set served before (the same object). */
  readonly changed: boolean;
  /** Files compiled by this load (the others were unchanged and reused). */
  readonly compiledFiles?: number;
  /** Signed zones this load compiled: signed here, or `adopted` from the file (the loader thread's, an answerer's primary's). */
  readonly signing?: { readonly here: number; readonly adopted: number };
  /** Each signed zone's keys (by origin), as served with `zoneSet`. */
  readonly keySets: ReadonlyMap<string, ZoneKeySet>;
  /** When a signed zone's keys change next by their timing (ms; Infinity: never): load again then. */
  readonly nextKeyChangeAt: number;
}

/** Where a load gets its files: the zones path on disk by default (read on the loader thread). */
export type ZoneSource = () => readonly ValidatedFile[];

export interface ZoneStoreOptions {
  /** Files validated elsewhere (an answerer's primary) to compile instead of the zones path. */
  readonly source?: ZoneSource;
  /** Keep every served zone as a ValidatedFile (validatedFiles), for answerers to compile. */
  readonly keepValidated?: boolean;
  readonly loader?: ZoneLoader;
  /** The keys of signed zones and their clock: a signed zone whose keys fail is refused like a broken file. */
  readonly keys?: KeySource;
}

export class ZoneStore {
  private lastGood = new Map<string, ZoneModel>();
  /**
   * A digest of the text each last good zone was compiled from: enough to see that a file is
   * unchanged without keeping every file's text (3.7 MB at 100,000 names).
   */
  private lastDigest = new Map<string, string>();
  /**
   * Each last good zone as validated, kept only with `keepValidated`: the UDP threads of
   * `serve --udp-threads` compile exactly what this store serves, kept files included.
   */
  private lastValidated = new Map<string, ValidatedFile>();
  /** Each served signed zone's key set, by file (a kept zone keeps its last good keys too). */
  private lastKeySets = new Map<string, ZoneKeySet>();
  /** Each kept zone (by file) that failed to be signed again: when to try again, and why it failed. */
  private resignFailures = new Map<string, ResignFailure>();
  private current: ZoneSet = makeZoneSet([]);
  private last: ReloadReport | undefined;
  /** The load in progress: loads run one after the other, each from the result of the one before. */
  private running: Promise<unknown> = Promise.resolve();
  readonly loader: ZoneLoader;
  /** The clock key timing is read against. */
  readonly now: () => number;

  constructor(
    readonly path: string,
    private readonly options: ZoneStoreOptions = {},
  ) {
    this.loader = options.loader ?? new ZoneLoader();
    this.now = options.keys?.now ?? Date.now;
  }

  /** Every zone served now (with `keepValidated`; else empty), a signed one with its signatures. */
  validatedFiles(): ValidatedFile[] {
    if (!this.options.keepValidated) return [];
    return [...this.lastValidated].map(([file, validated]) => {
      const signed = this.lastGood.get(file)?.signatures?.bytes;
      return signed === undefined ? validated : { ...validated, signed };
    });
  }

  /** The key set of every signed zone served now, by origin. */
  keySets(): ReadonlyMap<string, ZoneKeySet> {
    return this.last?.keySets ?? new Map();
  }

  get zoneSet(): ZoneSet {
    return this.current;
  }

  /** The report of the latest load (undefined before the first). */
  get lastReport(): ReloadReport | undefined {
    return this.last;
  }

  /** Ends the loader thread (the next load would start another). */
  close(): Promise<void> {
    return this.loader.close();
  }

  /** Loads and compiles (in slices: `slices` counts them); the new set is swapped in at the end. */
  load(slices?: SliceStats): Promise<ReloadReport> {
    const next = this.running.then(() => this.loadNow(slices));
    this.running = next.catch(() => {});
    return next;
  }

  /**
   * When the signatures of a served zone are next due to be made again (ms since the epoch;
   * Infinity: no signed zone). A load at or after it compiles those zones again.
   */
  nextResignAt(): number {
    let at = Infinity;
    for (const [file, zone] of this.lastGood) {
      if (zone.signatures === undefined) continue;
      const failure = this.resignFailures.get(file);
      at = Math.min(at, failure === undefined ? zone.signatures.refreshAt : Math.min(failure.retryAt, refusedAt(zone.signatures)));
    }
    return at;
  }

  /**
   * The digests of the last good loads, but for signed zones to sign again: those whose
   * signatures are due (RFC 6781 §4.4.2: re-signed before they expire) or whose keys changed
   * (a rollover step); those files count as changed, so the load compiles and signs them again.
   * A store given its files (an answerer) signs when its source's signing time changes instead.
   */
  private knownDigests(keys: KeySource | undefined): Map<string, string> {
    const now = this.now();
    const known = new Map(this.lastDigest);
    for (const [file, zone] of this.lastGood) {
      if (zone.signatures === undefined || zone.dnssec === undefined) continue;
      if (this.options.source === undefined && zone.signatures.refreshAt <= now) {
        known.delete(file);
        continue;
      }
      try {
        if (!sameKeySet(this.lastKeySets.get(file), keys!.keysFor(zone.origin, zone.dnssec))) known.delete(file);
      } catch {
        known.delete(file); // the compile reports what fails with the keys
      }
    }
    return known;
  }

  private async loadNow(slices: SliceStats | undefined): Promise<ReloadReport> {
    // Each signed zone's keys are read once per load, and signed at one time on whichever thread.
    const keys = this.options.keys === undefined ? undefined : oncePerLoad(this.options.keys, this.now());
    const known = this.knownDigests(keys);
    let changed: ChangedFiles;
    if (this.options.source !== undefined) {
      const unchanged = (f: ValidatedFile) => known.get(f.file) === f.digest && f.signed?.signedAt === this.lastGood.get(f.file)?.signatures?.signedAt;
      const files = this.options.source().map((f): FileLoad => (unchanged(f) ? { file: f.file, status: 'unchanged', digest: f.digest } : { ...f, status: 'loaded' }));
      changed = { problems: [], files };
    } else if (this.last === undefined) {
      // The first load runs here, signing included: nothing is served yet, and starting the
      // thread (its modules: ~0.3 s of CPU) would only delay the start.
      changed = loadChangedFiles(this.path, known, false);
    } else {
      try {
        changed = await this.loader.load(this.path, known, keys);
      } catch (error) {
        // The loader thread died (the next load starts another): every zone stays as a kept one,
        // so a signed zone that is due is still signed again here or refused before its
        // signatures expire (keptZoneSteps), whatever keeps the loader from running.
        const problem: ConfigProblem = { file: displayName(this.path), line: 0, path: '(root)', message: `zone loader failed: ${(error as Error).message}; still serving the last good zones`, code: 'EZONE_LOADER' };
        changed = { problems: [problem], files: [...this.lastGood.keys()].map((file): FileLoad => ({ file, status: 'failed', problems: [] })) };
      }
    }
    return runInSlices(this.applySteps(changed, keys), slices);
  }

  /** Compiles the loaded files and swaps in the new set (this thread: the models stay here). */
  private *applySteps(changed: ChangedFiles, keys: KeySource | undefined): Steps<ReloadReport> {
    const problems: ConfigProblem[] = [...changed.problems];
    const nextValidated = new Map<string, ValidatedFile>();
    const next = new Map<string, ZoneModel>();
    const nextDigest = new Map<string, string>();
    const presentFiles = new Set<string>();
    const seen = new Map<string, string>();
    const nextKeySets = new Map<string, ZoneKeySet>();
    const signing = { here: 0, adopted: 0 };
    let compiledFiles = 0;
    for (const result of changed.files) {
      const { file } = result;
      presentFiles.add(file);
      if (result.status === 'failed') {
        problems.push(...result.problems);
        continue;
      }
      let zone = result.status === 'unchanged' ? this.lastGood.get(file) : undefined;
      let validated = result.status === 'unchanged' ? this.lastValidated.get(file) : undefined;
      if (result.status === 'loaded') {
        compiledFiles++;
        validated = { file, digest: result.digest, config: result.config, loadedAt: result.loadedAt };
        // An answerer's files come without their text: its problems (bugs) are logged at line 0.
        const lineOf = result.text === undefined ? () => 0 : lineOfText(result.text);
        const config = yield* unpackConfigSteps(result.config);
        // The key set the compile signs with is the one recorded; it adopts the signatures the file
        // came with if they match (made at this load's signing time; an answerer's, at its primary's).
        let signedWith: ZoneKeySet | undefined;
        const at = this.options.source === undefined ? keys?.now : () => result.signed?.signedAt ?? keys!.now();
        const zoneSigning: ZoneSigning | undefined = keys && { keysFor: (origin, settings) => (signedWith = keys.keysFor(origin, settings)), now: at!, digest: result.digest, presigned: result.signed };
        const compiled = yield* compileZoneSteps({ file, config, lineOf, loadedAt: result.loadedAt }, zoneSigning);
        if ('problems' in compiled) {
          problems.push(...compiled.problems);
          continue;
        }
        const other = seen.get(compiled.origin);
        if (other !== undefined) {
          problems.push({ file, line: lineOf(['zone']), path: 'zone', message: `zone ${compiled.origin} is also defined in ${other}`, code: 'EZONE_CONFLICT' });
          continue;
        }
        zone = compiled;
        if (signedWith !== undefined) nextKeySets.set(file, signedWith);
        if (zone.signatures !== undefined) signing[zone.signatures.bytes === result.signed ? 'adopted' : 'here']++;
      } else if (zone !== undefined && seen.has(zone.origin)) {
        problems.push({ file, line: 1, path: 'zone', message: `zone ${zone.origin} is also defined in ${seen.get(zone.origin)}`, code: 'EZONE_CONFLICT' });
        continue;
      }
      if (zone === undefined) continue;
      if (zone.dnssec !== undefined && keys !== undefined && result.status === 'unchanged') {
        // Unchanged: the keys this load read (the same keys, the timing of now).
        try {
          nextKeySets.set(file, keys.keysFor(zone.origin, zone.dnssec));
        } catch (error) {
          if (!(error instanceof KeyError)) throw error;
          problems.push({ file: error.file, line: 0, path: 'dnssec', message: `zone ${zone.origin}: ${error.reason}`, code: error.code });
          continue;
        }
      }
      seen.set(zone.origin, file);
      next.set(file, zone);
      nextDigest.set(file, result.digest);
      if ((this.options.keepValidated || zone.signatures !== undefined) && validated !== undefined) nextValidated.set(file, validated);
    }
    const kept: string[] = [];
    const nextFailures = new Map<string, ResignFailure>();
    for (const [file, lastZone] of this.lastGood) {
      if (next.has(file)) continue;
      // Broken or deleted: keep serving the last good version, unless another file now serves that zone.
      if (seen.has(lastZone.origin)) continue;
      // A source sends every zone its primary serves, kept ones included: a signed zone it leaves
      // out was refused there (its signatures could not be made again) and must not outlive them here.
      if (this.options.source !== undefined && !presentFiles.has(file) && lastZone.signatures !== undefined) continue;
      const zone = yield* this.keptZoneSteps(file, lastZone, problems, nextFailures);
      if (zone === undefined) continue;
      if (zone !== lastZone) signing.here++;
      next.set(file, zone);
      nextDigest.set(file, this.lastDigest.get(file)!);
      const lastValidated = this.lastValidated.get(file);
      if (lastValidated !== undefined) nextValidated.set(file, lastValidated);
      const keySet = this.lastKeySets.get(file);
      if (keySet !== undefined) nextKeySets.set(file, keySet);
      seen.set(zone.origin, file);
      kept.push(file);
      if (!presentFiles.has(file)) {
        problems.push({ file, line: 0, path: '(root)', message: 'zone file removed; still serving its last good zone until restart', code: 'EZONE_READ' });
      }
    }
    // The same zones (nothing changed, or only broken edits): the same set, so nothing that
    // hangs off a set (the prebuilt-answer table: ~0.3 s at 100,000 names) is built again.
    // New keys, or keys that changed role by their timing, make a new set too: what is signed changes.
    const zonesChanged =
      next.size !== this.lastGood.size || [...next].some(([file, zone]) => this.lastGood.get(file) !== zone) || nextKeySets.size !== this.lastKeySets.size || [...nextKeySets].some(([file, keys]) => !sameKeySet(this.lastKeySets.get(file), keys));
    this.lastGood = next;
    this.lastDigest = nextDigest;
    this.lastValidated = nextValidated;
    this.lastKeySets = nextKeySets;
    this.resignFailures = nextFailures;
    if (zonesChanged) this.current = makeZoneSet(next.values());
    this.last = { ...this.keyFields(this.lastKeySets), zoneSet: this.current, problems, keptFiles: kept, changed: zonesChanged, compiledFiles, signing };
    return this.last;
  }

  /**
   * A kept zone as served from now: the same, or signed again when its signatures are due
   * (here, from its last good validated config, with its last good keys), or undefined when it cannot
   * be and its signatures are about to expire (refused, with a problem saying so).
   */
  private *keptZoneSteps(file: string, zone: ZoneModel, problems: ConfigProblem[], nextFailures: Map<string, ResignFailure>): Steps<ZoneModel | undefined> {
    const signatures = zone.signatures;
    const now = this.now();
    if (signatures === undefined || signatures.refreshAt > now) return zone;
    let failure = this.resignFailures.get(file);
    if (failure === undefined || failure.retryAt <= now) {
      const signed = yield* this.signAgainSteps(file, this.lastKeySets.get(file)!);
      if (typeof signed !== 'string') return signed;
      // The same words at every try: the reload path logs a problem once while it lasts.
      const message = `zone ${zone.origin}: cannot be signed again with its last good keys (${signed}); refused from ${new Date(refusedAt(signatures)).toISOString()}, before its signatures expire`;
      failure = { retryAt: now + RESIGN_RETRY_MS, problem: { file, line: 0, path: 'dnssec', message, code: 'EZONE_RESIGN' } };
    }
    problems.push(failure.problem);
    if (now < refusedAt(signatures)) {
      nextFailures.set(file, failure);
      return zone;
    }
    problems.push({ file, line: 0, path: 'dnssec', message: `zone ${zone.origin}: refused: its signatures expire at ${new Date(signatures.expiresAt).toISOString()} and cannot be made again`, code: 'EZONE_RESIGN' });
    return undefined;
  }

  /** Compiles and signs a kept zone again from its last good validated config with `keySet`; a string: why not. */
  private *signAgainSteps(file: string, keySet: ZoneKeySet): Steps<ZoneModel | string> {
    const validated = this.lastValidated.get(file);
    if (validated === undefined) return 'its config is not kept';
    try {
      const config = yield* unpackConfigSteps(validated.config);
      const compiled = yield* compileZoneSteps({ file, config, lineOf: () => 0, loadedAt: validated.loadedAt }, { keysFor: () => keySet, now: this.now, digest: validated.digest });
      return 'problems' in compiled ? compiled.problems.map((p) => p.message).join('; ') : compiled;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** Key sets by origin, and when the next one changes by its timing; a kept set whose change has passed is tried again a minute on. */
  private keyFields(byFile: ReadonlyMap<string, ZoneKeySet>): Pick<ReloadReport, 'keySets' | 'nextKeyChangeAt'> {
    const keySets = new Map([...byFile.values()].map((keys) => [keys.zone, keys]));
    const now = this.now();
    return { keySets, nextKeyChangeAt: Math.min(Infinity, ...[...keySets.values()].map((keys) => (keys.nextChangeAt > now ? keys.nextChangeAt : now + RESIGN_RETRY_MS))) };
  }
}

/** A kept zone that failed to be signed again: when to try next, and the problem reported until then. */
interface ResignFailure {
  readonly retryAt: number;
  readonly problem: ConfigProblem;
}

/** `source` answering each zone's keys once (a KeyError too), its clock stopped at `now`: every use in one load sees the same set and time. */
function oncePerLoad(source: KeySource, now: number): KeySource {
  const answers = new Map<string, { keySet: ZoneKeySet } | { error: unknown }>();
  return {
    now: () => now,
    keysFor(zone, settings) {
      const key = `${zone} ${JSON.stringify(settings)}`;
      let answer = answers.get(key);
      if (answer === undefined) {
        try {
          answer = { keySet: source.keysFor(zone, settings) };
        } catch (error) {
          answer = { error };
        }
        answers.set(key, answer);
      }
      if ('error' in answer) throw answer.error;
      return answer.keySet;
    },
  };
}

/** When a kept zone that cannot be signed again is refused: a retry interval before its signatures expire. */
function refusedAt(signatures: NonNullable<ZoneModel['signatures']>): number {
  return signatures.expiresAt - RESIGN_RETRY_MS;
}

/**
 * The same keys in the same roles: nothing signed changes (key objects read again from the same
 * files compare equal; a later nextChangeAt alone changes no answer). A key set a thread received
 * holds its public keys as Uint8Arrays (postMessage copies a Buffer as one): Buffer.compare takes both.
 */
function sameKeySet(a: ZoneKeySet | undefined, b: ZoneKeySet): boolean {
  if (a === undefined) return false;
  const same = (x: ZoneKeySet['published'], y: ZoneKeySet['published']) => x.length === y.length && x.every((k, i) => k.file === y[i].file && k.keyTag === y[i].keyTag && Buffer.compare(k.publicKey, y[i].publicKey) === 0);
  return same(a.published, b.published) && same(a.zoneSigning, b.zoneSigning) && same(a.keySigning, b.keySigning) && same(a.parentSignals, b.parentSignals);
}
