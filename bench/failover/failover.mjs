#!/usr/bin/env node
// Failover benchmark, through the Redis path: backend dies -> `sitedns probe` sees it
// -> Redis -> a separate `sitedns serve --redis` -> the first answer without it.
//
//   node bench/failover/failover.mjs [--kills 25] [--loss-minutes 10] [--interval 1s]
//
// Kill loop: wait until a.fo.test answers site a, wait a random 1-2.5 s (random phase against
// the probe schedule), SIGKILL a's backend process, query a.fo.test every 5 ms over UDP and
// record the time to the first answer that is not a's address. Restart the backend, wait for
// recovery, repeat. Meanwhile site c's backend leaves 20 % of probes unanswered (timeouts):
// c.fo.test is queried every 50 ms for --loss-minutes and every answer that is not c's address
// counts as a false failover. Needs `npm run build` first and redis-server on PATH.
import { execSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { aRecords, freePort, startProcess } from '../qps/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '../../dist/cli/index.js');
const { values } = parseArgs({ options: { kills: { type: 'string', default: '25' }, 'loss-minutes': { type: 'string', default: '10' }, interval: { type: 'string', default: '1s' }, json: { type: 'boolean' } } });
const KILLS = Number(values.kills);
const LOSS_MS = Number(values['loss-minutes']) * 60_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = [];
function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** A child process, ready once a line of its output contains `readyText` (bench/qps/lib.mjs). */
async function start(cmd, args, readyText) {
  const started = await startProcess(cmd, args, { ready: (line) => line.includes(readyText), timeoutMs: 20_000, maxLines: Infinity });
  children.push(started.proc);
  return started;
}

const startBackend = (host, port, drop = 0) => start(process.execPath, [join(here, 'backend.mjs'), host, String(port), String(drop)], 'ready');

// One UDP socket, queries keyed by id.
const sock = dgram.createSocket('udp4');
await new Promise((r) => sock.bind(0, '127.0.0.1', r));
const pending = new Map();
let nextId = 1;
sock.on('message', (msg) => {
  const id = msg.readUInt16BE(0);
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  p(aRecords(msg).join(','));
});
function ask(port, name, timeoutMs = 1000) {
  const id = nextId++ & 0xffff || (nextId++ & 0xffff);
  const labels = name.split('.');
  const q = Buffer.alloc(12 + name.length + 2 + 4);
  q.writeUInt16BE(id, 0);
  q.writeUInt16BE(1, 4);
  let o = 12;
  for (const l of labels) { q[o++] = l.length; q.write(l, o, 'latin1'); o += l.length; }
  q[o++] = 0;
  q.writeUInt16BE(1, o); q.writeUInt16BE(1, o + 2);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { pending.delete(id); resolve('timeout'); }, timeoutMs);
    pending.set(id, (a) => { clearTimeout(timer); resolve(a); });
    sock.send(q, port, '127.0.0.1');
  });
}

const load0 = loadavg()[0];
const redisPort = await freePort();
await start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], 'Ready to accept connections');
const redis = `redis://127.0.0.1:${redisPort}`;
const [portA, portB, portC] = [await freePort('127.0.0.2'), await freePort('127.0.0.3'), await freePort('127.0.0.4')];
let backendA = await startBackend('127.0.0.2', portA);
await startBackend('127.0.0.3', portB);
await startBackend('127.0.0.4', portC, 0.2);
const dir = mkdtempSync(join(tmpdir(), 'sitedns-bench-'));
const probe = (host, port) => `{ http: "http://${host}:${port}/health", interval: ${values.interval}, timeout: 500ms, rise: 2, fall: 2, load: load }`;
writeFileSync(join(dir, 'fo.yaml'), `zone: fo.test
soa: { mname: ns1.fo.test, rname: h.fo.test }
nameservers: { ns1.fo.test: [192.0.2.1] }
sites:
  a: { addresses: [192.0.2.10], probe: ${probe('127.0.0.2', portA)} }
  b: { addresses: [192.0.2.20], probe: ${probe('127.0.0.3', portB)} }
  c: { addresses: [192.0.2.30], probe: ${probe('127.0.0.4', portC)} }
groups:
  all: [a, b, c]
`);
const prober = await start(process.execPath, [CLI, 'probe', '--zones', dir, '--redis', redis, '--prober-id', 'bench'], '"msg":"probing"');
const dnsPort = await freePort();
await start(process.execPath, [CLI, 'serve', '--zones', dir, '--listen', `127.0.0.1:${dnsPort}`, '--redis', redis, '--http', 'off', '--state-file', 'off'], 'listening on UDP and TCP');

// No-false-failover watcher on site c (20 % of its probes unanswered).
const lossStart = Date.now();
let lossQueries = 0;
const lossWrong = [];
let lossDone = false;
const lossLoop = (async () => {
  while (Date.now() - lossStart < LOSS_MS) {
    const got = await ask(dnsPort, 'c.fo.test');
    lossQueries++;
    if (got !== '192.0.2.30') lossWrong.push({ at: Date.now() - lossStart, got });
    await sleep(50);
  }
  lossDone = true;
})();

async function waitAnswer(name, want, limitMs = 30_000) {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if ((await ask(dnsPort, name)) === want) return;
    await sleep(20);
  }
  throw new Error(`${name} never answered ${want}`);
}

const samples = [];
for (let i = 0; i < KILLS; i++) {
  await waitAnswer('a.fo.test', '192.0.2.10');
  await sleep(1000 + Math.random() * 1500);
  const t0 = performance.now();
  backendA.proc.kill('SIGKILL');
  let ms;
  for (;;) {
    const got = await ask(dnsPort, 'a.fo.test', 500);
    if (got !== '192.0.2.10' && got !== 'timeout') {
      ms = performance.now() - t0;
      break;
    }
    await sleep(5);
  }
  samples.push(ms);
  if (!values.json) process.stderr.write(`kill ${i + 1}/${KILLS}: ${ms.toFixed(0)} ms\n`);
  backendA = await startBackend('127.0.0.2', portA);
}
if (!values.json) process.stderr.write(`kills done; no-false-failover watch continues until ${values['loss-minutes']} min\n`);
await lossLoop;

const sorted = [...samples].sort((a, b) => a - b);
const pct = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const cDowns = prober.lines.filter((l) => l.includes('"site":"fo.test/c"') && l.includes('"msg":"site down"')).length;
const result = {
  kills: samples.length,
  medianMs: Math.round(pct(50)),
  p90Ms: Math.round(pct(90)),
  p99Ms: Math.round(pct(99)),
  maxMs: Math.round(sorted[sorted.length - 1]),
  minMs: Math.round(sorted[0]),
  lossMinutes: Math.round(((Date.now() - lossStart) / 60_000) * 10) / 10,
  lossQueries,
  falseFailoverAnswers: lossWrong.length,
  proberDownTransitionsOfLossySite: cDowns,
  loadavg1mBefore: load0,
  loadavg1mAfter: loadavg()[0],
  node: process.version,
  uptime: execSync('uptime').toString().trim(),
};
console.log(JSON.stringify(result, null, 2));
sock.close();
cleanup();
process.exit(0);
