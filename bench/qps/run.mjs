#!/usr/bin/env node
/**
 * bench/qps: sitedns side by side with gdnsd on the same machine, in one run.
 *
 *   npm run build && node bench/qps/run.mjs            # the full bench (~6 min on 2 cores)
 *   node bench/qps/run.mjs --duration 1 --latency-duration 1 --rounds 1   # quick look
 *
 * Serves equivalent zones (bench/qps/zones.mjs: a static A, a Pool of 3 sites, a Site Name,
 * NXDOMAIN) from gdnsd and from sitedns, and runs dnsperf against them alternately (the order
 * flips every round, so neither server always runs on a warmer or busier machine). Per name
 * kind and server it prints:
 *   - UDP QPS at full speed (dnsperf -c 4, no rate limit) and its average latency,
 *   - p50/p99 latency at half of that server's full-speed rate (dnsperf -Q, every query's
 *     latency collected with -v into a file read after the run: dnsperf 2.10 has no
 *     percentile output; bench/qps/latency.mjs measures latency with more repeats),
 *   - TCP-pipelined QPS (dnsperf -m tcp),
 *   - the sitedns/gdnsd ratio of each (of the means over rounds), and the range of the per-round
 *     ratios (each sitedns run against gdnsd's run of the same round).
 * Rounds matter on a small machine: dnsperf's client sockets are spread over the servers'
 * SO_REUSEPORT sockets (sitedns and gdnsd UDP threads) by a hash of the source port, so with
 * -c 4 and 2 sockets one run in eight puts every flow on one socket, for either server. More
 * rounds, or more clients (--clients 16), even that out.
 * Servers: gdnsd with one UDP and one TCP thread per core (--threads N: N of each); sitedns's
 * default, `serve --udp-threads N` (one process; UDP on N threads that wait in recvmmsg, TCP on
 * the main thread), where the batched addon is built (`--no-udp-threads` leaves it out); and
 * sitedns with UDP on the main thread's event loop (`--udp-threads 0`), one column per UDP path
 * in `--udp-paths auto,dgram,batched` (or env SITEDNS_BENCH_UDP_PATHS; default auto: the batched
 * addon when built), `--no-main-thread` leaves those out. The path each server really used is
 * printed (a path that fell back says so).
 *
 * Installs gdnsd and dnsperf from Debian when missing (as root; --no-install to skip). Without
 * gdnsd the sitedns figures are still printed, without ratios.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dnsperf, have, load, machine, mean, printTable, requireDnsperf, startGdnsd, startSitedns, udpThreadsUnavailable, writeSitednsZones } from './lib.mjs';
import { KINDS, sitednsZone } from './zones.mjs';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    'latency-duration': { type: 'string', default: '4' },
    clients: { type: 'string', default: '4' },
    threads: { type: 'string', default: '' },
    rounds: { type: 'string', default: '2' },
    kinds: { type: 'string', default: KINDS.map((k) => k.kind).join(',') },
    'udp-paths': { type: 'string', default: process.env.SITEDNS_BENCH_UDP_PATHS ?? 'auto' },
    gdnsd: { type: 'boolean', default: true },
    'no-gdnsd': { type: 'boolean', default: false },
    install: { type: 'boolean', default: true },
    'no-install': { type: 'boolean', default: false },
    tcp: { type: 'boolean', default: true },
    'no-tcp': { type: 'boolean', default: false },
    'main-thread': { type: 'boolean', default: true },
    'no-main-thread': { type: 'boolean', default: false },
    general: { type: 'boolean', default: false },
    'udp-threads': { type: 'boolean', default: true },
    'no-udp-threads': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

const info = machine();
const threads = values.threads ? Number(values.threads) : info.nproc;
const duration = Number(values.duration);
const latencyDuration = Number(values['latency-duration']);
const clients = Number(values.clients);
const rounds = Number(values.rounds);
const kinds = KINDS.filter((k) => values.kinds.split(',').includes(k.kind));
const udpPaths = values['udp-paths'].split(',').filter(Boolean);
const wantGdnsd = values.gdnsd && !values['no-gdnsd'];
requireDnsperf(values.install && !values['no-install'], { gdnsd: wantGdnsd });

const servers = [];
const stopAll = () => Promise.all(servers.map((s) => s.stop()));
process.on('SIGINT', () => stopAll().then(() => process.exit(130)));

const results = { machine: info, startedAt: new Date().toISOString(), loadAtStart: load(), settings: { threads, duration, latencyDuration, clients, rounds, udpPaths }, rows: [] };
try {
  const zonesDir = writeSitednsZones(sitednsZone());
  if (wantGdnsd && have('gdnsd')) servers.push({ ...(await startGdnsd({ threads })), label: `gdnsd ${threads}+${threads} threads`, key: 'gdnsd' });
  const noThreads = await udpThreadsUnavailable();
  if (noThreads !== null) console.error(`serve --udp-threads left out: ${noThreads}`);
  const withThreads = values['udp-threads'] && !values['no-udp-threads'] && noThreads === null;
  if (withThreads) {
    // The default `serve`: one process, UDP on N threads that wait in recvmmsg, TCP on its event loop.
    const s = await startSitedns({ zonesDir, threads });
    servers.push({ ...s, label: `sitedns ${threads} UDP threads`, key: 'sitedns-threads' });
  }
  if (values['main-thread'] && !values['no-main-thread']) {
    for (const path of udpPaths) {
      const s = await startSitedns({ zonesDir, udpPath: path });
      servers.push({ ...s, label: `sitedns main thread ${s.udpPathUsed}${s.udpPathUsed !== path && path !== 'auto' ? ` (asked ${path})` : ''}`, key: `sitedns-${path}` });
    }
  }
  if (values.general) {
    const s = await startSitedns({ zonesDir, threads: withThreads ? threads : 0, udpPath: udpPaths[0], env: { SITEDNS_PREBUILT: '0' } });
    servers.push({ ...s, label: `sitedns ${withThreads ? `${threads} UDP threads` : 'main thread'} general encoder`, key: 'sitedns-general' });
  }

  console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}, dnsperf ${info.dnsperf}, gdnsd ${info.gdnsd}`);
  console.log(`load at start: ${results.loadAtStart}; dnsperf -c ${clients}, ${duration}s full speed, ${latencyDuration}s at half rate, ${rounds} round(s)`);
  for (const kind of kinds) {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const server of order) {
        const row = { kind: kind.kind, server: server.key, label: server.label, round, load: load() };
        const full = await dnsperf({ port: server.port, queries: [kind], seconds: duration, clients });
        row.udp = full;
        const half = await dnsperf({ port: server.port, queries: [kind], seconds: latencyDuration, clients, rate: full.qps / 2, verbose: true });
        row.half = half;
        if (values.tcp && !values['no-tcp']) row.tcp = await dnsperf({ port: server.port, queries: [kind], seconds: duration, clients, mode: 'tcp' });
        results.rows.push(row);
        console.error(`  ${kind.kind} ${server.label}: ${Math.round(full.qps)} qps (load ${row.load})`);
      }
    }
  }
} finally {
  await stopAll();
}

// Summary: mean over rounds, ratio against gdnsd.
const summary = [];
for (const kind of kinds) {
  const byServer = new Map();
  for (const row of results.rows.filter((r) => r.kind === kind.kind)) {
    if (!byServer.has(row.server)) byServer.set(row.server, []);
    byServer.get(row.server).push(row);
  }
  const g = byServer.get('gdnsd');
  const gq = g ? mean(g.map((r) => r.udp.qps)) : NaN;
  const gt = g && g[0].tcp ? mean(g.map((r) => r.tcp.qps)) : NaN;
  for (const [server, rows] of byServer) {
    const qps = mean(rows.map((r) => r.udp.qps));
    const all = rows.map((r) => r.udp.qps);
    // Per round, against gdnsd's run of the same round (adjacent in time): the spread of these
    // says how far one round's ratio can be trusted on this machine.
    const perRound = g ? rows.map((r) => r.udp.qps / (g.find((x) => x.round === r.round)?.udp.qps ?? NaN)).filter(Number.isFinite) : [];
    const tcp = rows[0].tcp ? mean(rows.map((r) => r.tcp.qps)) : NaN;
    summary.push({
      kind: kind.kind,
      server: rows[0].label,
      udpQps: Math.round(qps),
      range: `${Math.round(Math.min(...all) / 1000)}k-${Math.round(Math.max(...all) / 1000)}k`,
      roundRatios: server === 'gdnsd' || perRound.length === 0 ? '' : `${Math.min(...perRound).toFixed(2)}-${Math.max(...perRound).toFixed(2)}`,
      avgMs: +mean(rows.map((r) => r.udp.avgMs)).toFixed(3),
      p99HalfMs: +mean(rows.map((r) => r.half.p99Ms)).toFixed(3),
      lost: rows.reduce((a, r) => a + r.udp.lost + r.half.lost, 0),
      ratio: server === 'gdnsd' || !Number.isFinite(gq) ? '' : (qps / gq).toFixed(2),
      tcpQps: Number.isFinite(tcp) ? Math.round(tcp) : '',
      tcpRatio: server === 'gdnsd' || !Number.isFinite(gt) || !Number.isFinite(tcp) ? '' : (tcp / gt).toFixed(2),
      load: rows.map((r) => r.load.split(' ')[0]).join('/'),
    });
  }
}
results.summary = summary;
results.loadAtEnd = load();

const cols = ['kind', 'server', 'udpQps', 'range', 'avgMs', 'p99HalfMs', 'ratio', 'roundRatios', 'tcpQps', 'tcpRatio', 'lost', 'load'];
const head = ['kind', 'server', 'UDP QPS', 'min-max', 'avg ms', 'p99 ms @half', 'x gdnsd', 'x gdnsd per round', 'TCP QPS', 'TCP x gdnsd', 'lost', 'load 1m'];
console.log('');
printTable(head, cols, summary);
console.log(`\nload at end: ${results.loadAtEnd}`);
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
