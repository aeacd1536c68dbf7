#!/usr/bin/env node
/**
 * bench/scale: a generated zone set of --names names (default 100,000: pools, groups,
 * sites and static records, bench/scale/generate.mjs).
 *
 *   npm run build && node bench/scale/run.mjs          # 100,000 names
 *   node bench/scale/run.mjs --names 2000 --duration 4 --rate 500   # quick look (CI size)
 *
 * Reports:
 *   1. compile: CPU and wall time of YAML+schema, compile and the prebuilt table, in a fresh
 *      process (bench/scale/compile.mjs), and the memory the compiled set holds. Target <= 3 s.
 *   2. the default `serve --udp-threads N` (--threads N, default every core; where the batched
 *      addon is built): time to listen, RSS of the one process (the main thread and every UDP
 *      thread each hold a compiled copy).
 *   3. live reload under load: dnsperf at --rate QPS over names of every kind for --duration
 *      seconds; after a third of it one zone file changes and SIGHUP rolls the reload through
 *      the threads. Reports the reload time, peak RSS, and dnsperf's lost queries (target 0).
 * --main-thread also runs 2. and 3. with `serve --udp-threads 0` (UDP on the main thread's event
 * loop, as where the addon is absent, which then runs instead).
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dnsperf, ensurePackages, have, load, machine, startSitedns, udpThreadsUnavailable } from '../qps/lib.mjs';
import { generate } from './generate.mjs';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '100000' },
    threads: { type: 'string', default: '' },
    duration: { type: 'string', default: '20' },
    rate: { type: 'string', default: '20000' },
    'main-thread': { type: 'boolean', default: false },
    'no-install': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const info = machine();
const names = Number(values.names);
const threads = values.threads ? Number(values.threads) : info.nproc;
const duration = Number(values.duration);
const rate = Number(values.rate);
ensurePackages(['dnsperf'], !values['no-install']);

const dir = mkdtempSync(join(tmpdir(), 'sitedns-scale-'));
const { zones, queries } = generate(dir, names);
const results = { machine: info, names, zones, threads, loadAtStart: load(), startedAt: new Date().toISOString() };
console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}; load ${results.loadAtStart}`);
console.log(`zone set: ${names} names in ${zones} zone files (${dir})`);

// 1. compile in a fresh process
const compileScript = fileURLToPath(new URL('./compile.mjs', import.meta.url));
const c = spawnSync(process.execPath, ['--expose-gc', compileScript, dir], { encoding: 'utf8' });
if (c.status !== 0) throw new Error(`compile.mjs failed:\n${c.stderr}`);
results.compile = { ...JSON.parse(c.stdout.trim().split('\n').pop()), load: load() };
const cm = results.compile;
console.log(`compile: ${cm.names} names, CPU ${cm.cpuMs.total} ms (yaml+schema ${cm.cpuMs.load}, compile ${cm.cpuMs.compile}, table ${cm.cpuMs.table}), wall ${cm.wallMs.total} ms; holds ${cm.heapUsedMB} MB heap, RSS ${cm.rssMB} MB (load ${cm.load})`);

function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : NaN;
  } catch {
    return NaN;
  }
}

async function serveAndReload(threads) {
  const t0 = performance.now();
  const server = await startSitedns({ zonesDir: dir, threads, udpPath: process.env.SITEDNS_BENCH_UDP_PATH ?? 'auto' });
  const startMs = Math.round(performance.now() - t0);
  const pids = () => [server.proc.pid];
  const out = { udpThreads: threads, startMs, load: load() };
  out.rssMB = pids().map(rssOf);
  const what = `serve --udp-threads ${threads}`;
  console.log(`${what}: listening after ${startMs} ms; RSS ${out.rssMB.join(', ')} MB`);

  // 3. reload under load
  const peak = new Map();
  const sampler = setInterval(() => {
    for (const pid of pids()) peak.set(pid, Math.max(peak.get(pid) ?? 0, rssOf(pid) || 0));
  }, 200);
  const perf = dnsperf({ port: server.port, queries, seconds: duration, clients: 4, rate, verbose: false });
  await new Promise((r) => setTimeout(r, (duration * 1000) / 3));
  const file = join(dir, 'z0.scale.test.yaml');
  appendFileSync(file, `  reloaded${Date.now()}: { A: [192.0.2.77] }\n`);
  const hupAt = performance.now();
  const linesBefore = server.lines.length;
  server.proc.kill('SIGHUP');
  // The reload is done when the last answerer has it: every UDP thread, or the main thread.
  const doneRe = threads > 0 ? /"msg":"UDP threads reloaded"/ : /"msg":"zones reloaded"/;
  while (!server.lines.slice(linesBefore).some((l) => doneRe.test(l)) && performance.now() - hupAt < duration * 1000) await new Promise((r) => setTimeout(r, 50));
  out.reloadMs = Math.round(performance.now() - hupAt);
  const result = await perf;
  clearInterval(sampler);
  out.peakRssMB = [...peak.values()];
  out.dnsperf = result;
  out.loadEnd = load();
  await server.stop();
  console.log(`  reload under ${rate} QPS: done ${out.reloadMs} ms after SIGHUP; peak RSS ${out.peakRssMB.join(', ')} MB; dnsperf sent ${result.sent}, completed ${result.completed}, lost ${result.lost} (load ${out.loadEnd})`);
  return out;
}

try {
  if (!have('dnsperf')) throw new Error('dnsperf is missing');
  const noThreads = await udpThreadsUnavailable();
  if (noThreads !== null) console.error(`serve --udp-threads left out: ${noThreads}`);
  else results.udpThreads = await serveAndReload(threads);
  if (values['main-thread'] || noThreads !== null) results.mainThread = await serveAndReload(0);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
results.loadAtEnd = load();
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
