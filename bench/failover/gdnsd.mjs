#!/usr/bin/env node
// For comparison: the same kill as failover.mjs against gdnsd (Debian package) with
// its http_status monitor at its minimum interval (2 s) and simplefo (primary a, secondary b).
//
//   node bench/failover/gdnsd.mjs [--kills 10] [--down-thresh 2]
//
// gdnsd probes one port on every address, so both backends listen on the same port on
// 127.0.0.2 and 127.0.0.3, and a.fo.test answers the backend addresses themselves.
import dgram from 'node:dgram';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { aRecords, freePort, startProcess } from '../qps/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { kills: { type: 'string', default: '10' }, 'down-thresh': { type: 'string', default: '2' } } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = [];
process.on('exit', () => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')));
process.on('SIGINT', () => process.exit(130));

/** A child process, ready once a line of its output contains `readyText` (bench/qps/lib.mjs). */
async function start(cmd, args, readyText) {
  const { proc } = await startProcess(cmd, args, { ready: (line) => line.includes(readyText), timeoutMs: 20_000 });
  children.push(proc);
  return proc;
}
const sock = dgram.createSocket('udp4');
await new Promise((r) => sock.bind(0, '127.0.0.1', r));
const pending = new Map();
let nextId = 1;
sock.on('message', (msg) => {
  const p = pending.get(msg.readUInt16BE(0));
  if (!p) return;
  pending.delete(msg.readUInt16BE(0));
  p(aRecords(msg)[0] ?? '');
});
function ask(port, name) {
  const id = (nextId = (nextId % 65535) + 1);
  const q = Buffer.alloc(12 + name.length + 6);
  q.writeUInt16BE(id, 0);
  q.writeUInt16BE(1, 4);
  let o = 12;
  for (const l of name.split('.')) { q[o++] = l.length; q.write(l, o, 'latin1'); o += l.length; }
  q[o++] = 0;
  q.writeUInt16BE(1, o); q.writeUInt16BE(1, o + 2);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { pending.delete(id); resolve('timeout'); }, 1000);
    pending.set(id, (a) => { clearTimeout(timer); resolve(a); });
    sock.send(q, port, '127.0.0.1');
  });
}

const dir = mkdtempSync(join(tmpdir(), 'sitedns-bench-gdnsd-'));
for (const d of ['zones', 'run', 'state']) mkdirSync(join(dir, d));
const dnsPort = await freePort();
const webPort = await freePort('127.0.0.2');
writeFileSync(join(dir, 'config'), `options => { listen => [ 127.0.0.1 ], dns_port => ${dnsPort}, run_dir => ${dir}/run, state_dir => ${dir}/state }
service_types => { web => { plugin => http_status, port => ${webPort}, url_path => /health, interval => 2, timeout => 1, up_thresh => 2, ok_thresh => 2, down_thresh => ${values['down-thresh']} } }
plugins => { simplefo => { service_types => web, fo => { primary => 127.0.0.2, secondary => 127.0.0.3 } } }
`);
writeFileSync(join(dir, 'zones/fo.test'), '@ SOA ns1 hostmaster 1 7200 1800 259200 900\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\na 5 DYNA simplefo!fo\n');
const backend = () => start(process.execPath, [join(here, 'backend.mjs'), '127.0.0.2', String(webPort)], 'ready');
let a = await backend();
await start(process.execPath, [join(here, 'backend.mjs'), '127.0.0.3', String(webPort)], 'ready');
await start('gdnsd', ['-c', dir, 'start'], 'DNS listeners started');
const load0 = loadavg()[0];
const samples = [];
for (let i = 0; i < Number(values.kills); i++) {
  while ((await ask(dnsPort, 'a.fo.test')) !== '127.0.0.2') await sleep(50);
  await sleep(1000 + Math.random() * 2000);
  const t0 = performance.now();
  a.kill('SIGKILL');
  for (;;) {
    const got = await ask(dnsPort, 'a.fo.test');
    if (got !== '127.0.0.2' && got !== 'timeout') break;
    await sleep(5);
  }
  samples.push(performance.now() - t0);
  process.stderr.write(`kill ${i + 1}: ${samples.at(-1).toFixed(0)} ms\n`);
  a = await backend();
}
const s = [...samples].sort((x, y) => x - y);
const pct = (p) => Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]);
console.log(JSON.stringify({ server: 'gdnsd 3 http_status interval 2s', kills: s.length, medianMs: pct(50), p90Ms: pct(90), maxMs: pct(100), minMs: Math.round(s[0]), loadavg1m: [load0, loadavg()[0]] }, null, 2));
process.exit(0);
