/**
 * One load of a zone set, as the loader thread (config/load-worker.ts) runs it: list the files,
 * read each, and parse and validate only those whose digest differs from the digest of their last
 * good load. Everything returned is plain data (structured-cloneable): problems, or the validated
 * config with its digest and text.
 *
 * The config travels packed: as JSON texts of at most RECORDS_PER_CHUNK records each. Copying
 * strings between threads costs a copy of their bytes, while a config as an object graph costs
 * its receiver a synchronous deserialization (~0.1-0.3 s for the largest file the loader
 * accepts, bench/reload); JSON.parse of one chunk takes a millisecond or two, and
 * unpackConfigSteps pauses between chunks.
 */
import { createHash } from 'node:crypto';
import { compileZone } from './compile.js';
import type { ConfigProblem } from './errors.js';
import { displayName, listZoneFiles, parseZoneText, readZoneText, type LoadedZoneFile } from './load.js';
import type { ZoneFile } from './schema.js';
import type { KeySource } from '../dnssec/keys.js';
import type { ZoneSigning } from '../dnssec/signature-bytes.js';
import type { ZoneSignatureBytes } from '../model/zone-model.js';
import { CodedError } from '../util/coded-error.js';
import type { Steps } from '../util/slices.js';

/** A validated config as JSON: the config without its records, then its records in chunks. */
export type PackedConfig = readonly string[];

/** A file that parsed and validated: what an answerer compiles (the primary's copy, no disk). */
export interface ValidatedFile {
  readonly file: string;
  /** textDigest of the file's text. */
  readonly digest: string;
  readonly config: PackedConfig;
  /** When the load that validated it began (config/load.ts LoadedZoneFile): its default SOA serial. */
  readonly loadedAt?: number;
  /**
   * A signed zone's signatures as the thread that signed it made them (dnssec/signature-bytes.ts):
   * the compile that serves the file adopts them instead of signing, and an answerer serves the
   * same RRSIGs as its primary, due when the primary's are; a new signing time counts as a change.
   */
  readonly signed?: ZoneSignatureBytes;
}

export type FileLoad =
  | { readonly file: string; readonly status: 'unchanged'; readonly digest: string }
  | { readonly file: string; readonly status: 'failed'; readonly problems: ConfigProblem[] }
  | (ValidatedFile & { readonly status: 'loaded'; readonly text?: string });

export interface ChangedFiles {
  /** Problems listing the zones path (the files' own problems are in `files`). */
  readonly problems: ConfigProblem[];
  readonly files: FileLoad[];
}

/** A file's text, or the problem reading it (as config/load.ts readZoneText returns it). */
export type ZoneText = { path: string; text: string | { problems: ConfigProblem[] } };

/** display name -> digest of the text of its last good load. */
export type KnownDigests = ReadonlyMap<string, string>;

export function textDigest(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}

/** Records per chunk of a PackedConfig: ~40 KB of JSON, parsed in a millisecond or two. */
const RECORDS_PER_CHUNK = 1000;

export function packConfig(config: ZoneFile): PackedConfig {
  const records = Object.entries(config.records);
  const packed = [JSON.stringify({ ...config, records: {} })];
  for (let i = 0; i < records.length; i += RECORDS_PER_CHUNK) packed.push(JSON.stringify(records.slice(i, i + RECORDS_PER_CHUNK)));
  return packed;
}

/** The config of packConfig, pausing after each chunk. */
export function* unpackConfigSteps(packed: PackedConfig): Steps<ZoneFile> {
  const config = JSON.parse(packed[0]) as ZoneFile;
  const records = config.records;
  for (let i = 1; i < packed.length; i++) {
    yield;
    for (const [name, set] of JSON.parse(packed[i]) as [string, ZoneFile['records'][string]][]) {
      // An assignment to "__proto__" would set the prototype: that name is defined as a property.
      if (name === '__proto__') Object.defineProperty(records, name, { value: set, enumerable: true, writable: true, configurable: true });
      else records[name] = set;
    }
  }
  return config;
}

/**
 * Reads and checks the files of `entries` against `known`. With `compileCheck`, a file that parses
 * is also compiled (and the result dropped): a file the compiler refuses comes back 'failed', so
 * the thread that compiles for real spends nothing on it. With `signing` too, a signed zone is
 * signed in that compile and comes back with its signatures (`signed`), for the thread that
 * compiles for real to adopt.
 */
export function loadChangedTexts(entries: readonly ZoneText[], known: KnownDigests, compileCheck: boolean, signing?: KeySource): FileLoad[] {
  const loadedAt = Date.now();
  return entries.map(({ path, text }): FileLoad => {
    const file = displayName(path);
    if (typeof text !== 'string') return { file, status: 'failed', problems: text.problems };
    const digest = textDigest(text);
    if (known.get(file) === digest) return { file, status: 'unchanged', digest };
    const loaded = parseZoneText(text, file);
    if ('problems' in loaded) return { file, status: 'failed', problems: loaded.problems };
    let signed: ZoneSignatureBytes | undefined;
    if (compileCheck) {
      const compiled = checkCompile({ ...loaded, loadedAt }, signing && { keysFor: (zone, settings) => signing.keysFor(zone, settings), now: signing.now, digest });
      if ('problems' in compiled) return { file, status: 'failed', problems: compiled.problems };
      signed = compiled.signatures?.bytes;
    }
    return { file, status: 'loaded', digest, text, config: packConfig(loaded.config), loadedAt, signed };
  });
}

/** Thrown by a KeySource that leaves a zone's signing to the thread that compiles it for real. */
export class KeysWithheld extends CodedError<'EKEYS_WITHHELD'> {
  constructor(zone: string) {
    super('EKEYS_WITHHELD', `the keys of ${zone} are left to the compile that serves it`);
  }
}

/** The compile check, signing with `signing`; a zone whose keys are withheld is checked unsigned. */
function checkCompile(loaded: LoadedZoneFile, signing: ZoneSigning | undefined): ReturnType<typeof compileZone> {
  if (signing !== undefined) {
    try {
      return compileZone(loaded, signing);
    } catch (error) {
      if (!(error instanceof KeysWithheld)) throw error;
    }
  }
  return compileZone(loaded);
}

/** Lists and reads the zone files of `path` (a directory or one file), then loadChangedTexts. */
export function loadChangedFiles(path: string, known: KnownDigests, compileCheck: boolean, signing?: KeySource): ChangedFiles {
  let list: string[];
  try {
    list = listZoneFiles(path);
  } catch (error) {
    return { problems: [{ file: displayName(path), line: 0, path: '(root)', message: (error as Error).message, code: 'EZONE_READ' }], files: [] };
  }
  return { problems: [], files: loadChangedTexts(list.map((file) => ({ path: file, text: readZoneText(file) })), known, compileCheck, signing) };
}
