#!/usr/bin/env node
/**
 * Compile time and memory of a signed zone set: bench/scale's generated zones (100,000 names by
 * default) with `dnssec: true`, compiled and signed in a fresh process, against the same set
 * unsigned. Reports CPU and wall time of the compile (signing included) and of the prebuilt
 * table, signatures made, and the memory held after a full GC.
 *   npm run build && node --expose-gc bench/dnssec/compile.mjs [--names 100000] [--json]
 *
 * With --reload: a reload of the whole signed set instead (every file edited), through the zone
 * store as serve runs it: the CPU the main thread spent on it (Linux /proc/thread-self/schedstat),
 * the whole process's CPU, the wall time, the main thread's longest event-loop gap (a 1 ms timer),
 * and where the zones were signed (on the main thread, or adopted from the loader thread).
 *   npm run build && node bench/dnssec/compile.mjs --reload [--names 10000]
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { stallTimer } from '../reload/stall-timer.mjs';
import { fileURLToPath } from 'node:url';
import { generate } from '../scale/generate.mjs';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};

if (args[0] === '--child' && args[2] === 'reload') {
  // A reload of every file of args[1], signed, after a first load; measured on the main thread.
  const { ZoneStore } = await import(new URL('../../dist/zones/zone-store.js', import.meta.url));
  const { benchSigning } = await import('./keys.mjs');
  const store = new ZoneStore(args[1], { keys: benchSigning() });
  await store.load();
  for (const file of readdirSync(args[1])) appendFileSync(join(args[1], file), '# edited\n');
  const threadCpuMs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  const stalls = stallTimer();
  const c0 = threadCpuMs();
  const p0 = process.cpuUsage();
  const w0 = performance.now();
  const report = await store.load();
  const mainCpuMs = threadCpuMs() - c0;
  const p1 = process.cpuUsage(p0);
  const wallMs = performance.now() - w0;
  const longestGapMs = stalls.stop();
  await store.close();
  let names = 0;
  for (const z of report.zoneSet.zones.values()) names += z.nodes.size;
  const r = (x) => Math.round(x);
  console.log(JSON.stringify({ kind: 'reload', zones: report.zoneSet.zones.size, names, problems: report.problems.length, signing: report.signing, mainCpuMs: r(mainCpuMs), processCpuMs: r((p1.user + p1.system) / 1000), wallMs: r(wallMs), longestGapMs: r(longestGapMs) }));
  process.exit(0);
}

if (args[0] === '--child') {
  // One measurement in this process: args[1] the zones directory, args[2] 'signed' or 'unsigned'.
  const dist = new URL('../../dist/', import.meta.url);
  const { loadZoneDirectory } = await import(new URL('config/load.js', dist));
  const { compileZoneFiles, makeZoneSet } = await import(new URL('config/compile.js', dist));
  const { prebuildTable } = await import(new URL('server/fast-path.js', dist));
  const { benchSigning } = await import('./keys.mjs');
  const signing = args[2] === 'signed' ? benchSigning() : undefined;
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const rssBefore = process.memoryUsage().rss;
  let loaded = loadZoneDirectory(args[1]);
  if (signing) for (const zone of loaded.files) signing.keysFor(zone.config.zone);
  const c0 = cpu();
  const w0 = performance.now();
  const compiled = compileZoneFiles(loaded.files, signing);
  const problems = loaded.problems.length + compiled.problems.length;
  loaded = null;
  const c1 = cpu();
  const w1 = performance.now();
  const zoneSet = makeZoneSet(compiled.zones);
  prebuildTable(zoneSet);
  const c2 = cpu();
  const w2 = performance.now();
  globalThis.gc?.();
  const mem = process.memoryUsage();
  let names = 0;
  let rrsigs = 0;
  for (const z of zoneSet.zones.values()) {
    names += z.nodes.size;
    const s = z.signatures;
    if (s === undefined) continue;
    for (const set of s.rrsigs.values()) rrsigs += set.records.length;
    rrsigs += s.chain.rrsig.length + s.chain.withoutAddress.size;
    for (const v of s.variants.values()) rrsigs += v.size;
  }
  console.log(JSON.stringify({ kind: args[2], zones: zoneSet.zones.size, names, rrsigs, problems, compileCpuMs: Math.round(c1 - c0), compileWallMs: Math.round(w1 - w0), tableCpuMs: Math.round(c2 - c1), rssMB: Math.round(mem.rss / 1e6), rssGrowthMB: Math.round((mem.rss - rssBefore) / 1e6), heapUsedMB: Math.round(mem.heapUsed / 1e6) }));
  process.exit(0);
}

const names = Number(flag('--names', '100000'));
const dir = mkdtempSync(join(tmpdir(), 'sitedns-dnssec-scale-'));
try {
  generate(dir, names);
  for (const file of readdirSync(dir)) writeFileSync(join(dir, file), readFileSync(join(dir, file), 'utf8') + 'dnssec: true\n');
  const self = fileURLToPath(import.meta.url);
  const rows = (args.includes('--reload') ? ['reload'] : ['unsigned', 'signed']).map((kind) => {
    const r = spawnSync(process.execPath, ['--expose-gc', self, '--child', dir, kind], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  });
  if (args.includes('--json')) console.log(JSON.stringify(rows));
  else if (args.includes('--reload')) for (const r of rows) console.log(`reload of ${r.names} signed names in ${r.zones} zones: main thread ${r.mainCpuMs} ms CPU, longest event-loop gap ${r.longestGapMs} ms; process ${r.processCpuMs} ms CPU, ${r.wallMs} ms wall; zones signed ${JSON.stringify(r.signing ?? 'on the main thread')}`);
  else for (const r of rows) console.log(`${r.kind.padEnd(9)} ${r.names} names in ${r.zones} zones: compile ${r.compileCpuMs} ms CPU (${r.compileWallMs} ms wall), table ${r.tableCpuMs} ms, ${r.rrsigs} signatures, RSS ${r.rssMB} MB, heap ${r.heapUsedMB} MB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
