/**
 * The line of a path in a zone file, as `file:line` problems report it: the line of the key of
 * the deepest existing mapping entry on the path, or of its scalar value, or of the sequence
 * item (`documentLineOf`, on the `yaml` document, whose nodes keep their source ranges).
 *
 * Building that document costs ~50 µs per zone name (1.4 s for a 1 MiB file), so
 * `lineLocator` finds the entry on the text instead: it follows the path down block mappings by
 * their indentation (one index of keys per mapping, built once) to the smallest entry that holds
 * the rest of the path. An entry of one line holds every node of it on that line; a longer one is
 * built as a `yaml` document of its lines only, and the line taken there. Either way the entry,
 * read alone, must equal the value the file was read as; when it does not (a layout the
 * indentation rules here do not cover, an alias to an anchor outside the entry), the whole
 * document is built and asked instead, so a line is never guessed.
 */
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import type { Document, LineCounter, Node, Pair, YAMLMap } from 'yaml';

/**
 * `yaml` is loaded the first time a document is built (~150 ms of start-up that a valid zone set,
 * read by js-yaml alone, never needs).
 */
let yamlModule: typeof import('yaml') | undefined;
const yaml = (): typeof import('yaml') => (yamlModule ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

export type Path = readonly (string | number)[];
export type LineOf = (path: Path) => number;

/** lineOf on a whole `yaml` document; the pairs of each mapping are indexed once, not searched per path. */
export function documentLineOf(doc: Document, lineCounter: LineCounter): LineOf {
  const { isMap, isPair, isScalar, isSeq } = yaml();
  const pairs = new WeakMap<YAMLMap, Map<unknown, Pair>>();
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  const pairOf = (map: YAMLMap, key: string | number): Pair | undefined => {
    let index = pairs.get(map);
    if (index === undefined) {
      index = new Map();
      for (const p of map.items) {
        if (!isPair(p)) continue;
        const k = isScalar(p.key) ? p.key.value : p.key;
        // Loose equality as a YAML key and a path element compare: 1 and "1" are the same key here.
        const id = typeof k === 'number' || typeof k === 'string' ? String(k) : k;
        if (!index.has(id)) index.set(id, p);
      }
      pairs.set(map, index);
    }
    return index.get(String(key));
  };
  return (path) => {
    let node: Node | null | undefined = doc.contents as Node | null;
    let line = node?.range ? lineAt(node.range[0]) : 1;
    for (const key of path) {
      if (isMap(node)) {
        const pair = pairOf(node, key);
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
  };
}

/** The `yaml` document of a text and its lineOf (keys are checked for duplicates elsewhere). */
export function parseWithLines(text: string): { doc: Document; lineCounter: LineCounter; lineOf: LineOf } {
  const { LineCounter, parseDocument } = yaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false });
  return { doc, lineCounter, lineOf: documentLineOf(doc, lineCounter) };
}

/**
 * A name defined twice is an error, not a silent override: the offset of every repeated scalar
 * key of a mapping (yaml's `uniqueKeys` finds the same ones comparing each key with every earlier
 * one; one Set per mapping here).
 */
export function duplicateKeyOffsets(doc: Document): number[] {
  const { isScalar, visit } = yaml();
  const found: number[] = [];
  visit(doc, {
    Map(_, map) {
      const keys = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = pair.key.value;
        if (keys.has(key) && !Number.isNaN(key)) found.push(pair.key.range?.[0] ?? 0);
        keys.add(key);
      }
    },
  });
  return found;
}

/** Entries of one block collection: lines [first, end) whose entries start at column `indent`. */
interface Block {
  readonly first: number;
  readonly end: number;
  readonly indent: number;
  readonly sequence: boolean;
}

/** An entry found on the path: its lines, and how many path elements lead to it. */
interface Entry {
  readonly start: number;
  readonly end: number;
  readonly depth: number;
  readonly item: boolean;
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const COLON = 0x3a;
const HASH = 0x23;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const BACKSLASH = 0x5c;
const NOT_CONTENT = -1;

/**
 * Each entry's document costs ~0.5 ms however small (the `yaml` parser's set-up); past this many
 * entries, one document of the whole file is cheaper.
 */
const MAX_ENTRY_DOCUMENTS = 64;

/**
 * lineOf for a text that parsed to `value`, without the whole document. `readLine` reads the
 * text of a one-line entry (a `key: value` line, every node of which is on that line) as that
 * parser did; longer entries are read by `yaml`. Lines are 1-based, as `documentLineOf` gives them.
 */
export function lineLocator(text: string, value: unknown, readLine: (line: string) => unknown): LineOf {
  // Its tables are built on the first line asked for: a file without problems never needs them.
  let locate: LineOf | undefined;
  return (path) => (locate ??= textLocator(text, value, readLine))(path);
}

function textLocator(text: string, value: unknown, readLine: (line: string) => unknown): LineOf {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  const count = text.endsWith('\n') ? starts.length - 1 : starts.length;
  const indents = new Int32Array(count);
  for (let l = 0; l < count; l++) {
    let i = starts[l];
    while (text.charCodeAt(i) === SPACE) i++;
    const c = text.charCodeAt(i);
    indents[l] = i >= text.length || c === LF || c === CR || c === HASH ? NOT_CONTENT : i - starts[l];
  }
  // A line's text after its indentation, without its line break, as offsets: a scan of every line
  // of a block (keysOf) takes no substring but the keys.
  const contentStart = (l: number) => starts[l] + Math.max(0, indents[l]);
  const contentEnd = (l: number) => {
    let end = l + 1 < starts.length ? starts[l + 1] : text.length;
    if (text.charCodeAt(end - 1) === LF) end -= text.charCodeAt(end - 2) === CR && end - 2 >= starts[l] ? 2 : 1;
    return end;
  };
  const lineText = (l: number) => text.slice(contentStart(l), contentEnd(l));
  const isDash = (l: number) => {
    const at = contentStart(l);
    const next = at + 1 < contentEnd(l) ? text.charCodeAt(at + 1) : SPACE;
    return text.charCodeAt(at) === 0x2d /* - */ && (next === SPACE || next === TAB);
  };

  let whole: LineOf | undefined;
  const wholeDocument: LineOf = (path) => (whole ??= parseWithLines(text).lineOf)(path);

  const keyIndex = new Map<number, Map<string, number>>();
  const keysOf = (block: Block): Map<string, number> => {
    let keys = keyIndex.get(block.first);
    if (keys !== undefined) return keys;
    keys = new Map();
    for (let l = block.first; l < block.end; l++) {
      if (indents[l] !== block.indent || isDash(l)) continue;
      const from = contentStart(l);
      const colon = keyColon(text, from, contentEnd(l));
      if (colon === -1) continue;
      const raw = text.slice(from, colon).trimEnd();
      keys.set(raw, keys.has(raw) ? NOT_CONTENT : l);
    }
    keyIndex.set(block.first, keys);
    return keys;
  };
  const itemsOf = (block: Block): number[] => {
    const items: number[] = [];
    for (let l = block.first; l < block.end; l++) if (indents[l] === block.indent && isDash(l)) items.push(l);
    return items;
  };
  const ends = new Map<number, number>();
  /** The line after the entry starting at `start` of `block`. */
  const entryEnd = (block: Block, start: number): number => {
    let end = ends.get(start);
    if (end !== undefined) return end;
    end = block.end;
    for (let l = start + 1; l < block.end; l++) {
      const indent = indents[l];
      if (indent === NOT_CONTENT || indent > block.indent) continue;
      if (indent === block.indent && !block.sequence && isDash(l)) continue; // `key:` followed by `- item` at the key's column
      end = l;
      break;
    }
    ends.set(start, end);
    return end;
  };
  /** The block collection holding the value of a mapping entry, when it starts on the next lines. */
  const valueBlock = (block: Block, start: number, end: number): Block | undefined => {
    const colon = keyColon(text, contentStart(start), contentEnd(start));
    if (colon === -1 || !/^(?:#.*)?$/.test(text.slice(colon + 1, contentEnd(start)).trim())) return undefined;
    for (let l = start + 1; l < end; l++) {
      if (indents[l] === NOT_CONTENT) continue;
      if (indents[l] < block.indent || (indents[l] === block.indent && !isDash(l))) return undefined;
      return { first: l, end, indent: indents[l], sequence: isDash(l) };
    }
    return undefined;
  };

  /** The root block mapping; undefined for a document that starts otherwise (flow, markers). */
  const root = ((): Block | undefined => {
    for (let l = 0; l < count; l++) {
      if (indents[l] === NOT_CONTENT) continue;
      const t = lineText(l);
      if (t.startsWith('%') || t.startsWith('---') || t.startsWith('{') || t.startsWith('[') || isDash(l)) return undefined;
      return { first: l, end: count, indent: indents[l], sequence: false };
    }
    return undefined;
  })();

  const subDocuments = new Map<number, LineOf | null>();
  /** lineOf inside the document of the entry's lines, or null when it does not read as `expected`. */
  const entryLineOf = (entry: Entry, key: string | number, expected: unknown): LineOf | null => {
    const slice = text.slice(starts[entry.start], entry.end < starts.length ? starts[entry.end] : text.length);
    if (entry.end === entry.start + 1) {
      let read: unknown;
      try {
        read = readLine(slice.trimStart());
      } catch {
        return null;
      }
      return holds(read, entry.item, key, expected) ? () => entry.start + 1 : null;
    }
    let lineOf = subDocuments.get(entry.start);
    if (lineOf !== undefined) return lineOf;
    if (subDocuments.size >= MAX_ENTRY_DOCUMENTS) return null;
    const { doc, lineOf: inSlice } = parseWithLines(slice);
    let read: unknown;
    try {
      read = doc.errors.length === 0 ? doc.toJS({ maxAliasCount: 100 }) : undefined;
    } catch {
      read = undefined; // an alias to an anchor outside the entry
    }
    lineOf = holds(read, entry.item, key, expected) ? (path) => inSlice(path) + entry.start : null;
    subDocuments.set(entry.start, lineOf);
    return lineOf;
  };

  return (path) => {
    if (root === undefined) return wholeDocument(path);
    let block: Block | undefined = root;
    let entry: Entry | undefined;
    let node: unknown = value;
    let nodeAtEntry: unknown;
    for (let depth = 0; depth < path.length && block !== undefined; depth++) {
      const key = path[depth];
      let start: number | undefined;
      if (block.sequence) {
        if (typeof key !== 'number') break;
        start = itemsOf(block)[key];
      } else {
        start = keyCandidates(String(key))
          .map((k) => keysOf(block!).get(k))
          .find((l) => l !== undefined);
        if (start === NOT_CONTENT) return wholeDocument(path);
      }
      if (start === undefined || node === null || typeof node !== 'object') break;
      node = (node as Record<string | number, unknown>)[key];
      const end = entryEnd(block, start);
      entry = { start, end, depth, item: block.sequence };
      nodeAtEntry = node;
      block = block.sequence ? undefined : valueBlock(block, start, end);
    }
    // No entry on the path: a key missing at the root is reported on the root's first line.
    if (entry === undefined) return path.length > 0 && !hasKey(value, path[0]) ? root.first + 1 : wholeDocument(path);
    const inEntry = entryLineOf(entry, path[entry.depth], nodeAtEntry);
    if (inEntry === null) return wholeDocument(path);
    return inEntry([entry.item ? 0 : path[entry.depth], ...path.slice(entry.depth + 1)]);
  };
}

/** Whether an entry read alone is the entry the path leads to: `key: expected`, or `- expected`. */
function holds(read: unknown, item: boolean, key: string | number, expected: unknown): boolean {
  if (item) return Array.isArray(read) && read.length === 1 && isDeepStrictEqual(read[0], expected);
  return read !== null && typeof read === 'object' && !Array.isArray(read) && Object.keys(read).length === 1 && String(key) in read && isDeepStrictEqual((read as Record<string, unknown>)[String(key)], expected);
}

function hasKey(node: unknown, key: string | number): boolean {
  return node !== null && typeof node === 'object' && Object.prototype.hasOwnProperty.call(node, key);
}

/** The ways a key can be written before its `:` (plain, double- or single-quoted). */
function keyCandidates(key: string): string[] {
  return [key, JSON.stringify(key), `'${key.replaceAll("'", "''")}'`];
}

/**
 * The offset of the `:` that ends the key of the `key: value` line text[from, to) (plain, double-
 * or single-quoted key), or -1 if it is no such line.
 */
function keyColon(text: string, from: number, to: number): number {
  const q = from < to ? text.charCodeAt(from) : -1;
  if (q === DQUOTE || q === SQUOTE) {
    let i = from + 1;
    for (; i < to; i++) {
      const c = text.charCodeAt(i);
      if (q === DQUOTE && c === BACKSLASH) i++;
      else if (c === q) {
        if (q === SQUOTE && i + 1 < to && text.charCodeAt(i + 1) === SQUOTE) i++;
        else break;
      }
    }
    if (i >= to) return -1;
    i++;
    while (i < to && (text.charCodeAt(i) === SPACE || text.charCodeAt(i) === TAB)) i++;
    return i < to && text.charCodeAt(i) === COLON && endsKey(text, i + 1, to) ? i : -1;
  }
  if (q !== -1 && '?[{&!*|>'.includes(text[from])) return -1;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === COLON && endsKey(text, i + 1, to)) return i;
    if (c === SPACE && i + 1 < to && text.charCodeAt(i + 1) === HASH) return -1; // a comment before any `key:`
  }
  return -1;
}

/** Whether a `:` followed by text[at] ends a key: at the line's end, or before a space or tab. */
function endsKey(text: string, at: number, to: number): boolean {
  return at >= to || text.charCodeAt(at) === SPACE || text.charCodeAt(at) === TAB;
}
