/**
 * End-to-end chain of trust: knot serves the signed parent zone `net` with the DS of
 * example.net, sitedns serves example.net signed, and unbound, trusting only the parent's key,
 * resolves through both and sets AD (RFC 4035 §3.2.3) on every answer kind; with NSEC3 opt-out,
 * the names an Opt-Out record covers are insecure, not bogus. Skipped without knotd or unbound.
 */
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeApp } from '../../src/app/serve-app.js';
import type { ZoneKeySet } from '../../src/dnssec/types.js';
import { memoryLogger } from '../helpers/metrics.js';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { freeUdpPort, udpQuery } from '../helpers/net.js';
import { dsDigest, makeKeySet, nsec3HashOf, signedZones } from '../helpers/dnssec.js';

const have = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const skip = have('knotd') && have('unbound') ? false : 'knotd or unbound is not installed';
const FIXTURE = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start`);
}

/** The DS record of `zone`'s key-signing key, as knot's zone file takes it. */
function dsOf(zone: string, keys: ZoneKeySet): string {
  const ksk = keys.keySigning[0];
  return `${ksk.keyTag} ${ksk.algorithm} 2 ${dsDigest(zone, ksk).toString('hex')}`;
}

/**
 * sitedns serving `zones` (zone file name -> text, each zone signed with `keys` of its name),
 * knot serving `net` signed with `parent` (lines of its zone file: the delegations and DS
 * records), and unbound trusting only net's key, every zone of `zones` a stub on sitedns.
 * Returns a DO=1, RD=1 query through unbound and its log.
 */
async function chainOfTrust(t: Tap.Test, zones: Record<string, string>, keys: ReadonlyMap<string, ZoneKeySet>, parent: string) {
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
  const { logger } = memoryLogger();
  const app = await startServeApp({
    zonesPath: tempZonesDir(zones),
    listen: ['127.0.0.1:0'],
    udpPath: 'dgram',
    logger,
    http: null,
    httpExplicit: false,
    startupLimitMs: 200,
    keys: { keysFor: (zone) => keys.get(zone), now: () => Date.now() },
  });
  stopApp = () => app.stop();
  const childPort = app.ns.udp[0].port;

  // The parent: `net`, signed by knot with a key of its own.
  writeFileSync(join(dir, 'net.zone'), `$ORIGIN net.\n$TTL 300\n@ SOA ns.net. h.net. 1 3600 600 604800 60\n@ NS ns.net.\nns A 127.0.0.1\n${parent}`);
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

  // The validator: trusts the parent's key only; every zone reached as a stub on loopback ports.
  const unboundPort = await freeUdpPort();
  const stubs = Object.values(zones).map((text) => /^zone: (\S+)$/m.exec(text)![1]).map((zone) => `stub-zone:\n  name: "${zone}"\n  stub-addr: 127.0.0.1@${childPort}\n`);
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
${stubs.join('')}remote-control:
  control-enable: no
`,
  );
  const unbound = spawn('unbound', ['-d', '-c', join(dir, 'unbound.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  unbound.stderr.on('data', (d) => (log += d));
  running.push(unbound);
  await waitFor(async () => (await udpQuery(unboundPort, query('net', 'SOA', { edns: { do: true } }), '127.0.0.1', 300)) !== null, 'unbound');

  const ask = async (name: string, type: string | number) => {
    const reply = await udpQuery(unboundPort, query(name, type, { edns: { do: true }, rd: true }), '127.0.0.1', 3000);
    return reply === null ? null : decode(reply);
  };
  return { ask, log: () => log.slice(-2000) };
}

const AD = 0x0020;

t.test('unbound validates answers through a signed parent (AD)', { skip }, async (t) => {
  const keys = makeKeySet('example.net', 13, 'ksk+zsk');
  // A control: bogus.net is signed too, but the parent's DS for it names another key.
  const bogusKeys = makeKeySet('bogus.net');
  const zones = { 'example.net.yaml': FIXTURE, 'bogus.net.yaml': FIXTURE.replace(/example\.net/g, 'bogus.net') };
  const parent = `example NS ns1.example.net.\nns1.example A 192.0.2.1\nexample DS ${dsOf('example.net', keys)}\nbogus NS ns1.bogus.net.\nns1.bogus A 192.0.2.1\nbogus DS ${bogusKeys.keySigning[0].keyTag} 13 2 ${'00'.repeat(32)}\n`;
  const { ask, log } = await chainOfTrust(t, zones, new Map([['example.net', keys], ['bogus.net', bogusKeys]]), parent);
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
    t.ok(d !== null && d.rcode === rcode && (d.raw.readUInt16BE(2) & AD) !== 0, `${name} ${type}: rcode ${rcode}, AD`, { log: log() });
  }
  const bogus = await ask('pool.bogus.net', 'A');
  t.equal(bogus?.rcode, 2, 'the control: a DS naming another key makes the answers bogus (SERVFAIL)');
});

t.test('unbound through a signed parent, NSEC3 with opt-out: signed answers AD, below an unsigned delegation insecure, never bogus', { skip }, async (t) => {
  const keys = makeKeySet('example.net', 13, 'csk');
  const text = FIXTURE.replace('dnssec: true', 'dnssec: { denial: nsec3-opt-out }').replace('records:\n', 'records:\n  d.only: { NS: [ns.sub.example.net.] }\n');
  // The child of the delegation without DS, unsigned, served here too.
  const childZone = 'zone: sub.example.net\nsoa: { mname: ns.sub.example.net, rname: hostmaster.example.net }\nnameservers:\n  ns.sub.example.net: [192.0.2.50]\nrecords:\n  host: { A: [192.0.2.55] }\n';
  // Names hashed into a span whose NSEC3 has the Opt-Out flag (one holding a left-out name) or
  // into another: the hashes are the zone's, whatever its keys (no salt).
  const chainKeys = signedZones(text, keys, Date.now()).zones.get('example.net')!.signatures!.chain.keys;
  const spanOf = (name: string) => {
    const i = chainKeys.findLastIndex((k) => k < nsec3HashOf(name));
    return i < 0 ? chainKeys.length - 1 : i;
  };
  const optedOut = new Set(['sub.example.net', 'd.only.example.net', 'only.example.net'].map(spanOf));
  const pick = (label: (i: number) => string, inOptOut: boolean) => Array.from({ length: 1000 }, (_, i) => label(i)).find((name) => optedOut.has(spanOf(name)) === inOptOut)!;
  const nxSecure = pick((i) => `n${i}.example.net`, false);
  const nxInsecure = pick((i) => `n${i}.example.net`, true);
  const wildSecure = pick((i) => `q${i}.wild.example.net`, false);
  const parent = `example NS ns1.example.net.\nns1.example A 192.0.2.1\nexample DS ${dsOf('example.net', keys)}\n`;
  const { ask, log } = await chainOfTrust(t, { 'example.net.yaml': text, 'sub.example.net.yaml': childZone }, new Map([['example.net', keys]]), parent);
  for (const [name, type, rcode, secure] of [
    ['mx.example.net', 'A', 0, true],
    ['pool.example.net', 'A', 0, true],
    [nxSecure, 'A', 3, true],
    ['mx.example.net', 'TXT', 0, true],
    ['ent.example.net', 'A', 0, true],
    [wildSecure, 'TXT', 0, true],
    [wildSecure, 'A', 0, true],
    ['secure.example.net', 43, 0, true],
    // Insecure, and not bogus (SERVFAIL): the unsigned delegations, the child's answers, the
    // empty non-terminal above only d.only, and names denied by an Opt-Out record.
    ['sub.example.net', 43, 0, false],
    ['host.sub.example.net', 'A', 0, false],
    ['d.only.example.net', 43, 0, false],
    ['only.example.net', 'A', 0, false],
    ['x.only.example.net', 'A', 3, false],
    [nxInsecure, 'A', 3, false],
  ] as const) {
    const d = await ask(name, type);
    const ad = d !== null && (d.raw.readUInt16BE(2) & AD) !== 0;
    t.ok(d !== null && d.rcode === rcode && ad === secure, `${name} ${type}: rcode ${rcode}, ${secure ? 'AD' : 'insecure (no AD)'}`, { rcode: d?.rcode, ad, log: log() });
  }
  const child = await ask('host.sub.example.net', 'A');
  t.same(child?.answers.map((a) => a.address), ['192.0.2.55'], "the unsigned child's answer");
});
