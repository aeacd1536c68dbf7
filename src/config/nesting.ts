/**
 * The nesting depth of a zone file, measured on its text before any YAML parser runs: both YAML
 * parsers recurse once per level, so a file of 300,000 `[` costs seconds and a stack overflow
 * per parse. A zone file needs about six levels (records -> name -> type -> list -> item); 64
 * leaves room for any hand-written layout.
 */
export const MAX_NESTING_DEPTH = 64;

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

const isBlank = (c: number) => c === SPACE || c === TAB || c === LF || c === CR;

/**
 * The first line (1-based) where the nesting goes deeper than `limit`, or 0. Counted: flow
 * collections (`[`, `{` outside quotes and comments), block collections (one level per
 * indentation deeper than the enclosing one) and compact sequences (`- - -` on one line).
 * Continuation lines of a multi-line scalar count as deeper indentation: an overestimate of a
 * few levels, never an underestimate.
 */
export function lineDeeperThan(text: string, limit = MAX_NESTING_DEPTH): number {
  const indents: number[] = [];
  let flow = 0;
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    // At the start of a line: its indentation and leading `- ` / `? ` indicators (block levels).
    if (flow === 0) {
      let col = 0;
      while (i < n && text.charCodeAt(i) === SPACE) (i++, col++);
      const c = text.charCodeAt(i);
      if (i < n && c !== LF && c !== CR && c !== 0x23 /* # */) {
        while (indents.length > 0 && indents[indents.length - 1] >= col) indents.pop();
        indents.push(col);
        while ((text.charCodeAt(i) === 0x2d /* - */ || text.charCodeAt(i) === 0x3f /* ? */) && isBlank(text.charCodeAt(i + 1))) {
          i++;
          col++;
          while (text.charCodeAt(i) === SPACE) (i++, col++);
          indents.push(col);
          if (indents.length > limit) return line;
        }
        if (indents.length > limit) return line;
      }
    }
    // The rest of the line: flow indicators, quoted scalars (which may span lines), comments.
    let prev = SPACE;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === LF) {
        line++;
        i++;
        break;
      }
      const starts = isBlank(prev) || prev === 0x5b || prev === 0x7b || prev === 0x2c; // after space [ { ,
      if (c === 0x23 /* # */ && isBlank(prev)) {
        while (i < n && text.charCodeAt(i) !== LF) i++;
        i--;
      } else if ((c === 0x22 /* " */ || c === 0x27) /* ' */ && starts) {
        for (i++; i < n; i++) {
          const q = text.charCodeAt(i);
          if (q === LF) line++;
          else if (c === 0x22 && q === 0x5c /* \ */) i++;
          else if (q === c) {
            if (c === 0x27 && text.charCodeAt(i + 1) === 0x27) i++;
            else break;
          }
        }
      } else if ((c === 0x5b /* [ */ || c === 0x7b) /* { */ && (starts || flow > 0)) {
        flow++;
        if (flow + indents.length > limit) return line;
      } else if ((c === 0x5d /* ] */ || c === 0x7d) /* } */ && flow > 0) {
        flow--;
      }
      prev = c;
    }
  }
  return 0;
}
