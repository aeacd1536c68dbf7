/**
 * End-to-end chain of trust: knot serves the signed parent zone `net` with the DS of
 * example.net, sitedns serves example.net signed, and unbound, trusting only the parent's key,
 * resolves through both and sets AD (RFC 4035 §3.2.3) on every answer kind. Skipped without
 * knotd or unbound.
 */
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeApp } from '../../src/app/serve-app.js';
import { memoryLogger } from '../helpers/metrics.js';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { freeUdpPort, udpQuery } from '../helpers/net.js';
import { dsDigest, makeKeySet } from '../helpers/dnssec.js';

const have = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const FIXTURE = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start`);
}

t.test('unbound validates answers through a signed parent (AD)', { skip: have('knotd') && have('unbound') ? false : 'knotd or unbound is not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sitedns-chain-'));
  // One teardown, in order: the servers stop (and stop writing into `dir`), then `dir` goes.
  const running: ChildProcess[] = [];
  let stopApp = async () => {};
  t.teardown(async () => {
    for (const child of running) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
    await stopApp();
    rmSync(dir, { recursive: true, force: true });
  });
  const keys = makeKeySet('example.net', 13, 'ksk+zsk');
  // A control: bogus.net is signed too, but the parent's DS for it names another key.
  const bogusKeys = makeKeySet('bogus.net');
  const { logger } = memoryLogger();
  const app = await startServeApp({
    zonesPath: tempZonesDir({ 'example.net.yaml': FIXTURE, 'bogus.net.yaml': FIXTURE.replace(/example\.net/g, 'bogus.net') }),
    listen: ['127.0.0.1:0'],
    udpPath: 'dgram',
    logger,
    http: null,
    httpExplicit: false,
    startupLimitMs: 200,
    keys: { keysFor: (zone) => (zone === 'example.net' ? keys : bogusKeys), now: () => Date.now() },
  });
  stopApp = () => app.stop();
  const childPort = app.ns.udp[0].port;

  // The parent: `net`, signed by knot with a key of its own, holding example.net's DS.
  const ksk = keys.keySigning[0];
  const ds = `${ksk.keyTag} ${ksk.algorithm} 2 ${dsDigest('example.net', ksk).toString('hex')}`;
  writeFileSync(join(dir, 'net.zone'), `$ORIGIN net.\n$TTL 300\n@ SOA ns.net. h.net. 1 3600 600 604800 60\n@ NS ns.net.\nns A 127.0.0.1\nexample NS ns1.example.net.\nns1.example A 192.0.2.1\nexample DS ${ds}\nbogus NS ns1.bogus.net.\nns1.bogus A 192.0.2.1\nbogus DS ${bogusKeys.keySigning[0].keyTag} 13 2 ${'00'.repeat(32)}\n`);
  const knotPort = await freeUdpPort();
  writeFileSync(
    join(dir, 'knot.conf'),
    `server:\n  listen: 127.0.0.1@${knotPort}\n  rundir: ${dir}\ndatabase:\n  storage: ${dir}\npolicy:\n  - id: test\n    algorithm: ecdsap256sha256\ntemplate:\n  - id: default\n    storage: ${dir}\nzone:\n  - domain: net\n    file: net.zone\n    dnssec-signing: on\n    dnssec-policy: test\nlog:\n  - target: stderr\n    any: error\n`,
  );
  const knot = spawn('knotd', ['-c', join(dir, 'knot.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.push(knot);
  let parentKey = '';
  await waitFor(async () => {
    const r = spawnSync('kdig', ['@127.0.0.1', '-p', String(knotPort), 'net', 'DNSKEY', '+short'], { encoding: 'utf8' });
    parentKey = r.stdout.split('\n').find((l) => l.startsWith('257 ')) ?? '';
    return parentKey !== '';
  }, 'knotd');

  // The validator: trusts the parent's key only; both zones reached as stubs on loopback ports.
  const unboundPort = await freeUdpPort();
  writeFileSync(
    join(dir, 'unbound.conf'),
    `server:
  interface: 127.0.0.1
  port: ${unboundPort}
  do-not-query-localhost: no
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: "${join(dir, 'unbound.pid')}"
  use-syslog: no
  logfile: ""
  verbosity: 0
  module-config: "validator iterator"
  trust-anchor: "net. DNSKEY ${parentKey}"
  qname-minimisation: no
  val-log-level: 2
stub-zone:
  name: "net"
  stub-addr: 127.0.0.1@${knotPort}
stub-zone:
  name: "example.net"
  stub-addr: 127.0.0.1@${childPort}
stub-zone:
  name: "bogus.net"
  stub-addr: 127.0.0.1@${childPort}
remote-control:
  control-enable: no
`,
  );
  const unbound = spawn('unbound', ['-d', '-c', join(dir, 'unbound.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let unboundLog = '';
  unbound.stderr.on('data', (d) => (unboundLog += d));
  running.push(unbound);
  await waitFor(async () => (await udpQuery(unboundPort, query('net', 'SOA', { edns: { do: true } }), '127.0.0.1', 300)) !== null, 'unbound');

  const ask = async (name: string, type: string | number) => {
    const reply = await udpQuery(unboundPort, query(name, type, { edns: { do: true }, rd: true }), '127.0.0.1', 3000);
    return reply === null ? null : decode(reply);
  };
  for (const [name, type, rcode] of [
    ['pool.example.net', 'A', 0],
    ['pair.example.net', 'A', 0],
    ['east.example.net', 'A', 0],
    ['mx.example.net', 'A', 0],
    ['example.net', 'MX', 0],
    ['example.net', 'TXT', 0],
    ['www.example.net', 'A', 0],
    ['nope.example.net', 'A', 3],
    ['mx.example.net', 'TXT', 0],
    ['secure.example.net', 43, 0],
    ['sub.example.net', 43, 0],
  ] as const) {
    const d = await ask(name, type);
    t.ok(d !== null && d.rcode === rcode && (d.raw.readUInt16BE(2) & 0x0020) !== 0, `${name} ${type}: rcode ${rcode}, AD`, { log: unboundLog.slice(-2000) });
  }
  const bogus = await ask('pool.bogus.net', 'A');
  t.equal(bogus?.rcode, 2, 'the control: a DS naming another key makes the answers bogus (SERVFAIL)');
});
