#!/usr/bin/env node
/**
 * bench/qps/latency.mjs: latency under load, against the p99 target (p99 <= 1 ms at half of
 * the maximum rate), measured with more care than run.mjs's one run per round:
 *
 *   npm run build && node bench/qps/latency.mjs        # pool and site, ~8 min on 2 cores
 *   node bench/qps/latency.mjs --kinds site --rates half,60000 --repeats 5
 *   node bench/qps/latency.mjs --compare-pipe          # also the old way of collecting latencies
 *   node bench/qps/latency.mjs --seconds 1 --full-seconds 1 --repeats 1 --rates half,2000   # quick look
 *
 * Servers: gdnsd (N+N threads), `sitedns serve --udp-threads N` (its defaults, spin included),
 * optionally `sitedns serve --udp-threads 0 --udp-path batched` (UDP on the main thread's event
 * loop: --main-thread-too), and the C echo
 * floor (bench/qps/floor/echo.c, N processes in a blocking recvmmsg: no DNS work at all). The
 * floor is there to say how much of a p99 is the machine's and dnsperf's rather than the
 * server's: on a 2-core machine dnsperf shares the cores with whatever it measures.
 *
 * Per name kind:
 *   1. full speed: each DNS server's UDP QPS with dnsperf -c --clients and no limit (mean of
 *      --full-rounds runs of --full-seconds, the order flipping every round);
 *   2. latency: for each entry of --rates, every server runs dnsperf -Q <rate> -v for
 *      --seconds, --repeats times (the order of the servers rotating every repeat, so no server
 *      always follows the same one), and every query's latency is kept. Rate entries:
 *        - `half`: each DNS server at half of its own full-speed rate (the target's wording);
 *          the floor is not measured there (it has no maximum of its own that matters);
 *        - `gdnsd-half`: every server, floor included, at half of gdnsd's full-speed rate, so
 *          they are compared at the same load;
 *        - a number: every server, floor included, at that rate.
 *   Printed per (kind, rate, server): the median over repeats of p50, p99 and p99.9, the range
 *   of p99, how many repeats had p99 over 1 ms, and lost queries.
 *
 * Latencies are written by dnsperf to a file and read after it exits (lib.mjs dnsperf), so no
 * other process works during a run. `--compare-pipe` adds, at every rate, a second measurement
 * of each server with dnsperf's output piped into this process and parsed while it runs, to
 * show what collecting latencies that way costs.
 *
 * `--pin-client <cpus>` runs dnsperf under `taskset -c <cpus>` and `--pin-servers <cpus>` the
 * servers (all their threads) under `taskset -c`: to give the load generator a core of its own.
 * On 2 cores that leaves one core to the server, so it measures something else than the
 * default; say so wherever the figures are used.
 *
 * Installs gdnsd and dnsperf from Debian when missing (as root; --no-install to skip). Without
 * gdnsd the `gdnsd-half` rate is skipped and the rest printed.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dnsperf, have, load, machine, mean, median, printTable, processTree, requireDnsperf, startEchoFloor, startGdnsd, startSitedns, udpThreadsUnavailable, writeSitednsZones } from './lib.mjs';
import { KINDS, sitednsZone } from './zones.mjs';

const { values } = parseArgs({
  options: {
    kinds: { type: 'string', default: 'pool,site' },
    rates: { type: 'string', default: 'half,gdnsd-half' },
    repeats: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '5' },
    'full-seconds': { type: 'string', default: '5' },
    'full-rounds': { type: 'string', default: '2' },
    clients: { type: 'string', default: '16' },
    threads: { type: 'string', default: '' },
    'main-thread-too': { type: 'boolean', default: false },
    floor: { type: 'boolean', default: true },
    'no-floor': { type: 'boolean', default: false },
    'compare-pipe': { type: 'boolean', default: false },
    'pin-client': { type: 'string' },
    'pin-servers': { type: 'string' },
    install: { type: 'boolean', default: true },
    'no-install': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

const info = machine();
const threads = values.threads ? Number(values.threads) : info.nproc;
const repeats = Number(values.repeats);
const seconds = Number(values.seconds);
const fullSeconds = Number(values['full-seconds']);
const fullRounds = Number(values['full-rounds']);
const clients = Number(values.clients);
const rateSpecs = values.rates.split(',').filter(Boolean);
for (const spec of rateSpecs) {
  if (spec !== 'half' && spec !== 'gdnsd-half' && !(Number(spec) > 0)) {
    console.error(`--rates: "${spec}" is not half, gdnsd-half or a rate in QPS`);
    process.exit(2);
  }
}
const kinds = KINDS.filter((k) => values.kinds.split(',').includes(k.kind));
const pinClient = values['pin-client'];
const pinServers = values['pin-servers'];
if ((pinClient || pinServers) && !have('taskset')) {
  console.error('--pin-client/--pin-servers need taskset (util-linux)');
  process.exit(2);
}
requireDnsperf(values.install && !values['no-install']);
const noThreads = await udpThreadsUnavailable();
if (noThreads !== null) console.error(`serve --udp-threads left out: ${noThreads}`);

/**
 * Moves every thread of a started server, and of the processes it forked (the echo floor's),
 * onto `cpus` (taskset -a; threads started later inherit it).
 */
function pin(server) {
  if (!pinServers) return;
  const pids = [...processTree(server.proc.pid).keys()];
  for (const pid of pids) {
    const done = spawnSync('taskset', ['-a', '-c', '-p', pinServers, String(pid)], { encoding: 'utf8' });
    if (done.status !== 0) throw new Error(`taskset ${server.label} (pid ${pid}): ${done.stderr}`);
  }
  console.log(`  ${server.label}: ${pids.length} process(es) on CPUs ${pinServers}`);
}

const servers = [];
const stopAll = () => Promise.all(servers.map((s) => s.stop()));
process.on('SIGINT', () => stopAll().then(() => process.exit(130)));
const results = { machine: info, startedAt: new Date().toISOString(), loadAtStart: load(), settings: { threads, repeats, seconds, fullSeconds, fullRounds, clients, rates: rateSpecs, pinClient, pinServers, comparePipe: values['compare-pipe'] }, full: [], runs: [] };
try {
  const zonesDir = writeSitednsZones(sitednsZone());
  if (have('gdnsd')) servers.push({ ...(await startGdnsd({ threads })), key: 'gdnsd', dns: true, label: `gdnsd ${threads}+${threads} threads` });
  else console.error('without gdnsd: no gdnsd-half rate either');
  if (noThreads === null) {
    const t = await startSitedns({ zonesDir, threads });
    servers.push({ ...t, key: 'sitedns-threads', dns: true, label: `sitedns ${threads} UDP threads` });
  }
  if (values['main-thread-too']) {
    const m = await startSitedns({ zonesDir, udpPath: 'batched' });
    servers.push({ ...m, key: 'sitedns-main', dns: true, label: `sitedns main thread ${m.udpPathUsed}` });
  }
  if (values.floor && !values['no-floor']) servers.push(...(await startEchoFloor(threads, { node: false, waits: ['blocking'] })).map((f) => ({ ...f, dns: false })));
  await new Promise((resolve) => setTimeout(resolve, 500)); // forked echo processes bind their sockets
  servers.forEach(pin);

  console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}, dnsperf ${info.dnsperf}, gdnsd ${info.gdnsd}`);
  console.log(`load at start: ${results.loadAtStart}; dnsperf -c ${clients}; full speed ${fullRounds}x${fullSeconds}s; latency ${repeats}x${seconds}s per rate and server${pinClient ? `; dnsperf on CPUs ${pinClient}` : ''}${pinServers ? `; servers on CPUs ${pinServers}` : ''}`);
  const dnsServers = servers.filter((s) => s.dns);
  for (const kind of kinds) {
    const fullQps = new Map();
    for (let round = 0; round < fullRounds; round++) {
      for (const server of round % 2 === 0 ? dnsServers : [...dnsServers].reverse()) {
        const run = await dnsperf({ port: server.port, queries: [kind], seconds: fullSeconds, clients, taskset: pinClient });
        fullQps.set(server.key, [...(fullQps.get(server.key) ?? []), run.qps]);
        results.full.push({ kind: kind.kind, server: server.key, round, qps: run.qps, lost: run.lost, command: run.command });
        console.log(`  ${kind.kind} ${server.label}: full speed ${Math.round(run.qps)} qps`);
      }
    }
    const maxOf = (key) => mean(fullQps.get(key) ?? [NaN]);
    for (const spec of rateSpecs) {
      if (spec === 'gdnsd-half' && !fullQps.has('gdnsd')) continue;
      const measured = spec === 'half' ? dnsServers : servers;
      const rateFor = (server) => (spec === 'half' ? maxOf(server.key) / 2 : spec === 'gdnsd-half' ? maxOf('gdnsd') / 2 : Number(spec));
      const vias = values['compare-pipe'] ? ['file', 'pipe'] : ['file'];
      for (let repeat = 0; repeat < repeats; repeat++) {
        const shift = repeat % measured.length;
        for (const server of [...measured.slice(shift), ...measured.slice(0, shift)]) {
          for (const via of repeat % 2 === 0 ? vias : [...vias].reverse()) {
            const rate = rateFor(server);
            const run = await dnsperf({ port: server.port, queries: [kind], seconds, clients, rate, verbose: true, latencyVia: via, taskset: pinClient });
            results.runs.push({ kind: kind.kind, spec, server: server.key, label: server.label, via, repeat, rate: Math.round(rate), qps: run.qps, p50Ms: run.p50Ms, p99Ms: run.p99Ms, p999Ms: run.p999Ms, lost: run.lost, command: run.command, load: load() });
            console.log(`  ${kind.kind} ${spec} ${server.label}${via === 'pipe' ? ' (piped)' : ''}: -Q ${Math.round(rate)} -> p50 ${run.p50Ms.toFixed(3)} p99 ${run.p99Ms.toFixed(3)} p99.9 ${run.p999Ms.toFixed(3)} ms, lost ${run.lost}`);
          }
        }
      }
    }
  }
} finally {
  await stopAll();
}

const summary = [];
for (const kind of kinds) {
  for (const spec of rateSpecs) {
    for (const server of servers) {
      for (const via of ['file', 'pipe']) {
        const runs = results.runs.filter((r) => r.kind === kind.kind && r.spec === spec && r.server === server.key && r.via === via);
        if (runs.length === 0) continue;
        const p99s = runs.map((r) => r.p99Ms);
        summary.push({
          kind: kind.kind,
          rate: spec === 'half' || spec === 'gdnsd-half' ? `${spec} (${Math.round(median(runs.map((r) => r.rate)))})` : spec,
          server: `${server.label}${via === 'pipe' ? ', piped' : ''}`,
          p50: median(runs.map((r) => r.p50Ms)).toFixed(3),
          p99: median(p99s).toFixed(3),
          p99Range: `${Math.min(...p99s).toFixed(2)}-${Math.max(...p99s).toFixed(2)}`,
          over1ms: `${p99s.filter((p) => p > 1).length}/${p99s.length}`,
          p999: median(runs.map((r) => r.p999Ms)).toFixed(3),
          lost: runs.reduce((a, r) => a + r.lost, 0),
        });
      }
    }
  }
}
results.summary = summary;
results.loadAtEnd = load();

console.log('');
printTable(['kind', '-Q rate', 'server', 'p50 ms', 'p99 ms (median)', 'p99 min-max', 'repeats with p99 > 1 ms', 'p99.9 ms', 'lost'], ['kind', 'rate', 'server', 'p50', 'p99', 'p99Range', 'over1ms', 'p999', 'lost'], summary);
console.log(`\nload at end: ${results.loadAtEnd}`);
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
