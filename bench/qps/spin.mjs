#!/usr/bin/env node
/**
 * bench/qps/spin.mjs: what `serve --udp-threads N --udp-spin <µs>` buys and what it costs,
 * against gdnsd, so the default (DEFAULT_SPIN_MICROS in src/server/udp-threads.ts) can be
 * justified.
 *
 *   npm run build && node bench/qps/spin.mjs                # site and pool, spins 0,50,100,200, ~7 min on 2 cores
 *   node bench/qps/spin.mjs --kinds site --spins 0,50 --rates 20000,80000 --rounds 2
 *   node bench/qps/spin.mjs --seconds 1 --rounds 1 --rates 2000 --spins 0,50   # quick look
 *
 * `--udp-spin <µs>` makes a UDP thread poll for the next datagram for up to that long (yielding
 * the core between tries) before it sleeps in recvmmsg, but only while at least 75 % of its
 * recent waits ended within that time (native/udp-batch/src/udp_batch.c, receive_waiting). Under
 * load that saves the scheduler's sleep and wake-up per batch; at moderate rates the polling may
 * cost CPU for nothing. Both sides are measured, for gdnsd (N+N threads) and one
 * `sitedns serve --udp-threads N --udp-spin S` per S in --spins (0 = never spins):
 *   - full speed: UDP QPS with dnsperf -c --clients and no rate limit, over --rounds rounds,
 *     the order of the servers flipping every round (as in run.mjs); the mean, its range, the
 *     ratio to gdnsd's mean and the range of the per-round ratios (each against gdnsd's run of
 *     the same round);
 *   - at each fixed rate of --rates (dnsperf -Q, one run per server and rate, the order
 *     flipping from one rate to the next): the answered rate, CPU µs per answered query and CPU
 *     % of one core (utime + stime of the server's process tree from /proc, in clock ticks,
 *     over --seconds; see cpu.mjs for what that counts), and the CPU per query as a multiple of
 *     gdnsd's;
 *   - for sitedns, how the waits that polled first ended, from sitedns_udp_spin_total on its
 *     /metrics (each server gets its own `--http 127.0.0.1:<port>`, scraped outside the CPU
 *     window): hit = the datagrams came while polling, miss = it polled for nothing and slept.
 *
 * Installs gdnsd and dnsperf from Debian when missing (as root; --no-install to skip). Without
 * gdnsd the sitedns figures are printed without ratios. Where the batched addon is not built
 * (`serve --udp-threads` unavailable) it says why and exits 0.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dnsperf, freePort, have, load, machine, mean, printTable, requireDnsperf, startGdnsd, startSitedns, TICKS_PER_SECOND, treeTicks, udpThreadsUnavailable, writeSitednsZones } from './lib.mjs';
import { KINDS, sitednsZone } from './zones.mjs';

// serve --udp-spin's limit, from the build the bench runs (like udpThreadsUnavailable in lib.mjs).
const { MAX_SPIN_MICROS } = await import('../../dist/server/udp-threads.js');

const { values } = parseArgs({
  options: {
    kinds: { type: 'string', default: 'site,pool' },
    spins: { type: 'string', default: '0,50,100,200' },
    rates: { type: 'string', default: '5000,20000,40000,80000,110000' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '16' },
    threads: { type: 'string', default: '' },
    install: { type: 'boolean', default: true },
    'no-install': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

const info = machine();
const threads = values.threads ? Number(values.threads) : info.nproc;
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const clients = Number(values.clients);
const kinds = KINDS.filter((k) => values.kinds.split(',').includes(k.kind));
const spins = values.spins.split(',').filter(Boolean).map(Number);
const rates = values.rates.split(',').filter(Boolean).map(Number);
for (const s of spins) {
  if (!Number.isInteger(s) || s < 0 || s > MAX_SPIN_MICROS) {
    console.error(`--spins: ${s} is not a whole number of microseconds from 0 to ${MAX_SPIN_MICROS}`);
    process.exit(2);
  }
}

const noThreads = await udpThreadsUnavailable();
if (noThreads !== null) {
  console.log(`serve --udp-threads is unavailable here, nothing to measure: ${noThreads}`);
  process.exit(0);
}
requireDnsperf(values.install && !values['no-install']);

/** sitedns_udp_spin_total by outcome, or null when the server has no such metric. */
async function spinTotals(server) {
  if (server.metricsPort === undefined) return null;
  try {
    const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    const count = (outcome) => Number(new RegExp(`^sitedns_udp_spin_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    const totals = { hits: count('hit'), misses: count('miss') };
    return Number.isFinite(totals.hits) && Number.isFinite(totals.misses) ? totals : null;
  } catch {
    return null;
  }
}

/** One dnsperf run against `server` with its CPU time and spin outcomes (scraped outside the CPU window). */
async function measure(server, kind, rate) {
  const spinBefore = await spinTotals(server);
  const before = treeTicks(server.proc.pid);
  const run = await dnsperf({ port: server.port, queries: [kind], seconds, clients, rate });
  const used = treeTicks(server.proc.pid) - before;
  const spinAfter = await spinTotals(server);
  const cpuSeconds = used / TICKS_PER_SECOND;
  return {
    qps: run.qps,
    completed: run.completed,
    lost: run.lost,
    cpuSeconds,
    usPerQuery: (cpuSeconds * 1e6) / run.completed,
    cpuPercent: (cpuSeconds / seconds) * 100,
    spinHits: spinBefore && spinAfter ? spinAfter.hits - spinBefore.hits : null,
    spinMisses: spinBefore && spinAfter ? spinAfter.misses - spinBefore.misses : null,
    load: load(),
  };
}

const servers = [];
const stopAll = () => Promise.all(servers.map((s) => s.stop()));
process.on('SIGINT', () => stopAll().then(() => process.exit(130)));

const results = { machine: info, startedAt: new Date().toISOString(), loadAtStart: load(), settings: { threads, seconds, rounds, clients, spins, rates, kinds: kinds.map((k) => k.kind) }, rows: [] };
try {
  const zonesDir = writeSitednsZones(sitednsZone());
  if (have('gdnsd')) servers.push({ ...(await startGdnsd({ threads })), key: 'gdnsd', spin: null, label: `gdnsd ${threads}+${threads} threads` });
  for (const spin of spins) {
    // A later --http overrides startSitedns's '--http off' (node:util parseArgs keeps the last).
    const metricsPort = await freePort();
    const s = await startSitedns({ zonesDir, threads, extraArgs: ['--udp-spin', String(spin), '--http', `127.0.0.1:${metricsPort}`] });
    servers.push({ ...s, metricsPort, key: `spin-${spin}`, spin, label: `sitedns ${threads} UDP threads, spin ${spin} µs` });
  }

  console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}, dnsperf ${info.dnsperf}, gdnsd ${info.gdnsd}`);
  console.log(`load at start: ${results.loadAtStart}; dnsperf -c ${clients} -l ${seconds}: full speed ${rounds} round(s), then -Q ${rates.join(', ')}`);
  for (const kind of kinds) {
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        const m = await measure(server, kind);
        results.rows.push({ phase: 'full', kind: kind.kind, server: server.key, spin: server.spin, label: server.label, round, ...m });
        console.error(`  ${kind.kind} full speed ${server.label}: ${Math.round(m.qps)} qps, ${m.usPerQuery.toFixed(2)} µs CPU/query (load ${m.load})`);
      }
    }
    for (const [i, rate] of rates.entries()) {
      for (const server of i % 2 === 0 ? servers : [...servers].reverse()) {
        const m = await measure(server, kind, rate);
        results.rows.push({ phase: 'rate', kind: kind.kind, server: server.key, spin: server.spin, label: server.label, rate, ...m });
        console.error(`  ${kind.kind} -Q ${rate} ${server.label}: ${Math.round(m.qps)} qps, ${m.usPerQuery.toFixed(2)} µs CPU/query, ${m.cpuPercent.toFixed(0)} % CPU`);
      }
    }
  }
} finally {
  await stopAll();
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
/** "hits/misses (hit %)" over some runs, '' for gdnsd or when not scraped. */
const spinCell = (rows) => {
  if (rows.some((r) => r.spinHits === null)) return '';
  const hits = sum(rows.map((r) => r.spinHits));
  const misses = sum(rows.map((r) => r.spinMisses));
  return hits + misses === 0 ? '0/0' : `${hits}/${misses} (${Math.round((hits / (hits + misses)) * 100)} %)`;
};
const keys = servers.map((s) => s.key);
const summary = { full: [], rates: [] };
for (const kind of kinds) {
  const full = results.rows.filter((r) => r.phase === 'full' && r.kind === kind.kind);
  const g = full.filter((r) => r.server === 'gdnsd');
  const gq = mean(g.map((r) => r.qps));
  for (const key of keys) {
    const mine = full.filter((r) => r.server === key);
    if (mine.length === 0) continue;
    const qps = mean(mine.map((r) => r.qps));
    const perRound = mine.map((r) => r.qps / (g.find((x) => x.round === r.round)?.qps ?? NaN)).filter(Number.isFinite);
    summary.full.push({
      kind: kind.kind,
      server: mine[0].label,
      qps: Math.round(qps),
      range: `${Math.round(Math.min(...mine.map((r) => r.qps)) / 1000)}k-${Math.round(Math.max(...mine.map((r) => r.qps)) / 1000)}k`,
      ratio: key === 'gdnsd' || !Number.isFinite(gq) ? '' : (qps / gq).toFixed(2),
      roundRatios: key === 'gdnsd' || perRound.length === 0 ? '' : `${Math.min(...perRound).toFixed(2)}-${Math.max(...perRound).toFixed(2)}`,
      usPerQuery: Number(mean(mine.map((r) => r.usPerQuery)).toFixed(2)),
      spin: spinCell(mine),
      lost: sum(mine.map((r) => r.lost)),
      load: mine.map((r) => r.load.split(' ')[0]).join('/'),
    });
  }
  for (const rate of rates) {
    const at = results.rows.filter((r) => r.phase === 'rate' && r.kind === kind.kind && r.rate === rate);
    const gCost = at.find((r) => r.server === 'gdnsd')?.usPerQuery ?? NaN;
    for (const key of keys) {
      const r = at.find((x) => x.server === key);
      if (r === undefined) continue;
      summary.rates.push({
        kind: kind.kind,
        rate,
        server: r.label,
        qps: Math.round(r.qps),
        usPerQuery: Number(r.usPerQuery.toFixed(2)),
        cpuPercent: Number(r.cpuPercent.toFixed(1)),
        ratio: key === 'gdnsd' || !Number.isFinite(gCost) || gCost === 0 ? '' : (r.usPerQuery / gCost).toFixed(2),
        spin: spinCell([r]),
        lost: r.lost,
      });
    }
  }
}
results.summary = summary;
results.loadAtEnd = load();

console.log('\nFull speed (no rate limit):');
printTable(['kind', 'server', 'UDP QPS', 'min-max', 'x gdnsd', 'x gdnsd per round', 'CPU µs/query', 'spin hits/misses', 'lost', 'load 1m'], ['kind', 'server', 'qps', 'range', 'ratio', 'roundRatios', 'usPerQuery', 'spin', 'lost', 'load'], summary.full);
console.log('\nCPU at fixed rates (dnsperf -Q):');
printTable(['kind', '-Q rate', 'server', 'answered QPS', 'CPU µs/query', 'CPU % of a core', 'x gdnsd CPU', 'spin hits/misses', 'lost'], ['kind', 'rate', 'server', 'qps', 'usPerQuery', 'cpuPercent', 'ratio', 'spin', 'lost'], summary.rates);
console.log(`\nload at end: ${results.loadAtEnd}`);
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
