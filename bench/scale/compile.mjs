#!/usr/bin/env node
/**
 * Compiles a zone directory in a fresh process and reports CPU and wall time per phase (YAML +
 * schema, compile, prebuilt table) and the memory the result holds (after a full GC, with the
 * loaded files dropped, as in the server). Used by bench/scale/run.mjs.
 *   node --expose-gc bench/scale/compile.mjs <zones-dir>
 */
const dist = new URL('../../dist/', import.meta.url);
const { loadZoneDirectory } = await import(new URL('config/load.js', dist));
const { compileZoneFiles, makeZoneSet } = await import(new URL('config/compile.js', dist));
const { prebuildTable } = await import(new URL('server/fast-path.js', dist));

const dir = process.argv[2];
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const rssBefore = process.memoryUsage().rss;
const c0 = cpu();
const w0 = performance.now();
let loaded = loadZoneDirectory(dir);
const c1 = cpu();
const w1 = performance.now();
const compiled = compileZoneFiles(loaded.files);
const problems = loaded.problems.length + compiled.problems.length;
loaded = null;
const c2 = cpu();
const w2 = performance.now();
const zoneSet = makeZoneSet(compiled.zones);
const table = prebuildTable(zoneSet);
const c3 = cpu();
const w3 = performance.now();
globalThis.gc?.();
const mem = process.memoryUsage();
let names = 0;
for (const z of zoneSet.zones.values()) names += z.nodes.size;
console.log(
  JSON.stringify({
    zones: zoneSet.zones.size,
    names,
    tableNames: table.size,
    problems,
    cpuMs: { load: Math.round(c1 - c0), compile: Math.round(c2 - c1), table: Math.round(c3 - c2), total: Math.round(c3 - c0) },
    wallMs: { load: Math.round(w1 - w0), compile: Math.round(w2 - w1), table: Math.round(w3 - w2), total: Math.round(w3 - w0) },
    rssMB: Math.round(mem.rss / 1e6),
    rssGrowthMB: Math.round((mem.rss - rssBefore) / 1e6),
    heapUsedMB: Math.round(mem.heapUsed / 1e6),
  }),
);
