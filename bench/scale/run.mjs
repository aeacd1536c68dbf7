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
 *   2. serve --workers N: time to listen, RSS of every worker (and of the primary, which
 *      compiles the zones too, for its prober). Target <= 300 MB per worker.
 *   3. live reload under load: dnsperf at --rate QPS over names of every kind for --duration
 *      seconds; after a third of it one zone file changes and SIGHUP rolls the reload through
 *      the workers. Reports the reload time, peak RSS per worker, and dnsperf's lost queries
 *      (target 0).
 * --single also runs 3. with --workers 1, where the compile blocks the only worker (the
 * datagrams wait in the socket buffer; loss shows when they overflow it).
 * --udp-threads also runs 2. and 3. with `serve --udp-threads N` (one process; the main thread
 * and every UDP thread each hold a compiled copy; a reload rolls through the threads).
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dnsperf, ensurePackages, have, load, machine, startSitedns } from '../qps/lib.mjs';
import { generate } from './generate.mjs';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '100000' },
    workers: { type: 'string', default: '' },
    duration: { type: 'string', default: '20' },
    rate: { type: 'string', default: '20000' },
    single: { type: 'boolean', default: false },
    'udp-threads': { type: 'boolean', default: false },
    'no-install': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const info = machine();
const names = Number(values.names);
const workers = values.workers ? Number(values.workers) : info.nproc;
const duration = Number(values.duration);
const rate = Number(values.rate);
ensurePackages(['dnsperf'], !values['no-install']);

const dir = mkdtempSync(join(tmpdir(), 'sitedns-scale-'));
const { zones, queries } = generate(dir, names);
const results = { machine: info, names, zones, workers, loadAtStart: load(), startedAt: new Date().toISOString() };
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

async function serveAndReload(n, threads = 0) {
  const t0 = performance.now();
  const server = await startSitedns(
    threads > 0
      ? { zonesDir: dir, workers: 1, udpPath: 'batched', extraArgs: ['--udp-threads', String(threads)] }
      : { zonesDir: dir, workers: n, udpPath: process.env.SITEDNS_BENCH_UDP_PATH ?? 'dgram' },
  );
  const startMs = Math.round(performance.now() - t0);
  const pids = () => {
    const seen = new Map();
    for (const line of server.lines) {
      const m = /"msg":"worker (?:listening|restarted)"/.test(line) && /"worker":(\d+)/.exec(line);
      if (m) seen.set(Number(m[1]), true);
    }
    return n === 1 ? [server.proc.pid] : [...seen.keys()];
  };
  const out = { workers: n, udpThreads: threads, startMs, load: load() };
  out.rssMB = pids().map(rssOf);
  if (n > 1) out.primaryRssMB = rssOf(server.proc.pid);
  const what = threads > 0 ? `serve --udp-threads ${threads}` : `serve --workers ${n}`;
  console.log(`${what}: listening after ${startMs} ms; RSS ${threads > 0 ? 'of the one process' : 'per worker'} ${out.rssMB.join(', ')} MB${n > 1 ? `, primary ${out.primaryRssMB} MB` : ''}`);

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
  // The reload is done when the last answerer has it: every worker, or every UDP thread.
  const doneRe = threads > 0 ? /"msg":"UDP threads reloaded"/ : n > 1 ? /"msg":"rolling reload done"/ : /"msg":"zones reloaded"/;
  while (!server.lines.slice(linesBefore).some((l) => doneRe.test(l)) && performance.now() - hupAt < duration * 1000) await new Promise((r) => setTimeout(r, 50));
  out.reloadMs = Math.round(performance.now() - hupAt);
  const result = await perf;
  clearInterval(sampler);
  out.peakRssMB = [...peak.values()];
  out.dnsperf = result;
  out.loadEnd = load();
  await server.stop();
  console.log(`  reload under ${rate} QPS: done ${out.reloadMs} ms after SIGHUP; peak RSS ${threads > 0 ? '' : 'per worker '}${out.peakRssMB.join(', ')} MB; dnsperf sent ${result.sent}, completed ${result.completed}, lost ${result.lost} (load ${out.loadEnd})`);
  return out;
}

try {
  if (!have('dnsperf')) throw new Error('dnsperf is missing');
  results.cluster = await serveAndReload(workers);
  if (values.single && workers !== 1) results.single = await serveAndReload(1);
  if (values['udp-threads']) results.udpThreads = await serveAndReload(1, workers);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
results.loadAtEnd = load();
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
