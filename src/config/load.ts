/**
 * Zone files -> validated ZoneFile objects, or problems with file, line and path.
 *
 * Every step is linear in the file's size, valid or not (the loader runs on a worker thread,
 * config/zone-loader.ts, but `sitedns check` and the tests call it directly):
 * - a file is read only if it is a regular file (a FIFO would block the read forever), up to
 *   MAX_ZONE_FILE_BYTES;
 * - its nesting depth is measured on the text first (config/nesting.ts): both parsers recurse per
 *   level;
 * - it is read with js-yaml (~3 µs per name) under a schema equal to `yaml`'s YAML 1.2 core schema
 *   (see yaml12CoreSchema); anchors and aliases too, with the expanded size bounded;
 * - the value is validated by zod (its compiled schema once a process has read 512 KiB, see
 *   schemaFor); the line of each problem is found on the text by config/yaml-lines.ts
 *   lineLocator, which builds the `yaml` document of the entry at fault only;
 * - a text that uses tags, or one of up to DOCUMENT_PATH_MAX_CHARS that js-yaml refuses (syntax,
 *   duplicate keys), is read by `yaml`'s document API, which reports every YAML error with its
 *   line; duplicate keys are found there with one Set per mapping (yaml's own `uniqueKeys`
 *   compares each key with every earlier one). A larger text js-yaml refuses is reported with
 *   js-yaml's first error and its line.
 * A problem repeated identically (same line, path and message) is reported once per file.
 */
import { closeSync, constants, fstatSync, openSync, readSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import jsyaml from 'js-yaml';
import { z } from 'zod';
import { zoneFileSchema, type ZoneFile } from './schema.js';
import { formatPath, type ConfigProblem } from './errors.js';
import { MAX_NESTING_DEPTH, lineDeeperThan } from './nesting.js';
import { duplicateKeyOffsets, lineLocator, parseWithLines, type LineOf } from './yaml-lines.js';

/**
 * Zone files larger than this are refused (a runaway generator, or the wrong file): ~27,000
 * names in the layout of bench/scale, read and validated in well under a second.
 * sitedns zones hold sites and a few static records.
 */
export const MAX_ZONE_FILE_BYTES = 1024 * 1024;

/**
 * Aliases may expand a file's value to at most this many times its nodes (and this many nodes
 * beyond them): a shared address list is fine, an alias bomb (each level nine aliases of the
 * previous) is refused before the schema walks the expansion.
 */
const MAX_ALIAS_EXPANSION = 10;
const ALIAS_EXPANSION_ALLOWANCE = 10_000;

export interface LoadedZoneFile {
  readonly file: string;
  readonly config: ZoneFile;
  /** 1-based line of the node at `path` (or its nearest existing ancestor). */
  readonly lineOf: (path: readonly (string | number)[]) => number;
  /**
   * When the load that read the file began (ms since the epoch): the default SOA serial, the same
   * on every thread that compiles the file of one load (default: when the compile runs).
   */
  readonly loadedAt?: number;
}

export interface LoadOutcome {
  readonly files: LoadedZoneFile[];
  readonly problems: ConfigProblem[];
  /** Files that failed, so a reload can keep their last good zone. */
  readonly failedFiles: string[];
}

/** `*.yaml` / `*.yml`, not hidden (editors write their swap files as hidden files). */
export function isZoneFileName(name: string): boolean {
  return /^[^.].*\.ya?ml$/i.test(name);
}

/** Lists the zone files of a directory (or a single file), sorted for stable output. */
export function listZoneFiles(path: string): string[] {
  const stat = statSync(path);
  if (!stat.isDirectory()) return [path];
  return readdirSync(path)
    .filter(isZoneFileName)
    .sort()
    .map((f) => join(path, f));
}

export function displayName(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel.startsWith('..') ? file : rel;
}

export function loadZoneDirectory(path: string): LoadOutcome {
  const files: LoadedZoneFile[] = [];
  const problems: ConfigProblem[] = [];
  const failedFiles: string[] = [];
  for (const result of zoneFileLoads(path)) {
    if ('problems' in result) {
      problems.push(...result.problems);
      failedFiles.push(result.path);
    } else files.push(result);
  }
  return { files, problems, failedFiles };
}

/**
 * The zone files of a directory (or a single file), loaded one at a time as the caller asks for
 * them, each with the problems that failed it (`path` as listed); a path that cannot be listed is
 * one problem.
 */
export function* zoneFileLoads(path: string): Generator<LoadedZoneFile | { path: string; problems: ConfigProblem[] }> {
  let list: string[];
  try {
    list = listZoneFiles(path);
  } catch (error) {
    yield { path, problems: [{ file: displayName(path), line: 0, path: '(root)', message: (error as Error).message, code: 'EZONE_READ' }] };
    return;
  }
  for (const file of list) {
    const result = loadZoneFile(file);
    yield 'problems' in result ? { path: file, problems: result.problems } : result;
  }
}

export function loadZoneFile(file: string): LoadedZoneFile | { problems: ConfigProblem[] } {
  const text = readZoneText(file);
  if (typeof text !== 'string') return text;
  return parseZoneText(text, displayName(file));
}

function fileKind(stat: Stats): string {
  if (stat.isFIFO()) return 'FIFO';
  if (stat.isSocket()) return 'socket';
  if (stat.isCharacterDevice()) return 'character device';
  if (stat.isBlockDevice()) return 'block device';
  if (stat.isDirectory()) return 'directory';
  return 'special file';
}

/**
 * A zone file's text, or the problem reading it (missing, unreadable, not a regular file, over
 * the size limit). Only regular files are opened: opening a FIFO blocks until a writer comes.
 * The file is opened non-blocking and checked again on the descriptor, so a FIFO swapped in
 * between the stat and the open is not read either.
 */
export function readZoneText(file: string): string | { problems: ConfigProblem[] } {
  const shown = displayName(file);
  const problem = (message: string, code: 'EZONE_READ' | 'EZONE_SIZE' = 'EZONE_READ') => ({ problems: [{ file: shown, line: 0, path: '(root)', message, code }] });
  const refused = (stat: Stats) =>
    !stat.isFile() ? problem(`not a regular file (${fileKind(stat)}); skipped`) : stat.size > MAX_ZONE_FILE_BYTES ? problem(`file is ${stat.size} bytes; the limit is ${MAX_ZONE_FILE_BYTES}`, 'EZONE_SIZE') : undefined;
  let fd: number | undefined;
  try {
    const before = refused(statSync(file));
    if (before !== undefined) return before;
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    const stat = fstatSync(fd);
    const after = refused(stat);
    if (after !== undefined) return after;
    // Read at most one byte over the limit: a file that grew since the stat is refused too.
    const buffer = Buffer.allocUnsafe(Math.min(stat.size, MAX_ZONE_FILE_BYTES) + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > MAX_ZONE_FILE_BYTES) return problem(`file is over ${MAX_ZONE_FILE_BYTES} bytes; the limit is ${MAX_ZONE_FILE_BYTES}`, 'EZONE_SIZE');
    return buffer.toString('utf8', 0, length);
  } catch (error) {
    return problem((error as Error).message);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function parseZoneText(text: string, file: string): LoadedZoneFile | { problems: ConfigProblem[] } {
  const deep = lineDeeperThan(text);
  if (deep > 0) return { problems: [{ file, line: deep, path: '(yaml)', message: `nested deeper than ${MAX_NESTING_DEPTH} levels`, code: 'EZONE_LIMIT' }] };
  const read = readValue(text, file);
  if ('problems' in read) return read;
  if (read.value === null || read.value === undefined) {
    return { problems: [{ file, line: 1, path: '(root)', message: 'the file is empty', code: 'EZONE_SCHEMA' }] };
  }
  const parsed = schemaFor(text).safeParse(read.value);
  if (!parsed.success) return { problems: unique(issuesToProblems(parsed.error, file, read.lineOf)) };
  return { file, config: parsed.data, lineOf: read.lineOf };
}

/**
 * The schema as one generated function (zod's z.compile): a valid file is validated in about half
 * the time of the schema's own walk (~4 µs per name instead of ~8), and a file with a problem
 * falls back to that walk, so the problems read the same. Generating it costs ~60 ms, what the
 * walk of ~15,000 names saves: it is made once the process has read this much zone text.
 */
const COMPILE_SCHEMA_AFTER_BYTES = 512 * 1024;
let textValidated = 0;
let compiledSchema: typeof zoneFileSchema | undefined;

function schemaFor(text: string): typeof zoneFileSchema {
  textValidated += text.length;
  if (compiledSchema === undefined && textValidated < COMPILE_SCHEMA_AFTER_BYTES) return zoneFileSchema;
  return (compiledSchema ??= z.compile(zoneFileSchema));
}

/**
 * lineOf for a text that passed parseZoneText elsewhere (the loader thread): js-yaml reads it
 * again the first time a line is asked for, which only a compile problem does.
 */
export function lineOfText(text: string): LineOf {
  let lineOf: LineOf | undefined;
  return (path) => {
    if (lineOf === undefined) {
      const read = readWithJsYaml(text);
      lineOf = read !== undefined && 'value' in read ? lineLocator(text, read.value, readLineWithJsYaml) : parseWithLines(text).lineOf;
    }
    return lineOf(path);
  };
}

/** One problem per (line, path, message, code) in a file's list. */
function unique(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.line}\0${p.path}\0${p.code}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The file's value with a lineOf for it, or its YAML problems. */
function readValue(text: string, file: string): { value: unknown; lineOf: LineOf } | { problems: ConfigProblem[] } {
  const read = readWithJsYaml(text);
  if (read === undefined) return readDocument(text, file); // every YAML problem is reported there, with yaml's wording and line
  if ('refused' in read) {
    if (text.length <= DOCUMENT_PATH_MAX_CHARS) return readDocument(text, file);
    const { line, reason } = read.refused;
    const message = reason === 'duplicated mapping key' ? 'Map keys must be unique' : reason;
    return { problems: [{ file, line, path: '(yaml)', message, code: 'EZONE_YAML' }] };
  }
  if ('deepAt' in read) return { problems: [{ file, line: read.deepAt, path: '(yaml)', message: `nested deeper than ${MAX_NESTING_DEPTH} levels`, code: 'EZONE_LIMIT' }] };
  if (HAS_ANCHOR.test(text) && aliasExpansionTooLarge(read.value)) return { problems: [{ file, line: 1, path: '(yaml)', message: 'aliases expand the file too much (a resource exhaustion attack?)', code: 'EZONE_LIMIT' }] };
  return { value: read.value, lineOf: lineLocator(text, read.value, readLineWithJsYaml) };
}
/**
 * The scalars of YAML 1.2's core schema exactly as `yaml` resolves them (its default), for
 * js-yaml, whose own CORE_SCHEMA differs in corners (it also reads 0b binary ints, and leaves
 * "+.5" a string): null and bool are the same in both; int and float are redefined here.
 */
const yaml12Int = new jsyaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (data: string) => /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/.test(data),
  construct: (data: string) => (data.startsWith('0o') ? parseInt(data.slice(2), 8) : data.startsWith('0x') ? parseInt(data.slice(2), 16) : Number(data)),
});
const yaml12Float = new jsyaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (data: string) => /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/.test(data),
  construct: (data: string) => {
    if (/^[-+]?\.(?:inf|Inf|INF)$/.test(data)) return data.startsWith('-') ? -Infinity : Infinity;
    if (/^\.(?:nan|NaN|NAN)$/.test(data)) return NaN;
    return Number(data);
  },
});
const yaml12CoreSchema = jsyaml.FAILSAFE_SCHEMA.extend({
  implicit: [(jsyaml as unknown as { types: { null: jsyaml.Type; bool: jsyaml.Type } }).types.null, (jsyaml as unknown as { types: { bool: jsyaml.Type } }).types.bool, yaml12Int, yaml12Float],
});

/**
 * An alias needs an anchor, and an anchor property follows a line start, a space or a flow
 * indicator (YAML 1.2 §6.9.2); without one the value cannot expand, so its size is not walked.
 */
const HAS_ANCHOR = /(?:^|[\s[{,])&[^\s]/m;

/** Tags are left to the `yaml` path (its exact semantics: unknown tags are warnings there). */
const HAS_TAG = /(?:^|[\s[{,-])![^\s]/m;

const JS_YAML_OPTIONS = { schema: yaml12CoreSchema, json: false, maxDepth: 2 * MAX_NESTING_DEPTH + 2 } as jsyaml.LoadOptions;

/**
 * A text js-yaml refuses is read again by `yaml`'s document API, which reports every YAML error,
 * up to this many characters; a larger one is reported with js-yaml's first error only, in
 * js-yaml's words (a repeated key in yaml's: "Map keys must be unique"). yaml reads about
 * 25 µs per line (0.7-1 s for a 1 MiB file), and an error must be reported within a second
 * whatever the file's size.
 */
const DOCUMENT_PATH_MAX_CHARS = 128 * 1024;

type JsYamlRead = { value: unknown } | { deepAt: number } | { refused: { line: number; reason: string } };

/**
 * js-yaml's reading of a text: its value, the line where it gave up on the nesting (js-yaml
 * counts about two levels per collection), the first error it met (line and reason), or
 * undefined for tags.
 */
function readWithJsYaml(text: string): JsYamlRead | undefined {
  if (HAS_TAG.test(text)) return undefined;
  try {
    return { value: jsyaml.load(text, JS_YAML_OPTIONS) };
  } catch (error) {
    const { mark, reason } = error as { mark?: { line: number }; reason?: string };
    const line = (mark?.line ?? 0) + 1;
    return /maxDepth/.test((error as Error).message) ? { deepAt: line } : { refused: { line, reason: reason ?? (error as Error).message.split('\n')[0] } };
  }
}

/** One line of a zone file read as readWithJsYaml reads the file (throws what js-yaml throws). */
function readLineWithJsYaml(line: string): unknown {
  return jsyaml.load(line, JS_YAML_OPTIONS);
}

/** The value js-yaml reads from a zone file, or undefined when the document path must read it. */
export function fastParse(text: string): unknown {
  const read = readWithJsYaml(text);
  const value = read !== undefined && 'value' in read ? read.value : undefined;
  return value === null || typeof value !== 'object' || Array.isArray(value) ? undefined : value;
}

/**
 * Whether aliases make the value much larger than what was written: its nodes counted with every
 * alias expanded (memoized per shared object: linear) against the distinct nodes.
 */
function aliasExpansionTooLarge(value: unknown): boolean {
  const expanded = new Map<object, number>();
  let distinct = 0;
  const size = (node: unknown): number => {
    if (node === null || typeof node !== 'object') {
      distinct++;
      return 1;
    }
    const known = expanded.get(node);
    if (known !== undefined) return known;
    expanded.set(node, 1); // js-yaml values have no cycles; this only guards the recursion
    distinct++;
    let total = 1;
    for (const child of Array.isArray(node) ? node : Object.values(node)) total += size(child);
    expanded.set(node, total);
    return total;
  };
  const total = size(value);
  return total > distinct * MAX_ALIAS_EXPANSION + ALIAS_EXPANSION_ALLOWANCE;
}

/** The `yaml` document path: the value, or every YAML problem with its line. */
function readDocument(text: string, file: string): { value: unknown; lineOf: LineOf } | { problems: ConfigProblem[] } {
  const { doc, lineCounter, lineOf } = parseWithLines(text);
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  const errors = [
    ...doc.errors.map((e) => ({ offset: e.pos[0], message: e.message.split('\n')[0] })),
    ...duplicateKeyOffsets(doc).map((offset) => ({ offset, message: 'Map keys must be unique' })),
  ];
  if (errors.length > 0) {
    errors.sort((a, b) => a.offset - b.offset);
    return { problems: unique(errors.map((e) => ({ file, line: lineAt(e.offset), path: '(yaml)', message: e.message, code: 'EZONE_YAML' as const }))) };
  }
  try {
    return { value: doc.toJS({ maxAliasCount: 100 }), lineOf };
  } catch (error) {
    // yaml throws for alias bombs ("Excessive alias count") and similar exhaustion attempts.
    return { problems: [{ file, line: 1, path: '(yaml)', message: (error as Error).message.split('\n')[0], code: 'EZONE_LIMIT' }] };
  }
}

function issuesToProblems(error: z.ZodError, file: string, lineOf: LineOf): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ file, line: lineOf([...path, key]), path: formatPath([...path, key]), message: 'unknown key', code: 'EZONE_SCHEMA' });
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === 'invalid_type' && /received undefined/.test(message)) message = 'required';
    if (issue.code === 'invalid_union') message = unionMessage(issue) ?? message;
    problems.push({ file, line: lineOf(path), path: formatPath(path), message, code: 'EZONE_SCHEMA' });
  }
  return problems.sort((a, b) => a.line - b.line);
}

/** zod reports a failed union as one issue; show the most specific branch's first message. */
function unionMessage(issue: z.core.$ZodIssue): string | undefined {
  const errors = (issue as { errors?: z.core.$ZodIssue[][] }).errors;
  if (!errors) return undefined;
  const deepest = errors.flat().sort((a, b) => b.path.length - a.path.length)[0];
  if (!deepest) return undefined;
  const sub = deepest.path.length > 0 ? `${formatPath(deepest.path.map(String))}: ` : '';
  return `${sub}${deepest.message}`;
}
