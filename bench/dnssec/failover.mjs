#!/usr/bin/env node
/**
 * From a site's death to a *validated* new answer: a signed zone (`dnssec: true`, keys made by
 * `serve --keys` at its first start), served by the embedded default with two probed sites, each
 * a real HTTP backend in its own process. Each round waits until the Site Name a.fo.test answers
 * a's address, waits a random 1-2.5 s (a random phase against the probe schedule), SIGKILLs a's
 * backend, then measures:
 * - `do1`: the first DO=1 answer over UDP (queried every 5 ms) that holds b's address and an
 *   RRSIG, the signed failover as a resolver receives it;
 * - `validated`: the first `delv` run (BIND's validator, the zone's KSK as its trust anchor,
 *   started back to back) that prints b's address as "fully validated". A delv run takes tens
 *   of milliseconds, so this is an upper bound of the time plus one run.
 * The backend is restarted and the next round waits for a to be answered again.
 *
 *   npm run build && node bench/dnssec/failover.mjs [--kills 10] [--interval 1s] [--json]
 * Needs delv (Debian bind9-dnsutils) and dig.
 */
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { answerRecords, aRecords, freePort, machine, startProcess } from '../qps/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '../../dist/cli/index.js');
const { values } = parseArgs({ options: { kills: { type: 'string', default: '10' }, interval: { type: 'string', default: '1s' }, json: { type: 'boolean' }, help: { type: 'boolean' } } });
if (values.help) {
  console.log('node bench/dnssec/failover.mjs [--kills 10] [--interval 1s] [--json]');
  process.exit(0);
}
const KILLS = Number(values.kills);
const A = '192.0.2.10';
const B = '192.0.2.20';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
process.on('SIGINT', () => process.exit(130));

async function start(cmd, args, readyText) {
  const started = await startProcess(cmd, args, { ready: (line) => line.includes(readyText), timeoutMs: 30_000, maxLines: Infinity });
  children.push(started.proc);
  return started;
}
const startBackend = (host, port) => start(process.execPath, [join(here, '../failover/backend.mjs'), host, String(port)], 'ready');

// DO=1 queries over one UDP socket: the A addresses of the answer, and whether an RRSIG came with them.
const sock = dgram.createSocket('udp4');
await new Promise((r) => sock.bind(0, '127.0.0.1', r));
const pending = new Map();
let nextId = 1;
sock.on('message', (msg) => {
  const resolve = pending.get(msg.readUInt16BE(0));
  if (!resolve) return;
  pending.delete(msg.readUInt16BE(0));
  resolve({ addresses: aRecords(msg).join(','), signed: answerRecords(msg).some((r) => r.type === 46) }); // 46: RRSIG
});
function askSigned(port, name, timeoutMs = 1000) {
  const id = (nextId = (nextId % 65535) + 1);
  const qname = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(1, 10); // ARCOUNT: the OPT
  const question = Buffer.from([0, 1, 0, 1]); // A IN
  // OPT (RFC 6891): root owner, type 41, 1232 bytes, extended RCODE and version 0, DO set (RFC 3225).
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      resolve({ addresses: 'timeout', signed: false });
    }, timeoutMs);
    pending.set(id, (r) => {
      clearTimeout(timer);
      resolve(r);
    });
    sock.send(Buffer.concat([header, qname, question, opt]), port, '127.0.0.1');
  });
}

async function delv(port, anchors, name) {
  const child = spawn('delv', ['@127.0.0.1', '-p', String(port), '-a', anchors, '+root=fo.test', '+nomtrace', '+norrcomments', name, 'A'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  await once(child, 'exit');
  return { fully: /fully validated/.test(output), addresses: [...output.matchAll(/\sA\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]).join(',') };
}

const load0 = loadavg()[0];
const [portA, portB] = [await freePort('127.0.0.2'), await freePort('127.0.0.3')];
let backendA = await startBackend('127.0.0.2', portA);
await startBackend('127.0.0.3', portB);
const dir = mkdtempSync(join(tmpdir(), 'sitedns-dnssec-failover-'));
const probe = (host, port) => `{ http: "http://${host}:${port}/health", interval: ${values.interval}, timeout: 500ms, rise: 2, fall: 2, load: load }`;
writeFileSync(
  join(dir, 'fo.yaml'),
  `zone: fo.test
soa: { mname: ns1.fo.test, rname: h.fo.test }
nameservers: { ns1.fo.test: [192.0.2.1] }
dnssec: true
sites:
  a: { addresses: [${A}], probe: ${probe('127.0.0.2', portA)} }
  b: { addresses: [${B}], probe: ${probe('127.0.0.3', portB)} }
groups:
  all: [a, b]
`,
);
const keys = join(dir, 'keys');
const dnsPort = await freePort();
await start(process.execPath, [CLI, 'serve', '--zones', join(dir, 'fo.yaml'), '--keys', keys, '--listen', `127.0.0.1:${dnsPort}`, '--http', 'off'], 'listening on UDP and TCP');

// The trust anchor: the zone's key-signing key (flags 257), as the parent's DS would name it.
const dnskeys = execFileSync('dig', ['@127.0.0.1', '-p', String(dnsPort), '+short', 'fo.test', 'DNSKEY'], { encoding: 'utf8' });
const ksk = dnskeys.split('\n').find((line) => line.startsWith('257 '));
if (!ksk) throw new Error(`no key-signing key in the DNSKEY answer:\n${dnskeys}`);
const [flags, protocol, algorithm, ...key] = ksk.split(/\s+/);
const anchors = join(dir, 'anchors.conf');
writeFileSync(anchors, `trust-anchors {\n  fo.test. static-key ${flags} ${protocol} ${algorithm} "${key.join('')}";\n};\n`);

async function waitFor(what, test, limitMs = 30_000) {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if (await test()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const rounds = [];
for (let i = 0; i < KILLS; i++) {
  await waitFor('a.fo.test to answer a, validated', async () => {
    const r = await delv(dnsPort, anchors, 'a.fo.test');
    return r.fully && r.addresses === A;
  });
  await sleep(1000 + Math.random() * 1500);
  const t0 = performance.now();
  backendA.proc.kill('SIGKILL');
  const signedAt = (async () => {
    for (;;) {
      const r = await askSigned(dnsPort, 'a.fo.test');
      if (r.addresses === B && r.signed) return performance.now() - t0;
      await sleep(5);
    }
  })();
  const validatedAt = (async () => {
    for (;;) {
      const r = await delv(dnsPort, anchors, 'a.fo.test');
      if (r.fully && r.addresses === B) return performance.now() - t0;
    }
  })();
  const [do1, validated] = await Promise.all([signedAt, validatedAt]);
  rounds.push({ do1: Math.round(do1), validated: Math.round(validated) });
  if (!values.json) console.error(`kill ${i + 1}: signed DO=1 answer ${Math.round(do1)} ms, validated by delv ${Math.round(validated)} ms`);
  backendA = await startBackend('127.0.0.2', portA);
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], mean: Math.round(s.reduce((a, b) => a + b, 0) / s.length), max: s[s.length - 1] };
};
const result = { machine: machine(), kills: KILLS, interval: values.interval, loadBefore: load0, do1Ms: stats(rounds.map((r) => r.do1)), validatedMs: stats(rounds.map((r) => r.validated)), rounds };
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(`site death -> signed DO=1 answer: median ${result.do1Ms.median} ms, mean ${result.do1Ms.mean} ms, max ${result.do1Ms.max} ms`);
  console.log(`site death -> validated by delv:  median ${result.validatedMs.median} ms, mean ${result.validatedMs.mean} ms, max ${result.validatedMs.max} ms`);
}
process.exit(0);
