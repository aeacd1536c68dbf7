/**
 * The source layout has layers: src/ has no import cycles, and the floor directories (dns, dnssec, model, policy, state, zones,
 * config, probe, metrics, util, affinity) never import the rooms built on them (server, admin, cli, app), and state/
 * never imports policy/ (policy/ reads state/'s snapshots). The check
 * reads the files, so it sees type-only imports too; a floor module that needs a type from above means the type
 * belongs on the floor.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

const FLOOR = ['dns', 'dnssec', 'model', 'policy', 'state', 'config', 'zones', 'probe', 'metrics', 'util', 'affinity'];
const ABOVE = ['server', 'admin', 'cli', 'app'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative specifiers of `import … from`, `import type`, `export … from`, side-effect and literal dynamic imports. */
export function relativeImports(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) if (match[1].startsWith('.')) found.push(match[1]);
  }
  return found;
}

/** src-relative path (`server/handler.ts`) of a specifier written in `from` (compiled `.js` names map to `.ts`). */
function target(from: string, specifier: string): string {
  const abs = resolve(dirname(from), specifier).replace(/\.js$/, '.ts');
  return relative(SRC, abs).split('\\').join('/');
}

export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const name = relative(SRC, file).split('\\').join('/');
    const edges = relativeImports(readFileSync(file, 'utf8')).map((s) => target(file, s));
    graph.set(name, [...new Set(edges)]);
  }
  return graph;
}

/** Every cycle's strongly connected component (Tarjan), each printed as one path around it. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    order.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!order.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, order.get(w)!));
    }
    if (low.get(v) !== order.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(pathThrough(graph, new Set(component), v));
  };
  for (const v of [...graph.keys()].sort()) if (!order.has(v)) visit(v);
  return found;
}

/** A shortest path from start back to start inside one component, for the failure message. */
function pathThrough(graph: Map<string, string[]>, members: Set<string>, start: string): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let at = v; at !== start; at = previous.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The lowest floor: DNS bytes and the compiled model, which every other layer reads. */
const BASE = ['dns', 'model', 'util'];

const top = (path: string) => path.split('/')[0];

t.test('the check reads every import form', async (t) => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "import {\n  c,\n  type D,\n} from './c.js';",
    "export { e } from './e.js';",
    "export * from './f.js';",
    "export type { G } from './g.js';",
    "import './side-effect.js';",
    "const h = await import('./h.js');",
    "import { readFileSync } from 'node:fs';",
    "// import { no } from './commented.js';",
  ].join('\n');
  t.same(relativeImports(text).sort(), ['../b.js', './a.js', './c.js', './e.js', './f.js', './g.js', './h.js', './side-effect.js']);
  t.same(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c', 'a']]);
});

t.test('src/ has no import cycles', async (t) => {
  const graph = importGraph();
  t.ok(graph.size > 50, `read ${graph.size} modules`);
  const found = cycles(graph);
  t.same(found.map((c) => c.join(' -> ')), [], 'import cycles');
});

t.test('floor modules do not import server/, admin/, cli/ or app/', async (t) => {
  const forbidden: string[] = [];
  for (const [file, edges] of importGraph()) {
    if (!FLOOR.includes(top(file))) continue;
    for (const edge of edges) if (ABOVE.includes(top(edge))) forbidden.push(`${file} -> ${edge}`);
  }
  t.same(forbidden, [], 'forbidden edges');
});

t.test('dns/ and model/ import only dns/, model/ and util/', async (t) => {
  const forbidden: string[] = [];
  for (const [file, edges] of importGraph()) {
    if (!BASE.includes(top(file))) continue;
    for (const edge of edges) if (!BASE.includes(top(edge))) forbidden.push(`${file} -> ${edge}`);
  }
  t.same(forbidden, [], 'edges out of the lowest floor');
});

t.test('state/ does not import policy/ (policy/ reads state/\'s snapshots; a rule the follower runs is given to it)', async (t) => {
  const forbidden: string[] = [];
  for (const [file, edges] of importGraph()) {
    if (top(file) !== 'state') continue;
    for (const edge of edges) if (top(edge) === 'policy') forbidden.push(`${file} -> ${edge}`);
  }
  t.same(forbidden, [], 'edges from state/ up to policy/');
});
