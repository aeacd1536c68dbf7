/**
 * One load of a zone set, as the loader thread (config/load-worker.ts) runs it: list the files,
 * read each, and parse and validate only those whose digest differs from the digest of their last
 * good load. Everything returned is plain data (structured-cloneable): problems, or the validated
 * config with its digest and text.
 */
import { createHash } from 'node:crypto';
import { compileZone } from './compile.js';
import type { ConfigProblem } from './errors.js';
import { displayName, listZoneFiles, parseZoneText, readZoneText } from './load.js';
import type { ZoneFile } from './schema.js';

export type FileLoad =
  | { readonly file: string; readonly status: 'unchanged'; readonly digest: string }
  | { readonly file: string; readonly status: 'failed'; readonly problems: ConfigProblem[] }
  | { readonly file: string; readonly status: 'loaded'; readonly digest: string; readonly text: string; readonly config: ZoneFile };

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

/**
 * Reads and checks the files of `entries` against `known`. With `compileCheck`, a file that parses
 * is also compiled (and the result dropped): a file the compiler refuses comes back 'failed', so
 * the thread that compiles for real spends nothing on it.
 */
export function loadChangedTexts(entries: readonly ZoneText[], known: KnownDigests, compileCheck: boolean): FileLoad[] {
  return entries.map(({ path, text }): FileLoad => {
    const file = displayName(path);
    if (typeof text !== 'string') return { file, status: 'failed', problems: text.problems };
    const digest = textDigest(text);
    if (known.get(file) === digest) return { file, status: 'unchanged', digest };
    const loaded = parseZoneText(text, file);
    if ('problems' in loaded) return { file, status: 'failed', problems: loaded.problems };
    if (compileCheck) {
      const compiled = compileZone(loaded);
      if ('problems' in compiled) return { file, status: 'failed', problems: compiled.problems };
    }
    return { file, status: 'loaded', digest, text, config: loaded.config };
  });
}

/** Lists and reads the zone files of `path` (a directory or one file), then loadChangedTexts. */
export function loadChangedFiles(path: string, known: KnownDigests, compileCheck: boolean): ChangedFiles {
  let list: string[];
  try {
    list = listZoneFiles(path);
  } catch (error) {
    return { problems: [{ file: displayName(path), line: 0, path: '(root)', message: (error as Error).message, code: 'EZONE_READ' }], files: [] };
  }
  return { problems: [], files: loadChangedTexts(list.map((file) => ({ path: file, text: readZoneText(file) })), known, compileCheck) };
}
