#!/usr/bin/env node
/**
 * bench/qps/cpu.mjs: server CPU time per answered query, sitedns and gdnsd side by side,
 * at the SAME fixed query rate.
 *
 *   npm run build && node bench/qps/cpu.mjs                 # pool and site, 60k QPS, 3 rounds
 *   node bench/qps/cpu.mjs --rate 40000 --seconds 4 --kinds pool,site,static,nxdomain
 *   node bench/qps/cpu.mjs --variant 'no-prebuilt:SITEDNS_PREBUILT=0'   # A/B: one more sitedns
 *                                                    # (default mode) started with that environment
 *   node bench/qps/cpu.mjs --no-udp-threads          # without the default `serve --udp-threads N`
 *   node bench/qps/cpu.mjs --warmup 0                # no unmeasured warm-up (default 3 s per server)
 *
 * Why next to run.mjs: on a 2-core machine dnsperf needs about one core, so "maximum QPS" is
 * decided as much by how the scheduler shares the cores as by the server's cost, and run.mjs's
 * ratio moves by +-10 % between rounds. CPU per query at a rate both servers sustain is what
 * each server spends, measured by the kernel (utime + stime of the server's whole process tree
 * from /proc, in clock ticks): a server that needs less CPU per query reaches a higher maximum
 * once it has the cores to itself. The kernel's UDP receive work is charged to whichever task
 * runs when a datagram lands, so part of it can fall on dnsperf; both servers are measured
 * the same way.
 *
 * The floor (on unless --no-floor): three servers that do no DNS work at all and answer every
 * query with itself, QR set (bench/qps/floor/):
 *   - `node echo`: sitedns's own batched transport (`listenBatchedUdp`) with a handler that
 *     only copies; what a Node.js process costs before any DNS logic;
 *   - `C echo, blocking recvmmsg`: gdnsd's way of waiting (2 syscalls per batch);
 *   - `C echo, epoll`: the batched path's way of waiting, without Node (3 per batch).
 * As many processes as sitedns has UDP threads (--threads N, default every core). Needs a C
 * compiler for the C ones.
 * sitedns runs twice: the default `serve --udp-threads N` (unless --no-udp-threads, where the
 * batched addon is built: UDP threads that wait in recvmmsg, so no event-loop turn per batch),
 * and `--udp-threads 0 --udp-path <--udp-path>` (UDP on the main thread's event loop).
 *
 * Prints, per kind and server: the answered rate, CPU µs per query (mean and per-round range),
 * and each server's CPU per query as a multiple of gdnsd's (lower is better).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dnsperf, have, load, machine, mean, printTable, requireDnsperf, startEchoFloor, startGdnsd, startSitedns, TICKS_PER_SECOND, treeTicks, udpThreadsUnavailable, writeSitednsZones } from './lib.mjs';
import { KINDS, sitednsZone } from './zones.mjs';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '60000' },
    seconds: { type: 'string', default: '5' },
    clients: { type: 'string', default: '16' },
    threads: { type: 'string', default: '' },
    rounds: { type: 'string', default: '3' },
    kinds: { type: 'string', default: 'pool,site' },
    'udp-path': { type: 'string', default: 'batched' },
    install: { type: 'boolean', default: true },
    'no-install': { type: 'boolean', default: false },
    variant: { type: 'string', multiple: true, default: [] },
    'udp-threads': { type: 'boolean', default: true },
    'no-udp-threads': { type: 'boolean', default: false },
    warmup: { type: 'string', default: '3' },
    floor: { type: 'boolean', default: true },
    'no-floor': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

const info = machine();
const threads = values.threads ? Number(values.threads) : info.nproc;
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const clients = Number(values.clients);
const rounds = Number(values.rounds);
const kinds = KINDS.filter((k) => values.kinds.split(',').includes(k.kind));
requireDnsperf(values.install && !values['no-install']);

const servers = [];
const stopAll = () => Promise.all(servers.map((s) => s.stop()));
process.on('SIGINT', () => stopAll().then(() => process.exit(130)));
const rows = [];
try {
  const zonesDir = writeSitednsZones(sitednsZone());
  if (have('gdnsd')) servers.push({ ...(await startGdnsd({ threads })), key: 'gdnsd', label: `gdnsd ${threads}+${threads} threads` });
  const noThreads = await udpThreadsUnavailable();
  if (noThreads !== null) console.error(`serve --udp-threads left out: ${noThreads}`);
  const withThreads = values['udp-threads'] && !values['no-udp-threads'] && noThreads === null;
  if (withThreads) {
    // The default `serve`: one process, UDP on N threads that wait in recvmmsg.
    const t = await startSitedns({ zonesDir, threads });
    servers.push({ ...t, key: 'sitedns-threads', label: `sitedns ${threads} UDP threads` });
  }
  const s = await startSitedns({ zonesDir, udpPath: values['udp-path'] });
  servers.push({ ...s, key: 'sitedns', label: `sitedns main thread ${s.udpPathUsed}` });
  if (values.floor && !values['no-floor']) servers.push(...(await startEchoFloor(threads)));
  for (const variant of values.variant) {
    const [name, settings = ''] = variant.split(':');
    const env = Object.fromEntries(settings.split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const v = await startSitedns({ zonesDir, threads: withThreads ? threads : 0, udpPath: values['udp-path'], env });
    servers.push({ ...v, key: `sitedns-${name}`, label: `sitedns ${withThreads ? `${threads} UDP threads` : `main thread ${v.udpPathUsed}`} ${name}` });
  }

  console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}, dnsperf ${info.dnsperf}, gdnsd ${info.gdnsd}`);
  console.log(`load at start: ${load()}; dnsperf -c ${clients} -Q ${rate} -l ${seconds}, ${rounds} round(s) after a ${values.warmup} s warm-up per server`);
  await new Promise((resolve) => setTimeout(resolve, 500)); // forked echo processes bind their sockets
  // Not measured: every server first answers every kind at the rate for --warmup seconds. What
  // a server costs in service is its steady state; a JIT-compiled one's first seconds also
  // optimize its answer path and collect what its zone compile left, which the first measured
  // round would otherwise charge to whichever kind comes first.
  const warmup = Number(values.warmup);
  if (warmup > 0) for (const server of servers) await dnsperf({ port: server.port, queries: kinds, seconds: warmup, clients, rate });
  for (const kind of kinds) {
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        const before = treeTicks(server.proc.pid);
        const run = await dnsperf({ port: server.port, queries: [kind], seconds, clients, rate });
        const used = treeTicks(server.proc.pid) - before;
        const usPerQuery = ((used / TICKS_PER_SECOND) * 1e6) / run.completed;
        rows.push({ kind: kind.kind, server: server.key, label: server.label, round, qps: run.qps, lost: run.lost, usPerQuery, cpuSeconds: used / TICKS_PER_SECOND });
        console.error(`  ${kind.kind} ${server.label}: ${Math.round(run.qps)} qps, ${usPerQuery.toFixed(2)} µs CPU/query`);
      }
    }
  }
} finally {
  await stopAll();
}

const summary = [];
for (const kind of kinds) {
  const g = rows.filter((r) => r.kind === kind.kind && r.server === 'gdnsd');
  const gCost = g.length > 0 ? mean(g.map((r) => r.usPerQuery)) : NaN;
  for (const key of [...new Set(rows.map((r) => r.server))]) {
    const mine = rows.filter((r) => r.kind === kind.kind && r.server === key);
    if (mine.length === 0) continue;
    const cost = mean(mine.map((r) => r.usPerQuery));
    const line = {
      kind: kind.kind,
      server: mine[0].label,
      qps: Math.round(mean(mine.map((r) => r.qps))),
      usPerQuery: Number(cost.toFixed(2)),
      range: `${Math.min(...mine.map((r) => r.usPerQuery)).toFixed(2)}-${Math.max(...mine.map((r) => r.usPerQuery)).toFixed(2)}`,
      ratio: key === 'gdnsd' || !Number.isFinite(gCost) ? '' : (cost / gCost).toFixed(2),
      lost: mine.reduce((a, r) => a + r.lost, 0),
    };
    summary.push(line);
  }
}
console.log('');
printTable(['kind', 'server', 'answered QPS', 'CPU µs/query', 'per round', 'x gdnsd CPU', 'lost'], ['kind', 'server', 'qps', 'usPerQuery', 'range', 'ratio', 'lost'], summary);
console.log(`\nload at end: ${load()}`);
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: info, rate, seconds, clients, rounds, rows, summary }, null, 2));
