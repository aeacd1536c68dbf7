/**
 * Zone files -> validated ZoneFile objects, or problems with file, line and path.
 *
 * YAML is parsed with `yaml`'s document API so that every node keeps its source range; a zod
 * issue's path is walked down the document to find the line to report.
 *
 * Fast path (#8, bench/scale): building that document costs ~40 µs per zone name (100,000 names:
 * 4 s of the 3 s budget), so a file is first read with js-yaml (~3 µs per name) under a schema
 * equal to `yaml`'s YAML 1.2 core schema (see yaml12CoreSchema). When that gives a value that
 * passes the zod schema, it is used; the line-numbered document is then built only if the
 * compiler reports a problem and asks `lineOf`. Anything unusual (a js-yaml error, duplicate
 * keys, anchors/aliases, a schema problem) goes through the `yaml` document path unchanged, so
 * every reported problem still comes from it with its line.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import jsyaml from 'js-yaml';
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { zoneFileSchema, type ZoneFile } from './schema.js';
import { formatPath, type ConfigProblem } from './errors.js';

/**
 * Zone files larger than this are refused (a runaway generator, or the wrong file). YAML with
 * source positions costs ~150x its size in memory and about a second of CPU per 30,000 names
 * (yaml 2.9 document API), so 1 MiB (~30,000 names) keeps a load or SIGHUP reload, which blocks
 * answering while it runs, within seconds (#7). sitedns zones hold sites and a few static records.
 */
export const MAX_ZONE_FILE_BYTES = 1024 * 1024;

export interface LoadedZoneFile {
  readonly file: string;
  readonly config: ZoneFile;
  /** 1-based line of the node at `path` (or its nearest existing ancestor). */
  readonly lineOf: (path: readonly (string | number)[]) => number;
}

export interface LoadOutcome {
  readonly files: LoadedZoneFile[];
  readonly problems: ConfigProblem[];
  /** Files that failed, so a reload can keep their last good zone. */
  readonly failedFiles: string[];
}

/** Lists the zone files of a directory (or a single file), sorted for stable output. */
export function listZoneFiles(path: string): string[] {
  const stat = statSync(path);
  if (!stat.isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => /\.ya?ml$/i.test(f) && !f.startsWith('.'))
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
  let list: string[];
  try {
    list = listZoneFiles(path);
  } catch (error) {
    problems.push({ file: displayName(path), line: 0, path: '(root)', message: (error as Error).message, code: 'EZONE_READ' });
    return { files, problems, failedFiles: [path] };
  }
  for (const file of list) {
    const result = loadZoneFile(file);
    if ('problems' in result) {
      problems.push(...result.problems);
      failedFiles.push(file);
    } else files.push(result);
  }
  return { files, problems, failedFiles };
}

export function loadZoneFile(file: string): LoadedZoneFile | { problems: ConfigProblem[] } {
  const text = readZoneText(file);
  if (typeof text !== 'string') return text;
  return parseZoneText(text, displayName(file));
}

/** A zone file's text, or the problem reading it (missing, unreadable, over the size limit). */
export function readZoneText(file: string): string | { problems: ConfigProblem[] } {
  const shown = displayName(file);
  try {
    const size = statSync(file).size;
    if (size > MAX_ZONE_FILE_BYTES) {
      return { problems: [{ file: shown, line: 0, path: '(root)', message: `file is ${size} bytes; the limit is ${MAX_ZONE_FILE_BYTES}`, code: 'EZONE_SIZE' }] };
    }
    return readFileSync(file, 'utf8');
  } catch (error) {
    return { problems: [{ file: shown, line: 0, path: '(root)', message: (error as Error).message, code: 'EZONE_READ' }] };
  }
}

export function parseZoneText(text: string, file: string): LoadedZoneFile | { problems: ConfigProblem[] } {
  const fast = fastParse(text);
  if (fast !== undefined) {
    const parsed = zoneFileSchema.safeParse(fast);
    if (parsed.success) return { file, config: parsed.data, lineOf: lazyLineOf(text) };
  }
  return parseZoneDocument(text, file);
}

/**
 * The scalars of YAML 1.2's core schema exactly as `yaml` resolves them (its default), for
 * js-yaml, whose own CORE_SCHEMA differs in corners (it also reads 0b binary ints, and leaves
 * "+.5" a string): null and bool are the same in both; int and float are redefined here.
 */
const yaml12Int = new jsyaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (data: string) => /^[-+]?[0-9]+$/.test(data) || /^0o[0-7]+$/.test(data) || /^0x[0-9a-fA-F]+$/.test(data),
  construct: (data: string) => (data.startsWith('0o') ? parseInt(data.slice(2), 8) : data.startsWith('0x') ? parseInt(data.slice(2), 16) : Number(data)),
});
const yaml12Float = new jsyaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (data: string) => /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(data) || /^[-+]?\.(?:inf|Inf|INF)$/.test(data) || /^\.(?:nan|NaN|NAN)$/.test(data),
  construct: (data: string) => {
    if (/^[-+]?\.(?:inf|Inf|INF)$/.test(data)) return data.startsWith('-') ? -Infinity : Infinity;
    if (/^\.(?:nan|NaN|NAN)$/.test(data)) return NaN;
    return Number(data);
  },
});
const yaml12CoreSchema = jsyaml.FAILSAFE_SCHEMA.extend({
  implicit: [(jsyaml as unknown as { types: { null: jsyaml.Type; bool: jsyaml.Type } }).types.null, (jsyaml as unknown as { types: { bool: jsyaml.Type } }).types.bool, yaml12Int, yaml12Float],
});

/** Anchors, aliases and tags are left to the `yaml` path (alias limits, exact semantics). */
const NEEDS_DOCUMENT_PATH = /(?:^|[\s[{,:-])[&*!][^\s]/m;

/** The value of a plain, valid zone file, or undefined when the document path must decide. */
export function fastParse(text: string): unknown {
  if (NEEDS_DOCUMENT_PATH.test(text)) return undefined;
  try {
    const value = jsyaml.load(text, { schema: yaml12CoreSchema, json: false });
    return value === null || typeof value !== 'object' || Array.isArray(value) ? undefined : value;
  } catch {
    return undefined;
  }
}

/** lineOf for a fast-parsed file: the document is built the first time a line is asked for. */
function lazyLineOf(text: string): (path: readonly (string | number)[]) => number {
  let lineOf: ((path: readonly (string | number)[]) => number) | undefined;
  return (path) => {
    if (lineOf === undefined) {
      const lineCounter = new LineCounter();
      const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
      lineOf = (p) => lineOfPath(doc, p, (offset) => lineCounter.linePos(offset).line);
    }
    return lineOf(path);
  };
}

/** The `yaml` document path: every problem with its line. */
function parseZoneDocument(text: string, file: string): LoadedZoneFile | { problems: ConfigProblem[] } {
  const lineCounter = new LineCounter();
  // uniqueKeys: a name defined twice is an error, not a silent override.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => ({
        file,
        line: lineAt(e.pos[0]),
        path: '(yaml)',
        message: e.message.split('\n')[0],
        code: 'EZONE_YAML' as const,
      })),
    };
  }
  const lineOf = (path: readonly (string | number)[]) => lineOfPath(doc, path, lineAt);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // yaml throws for alias bombs ("Excessive alias count") and similar exhaustion attempts (#7).
    return { problems: [{ file, line: 1, path: '(yaml)', message: (error as Error).message.split('\n')[0], code: 'EZONE_LIMIT' }] };
  }
  if (data === null || data === undefined) {
    return { problems: [{ file, line: 1, path: '(root)', message: 'the file is empty', code: 'EZONE_SCHEMA' }] };
  }
  const parsed = zoneFileSchema.safeParse(data);
  if (!parsed.success) return { problems: issuesToProblems(parsed.error, file, lineOf) };
  return { file, config: parsed.data, lineOf };
}

function issuesToProblems(error: z.ZodError, file: string, lineOf: (p: (string | number)[]) => number): ConfigProblem[] {
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

function lineOfPath(doc: Document, path: readonly (string | number)[], lineAt: (offset: number) => number): number {
  let node: Node | null | undefined = doc.contents as Node | null;
  let line = node?.range ? lineAt(node.range[0]) : 1;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? p.key.value : p.key) == key);
      if (!pair) break;
      const keyNode = pair.key as Node | null;
      if (keyNode?.range) line = lineAt(keyNode.range[0]);
      node = pair.value as Node | null;
      if (node?.range && !isMap(node) && !isSeq(node)) line = lineAt(node.range[0]);
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as Node | undefined;
      if (!item) break;
      node = item;
      if (node.range) line = lineAt(node.range[0]);
    } else break;
  }
  return line;
}
