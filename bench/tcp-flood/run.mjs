#!/usr/bin/env node
/**
 * TCP connection exhaustion: can idle connections deny TCP to everyone? One `sitedns serve`
 * (default flags: UDP threads, --tcp-max-connections 2000), alone, then while
 * attacker.mjs holds 2,000 idle connections from 40 loopback addresses (50 each, under the
 * per-address cap of 64) and reopens each one the server closes, then alone again. In each phase a legitimate
 * client on 127.0.0.1 sends TCP queries, one new connection each (as a resolver retrying after
 * TC=1 does), and dnsperf measures UDP capacity.
 *
 * Layouts: `one` puts the 40 attacking addresses in one /24 (the per-network cap holds them to
 * 256 connections); `spread` gives each its own /24, so only closing the longest-idle
 * connection when the table is full (RFC 7766 §6.2.3) lets the legitimate client in.
 * Targets: >= 95 % of the legitimate client's queries answered, UDP within 10 % of no attack.
 * Also printed: the CPU the server and the attacker take with the attack alone running (no UDP
 * load), in % of one core: on a shared 2-core machine the UDP ratio also carries the attacker's.
 *
 *   npm run build
 *   node bench/tcp-flood/run.mjs [--layout one|spread|both] [--seconds 5] [--legit-rate 50]
 *        [--slots 2000] [--sources 40] [--reconnect-ms 1000] [--cli other/dist/cli/index.js]
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CLI, dnsQuery, dnsperf, freePort, load, machine, printTable, requireDnsperf, startProcess, TICKS_PER_SECOND, treeTicks, writeSitednsZones } from '../qps/lib.mjs';
import { sitednsZone, ZONE } from '../qps/zones.mjs';

const { values } = parseArgs({
  options: {
    layout: { type: 'string', default: 'both' },
    seconds: { type: 'string', default: '5' },
    'legit-rate': { type: 'string', default: '50' },
    slots: { type: 'string', default: '2000' },
    sources: { type: 'string', default: '40' },
    'reconnect-ms': { type: 'string', default: '1000' },
    'allow-install': { type: 'boolean', default: false },
    // Another build's CLI (dist/cli/index.js), to see the attack succeed against a server without these defences.
    cli: { type: 'string', default: CLI },
  },
});
const seconds = Number(values.seconds);
const slots = Number(values.slots);
const layouts = values.layout === 'both' ? ['one', 'spread'] : [values.layout];
const ATTACKER = fileURLToPath(new URL('./attacker.mjs', import.meta.url));
// Each side needs a descriptor per connection, and more than the common soft limit of 1024.
const FDS = slots + 1000;
const withFds = (command, args) => ['sh', ['-c', `ulimit -n ${FDS} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`, command, ...args]];

requireDnsperf(values['allow-install'], { gdnsd: false });

/** One TCP query on a new connection from 127.0.0.1; true when answered within 2 s. */
function askOverTcp(port, id) {
  return new Promise((resolve) => {
    const q = dnsQuery(id, `pool.${ZONE}`);
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 2000);
    let got = Buffer.alloc(0);
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from([0, q.length]), q])));
    socket.on('data', (chunk) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 4 && got.length >= 2 + got.readUInt16BE(0)) done(got.readUInt16BE(2) === id);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/** The legitimate client: `rate` queries a second for `ms`; how many were sent and answered. */
async function legitimateClient(port, rate, ms) {
  const asked = [];
  const end = Date.now() + ms;
  for (let id = 1; Date.now() < end; id++) {
    asked.push(askOverTcp(port, id & 0xffff));
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  const answers = await Promise.all(asked);
  return { sent: answers.length, answered: answers.filter(Boolean).length };
}

async function tcpEvents(httpPort) {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const events = {};
  for (const m of text.matchAll(/sitedns_transport_events_total\{transport="tcp",event="(\w+)"\} (\d+)/g)) events[m[1]] = Number(m[2]);
  return events;
}

/** The CPU each of `pids` takes over `ms`, in % of one core. */
async function cpuOf(pids, ms) {
  const before = pids.map(treeTicks);
  await new Promise((r) => setTimeout(r, ms));
  return pids.map((pid, i) => Math.round((100 * (treeTicks(pid) - before[i])) / TICKS_PER_SECOND / (ms / 1000)));
}

/** UDP capacity (dnsperf) and the legitimate client's TCP queries, at the same time. */
async function measure(port) {
  const [udp, tcp] = await Promise.all([
    dnsperf({ port, queries: [{ name: `pool.${ZONE}`, type: 'A' }], seconds, clients: 4 }),
    legitimateClient(port, Number(values['legit-rate']), seconds * 1000),
  ]);
  return { udpQps: Math.round(udp.qps), udpLost: udp.lost, tcpSent: tcp.sent, tcpAnswered: tcp.answered, load: load() };
}

/** Starts the attacker and resolves once its connections have stopped growing (or after 10 s). */
async function startAttacker(port, layout) {
  const [command, args] = withFds(process.execPath, [ATTACKER, String(port), String(slots), values.sources, layout, values['reconnect-ms']]);
  let last = null;
  const attacker = await startProcess(command, args, { label: 'attacker', ready: (line) => line.startsWith('{"open"') });
  attacker.proc.stdout.on('data', (chunk) => {
    const lines = chunk.toString().trim().split('\n');
    last = JSON.parse(lines[lines.length - 1]);
  });
  let previous = -1;
  for (let waited = 0; waited < 10 && last?.open !== previous; waited++) {
    previous = last?.open ?? -1;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { ...attacker, state: () => last };
}

const zones = writeSitednsZones(sitednsZone());
console.log(JSON.stringify({ machine: machine(), loadAtStart: load(), slots, sources: Number(values.sources), reconnectMs: Number(values['reconnect-ms']), seconds }));
const rows = [];
for (const layout of layouts) {
  const httpPort = await freePort();
  const [command, args] = withFds(process.execPath, [values.cli, 'serve', '--zones', zones, '--listen', '127.0.0.1:0', '--http', `127.0.0.1:${httpPort}`]);
  const server = await startProcess(command, args, { label: 'sitedns', ready: (line) => line.includes('"msg":"listening on UDP and TCP"') });
  const port = JSON.parse(server.line).port;
  try {
    // A first second warms the answering threads up, so that the figure alone is not the colder one.
    await dnsperf({ port, queries: [{ name: `pool.${ZONE}`, type: 'A' }], seconds: 1, clients: 4 });
    const alone = await measure(port);
    const attacker = await startAttacker(port, layout);
    const held = attacker.state();
    const [attackCpu, attackerCpu] = await cpuOf([server.proc.pid, attacker.proc.pid], 2000);
    const before = await tcpEvents(httpPort);
    const attacked = await measure(port);
    const after = await tcpEvents(httpPort);
    const during = attacker.state();
    await attacker.stop();
    // Measured again once the attacker is gone: the figure alone is the mean of before and after,
    // so that a machine whose load drifts (or a server still warming up) does not bias the ratio.
    await new Promise((r) => setTimeout(r, 1000));
    const aloneAfter = await measure(port);
    const udpAlone = Math.round((alone.udpQps + aloneAfter.udpQps) / 2);
    const row = {
      layout,
      attackerOpen: held?.open,
      udpAlone,
      udpAloneRuns: `${udpAlone} (${alone.udpQps}, ${aloneAfter.udpQps})`,
      udpAttacked: attacked.udpQps,
      udpRatio: (attacked.udpQps / udpAlone).toFixed(2),
      tcpAlone: `${alone.tcpAnswered + aloneAfter.tcpAnswered}/${alone.tcpSent + aloneAfter.tcpSent}`,
      tcpAttacked: `${attacked.tcpAnswered}/${attacked.tcpSent}`,
      tcpAnsweredPct: ((100 * attacked.tcpAnswered) / attacked.tcpSent).toFixed(1),
      attackCpu,
      attackerCpu,
      attackCpus: `${attackCpu} / ${attackerCpu}`,
      evictions: (after.evict ?? 0) - (before.evict ?? 0),
      rejections: (after.reject ?? 0) - (before.reject ?? 0),
      attackerReopened: (during?.opened ?? 0) - (held?.opened ?? 0),
      load: `${alone.load} / ${attacked.load} / ${aloneAfter.load}`,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  } finally {
    await server.stop();
  }
}
console.log();
printTable(
  ['layout', 'attacker connected', 'UDP QPS alone (before, after)', 'UDP QPS attacked', 'ratio', 'TCP alone', 'TCP attacked', 'TCP answered %', 'CPU % server / attacker (attack only)', 'evictions', 'rejections', 'load 1m/5m/15m before / attacked / after'],
  ['layout', 'attackerOpen', 'udpAloneRuns', 'udpAttacked', 'udpRatio', 'tcpAlone', 'tcpAttacked', 'tcpAnsweredPct', 'attackCpus', 'evictions', 'rejections', 'load'],
  rows,
);
const met = rows.every((r) => Number(r.tcpAnsweredPct) >= 95 && Number(r.udpRatio) >= 0.9);
console.log(`targets (>= 95 % TCP answered, UDP >= 0.90x): ${met ? 'met' : 'NOT met'}; load at end ${load()}`);
