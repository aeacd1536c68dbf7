/**
 * End-to-end DNSSEC: a signed zone served over real sockets, every answer kind validated by an
 * independent validator, `delv` (BIND 9), with the zone's DNSKEY as its trust anchor. The Site
 * Name is checked before and after its site's real HTTP backend stops (the prober sees it down
 * and the answer fails over, still validated). Without delv the test is skipped.
 */
import t from 'tap';
import { spawnSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServeApp } from '../../src/app/serve-app.js';
import { memoryLogger } from '../helpers/metrics.js';
import { startBackend } from '../helpers/backends.js';
import { tempZonesDir } from '../helpers/dns.js';
import { makeKeySet } from '../helpers/dnssec.js';

const hasDelv = spawnSync('delv', ['-v']).status === 0;

const FIXTURE = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');
const WILD = readFileSync(new URL('../fixtures/wildcard.example.org.yaml', import.meta.url), 'utf8');

interface Validated {
  output: string;
  fully: boolean;
  negative: string | null;
}

async function delv(port: number, anchors: string, name: string, type: string, root = 'example.net'): Promise<Validated> {
  const child = spawn('delv', ['@127.0.0.1', '-p', String(port), '-a', anchors, `+root=${root}`, '+nomtrace', '+norrcomments', name, type], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  await once(child, 'exit');
  const negative = /resolution failed: (ncache nxdomain|ncache nxrrset)/.exec(output)?.[1] ?? null;
  return { output, fully: /fully validated/.test(output), negative };
}

for (const denial of ['nsec', 'nsec3', 'nsec3-opt-out'] as const)
t.test(`delv validates every answer kind (${denial})`, { skip: hasDelv ? false : 'delv (bind9-dnsutils) is not installed' }, async (t) => {
  const backend = await startBackend('127.0.0.1');
  t.teardown(() => backend.stop());
  const text = FIXTURE.replace(
    '  east: { addresses: [192.0.2.80, "2001:db8::80"] }',
    `  east: { addresses: [192.0.2.80, "2001:db8::80"], probe: { http: "${backend.url}", interval: 200ms, timeout: 150ms, rise: 1, fall: 1 } }`,
  );
  const settings = denial === 'nsec' ? 'dnssec: true' : `dnssec: { denial: ${denial}, algorithm: ed25519 }`;
  // The child of the delegation with DS is served here too: its DS is still the parent's answer.
  const child = `zone: secure.example.net\nttl: 600\nsoa: { mname: ns.secure.example.net, rname: hostmaster.example.net }\nnameservers:\n  ns.secure.example.net: [192.0.2.51]\n${settings}\n`;
  const dir = tempZonesDir({ 'example.net.yaml': text.replace('dnssec: true', settings), 'example.org.yaml': `${WILD}\n${settings}\n`, 'secure.example.net.yaml': child });
  const keys = denial === 'nsec' ? makeKeySet('example.net', 13, 'ksk+zsk') : makeKeySet('example.net', 15, 'csk');
  const wildKeys = makeKeySet('example.org', denial === 'nsec' ? 13 : 15);
  const childKeys = makeKeySet('secure.example.net');
  const { logger } = memoryLogger();
  const app = await startServeApp({
    zonesPath: dir,
    listen: ['127.0.0.1:0'],
    udpPath: 'dgram',
    logger,
    http: null,
    httpExplicit: false,
    startupLimitMs: 2000,
    keys: { keysFor: (zone) => (zone === 'example.net' ? keys : zone === 'example.org' ? wildKeys : childKeys), now: () => Date.now() },
  });
  t.teardown(() => app.stop());
  const port = app.ns.udp[0].port;
  const ksk = keys.keySigning[0];
  const anchors = join(dir, 'anchors.conf');
  writeFileSync(anchors, `trust-anchors {\n  example.net. static-key ${ksk.flags} 3 ${ksk.algorithm} "${ksk.publicKey.toString('base64')}";\n};\n`);

  const positive: [string, string][] = [
    ['example.net', 'DNSKEY'],
    ['example.net', 'SOA'],
    ['pool.example.net', 'A'],
    ['pair.example.net', 'A'],
    ['east.example.net', 'A'],
    ['east.example.net', 'AAAA'],
    ['mx.example.net', 'A'],
    ['example.net', 'MX'],
    ['example.net', 'TXT'],
    ['www.example.net', 'A'],
    ['a.wild.example.net', 'TXT'],
    // A delegation with DS whose child zone is served here too: the DS, answered and signed by
    // the parent side.
    ['secure.example.net', 'DS'],
    // A CNAME to that delegation, asked for DS: the chain and the DS.
    ['to-secure.example.net', 'DS'],
  ];
  for (const [name, type] of positive) {
    const r = await delv(port, anchors, name, type);
    t.ok(r.fully, `${name} ${type}: fully validated`, { output: r.output });
  }
  const negatives: [string, string, string][] = [
    ['nope.example.net', 'A', 'ncache nxdomain'],
    // A label holding a dot ("zz.a"): denied by its wire labels.
    ['zz\\.a.example.net', 'A', 'ncache nxdomain'],
    ['q\\.b.example.net', 'A', 'ncache nxdomain'],
    ['dangling.example.net', 'A', 'ncache nxdomain'],
    ['mx.example.net', 'TXT', 'ncache nxrrset'],
    ['west.example.net', 'AAAA', 'ncache nxrrset'],
    ['ent.example.net', 'A', 'ncache nxrrset'],
    ['a.wild.example.net', 'A', 'ncache nxrrset'],
    // A delegation without DS: its NSEC proves the child insecure (delv, talking to this
    // server alone, cannot follow the referral itself).
    ['sub.example.net', 'DS', 'ncache nxrrset'],
  ];
  for (const [name, type, kind] of negatives) {
    const r = await delv(port, anchors, name, type);
    // delv reports a validated negative answer as "fully validated" and names the kind.
    t.ok(r.fully && r.negative === kind, `${name} ${type}: validated ${kind}`, { output: r.output });
  }
  // Wildcards (RFC 4592) of every kind, example.org anchored by its own key.
  const wildAnchors = join(dir, 'wild-anchors.conf');
  const wk = wildKeys.keySigning[0];
  writeFileSync(wildAnchors, `trust-anchors {\n  example.org. static-key ${wk.flags} 3 ${wk.algorithm} "${wk.publicKey.toString('base64')}";\n};\n`);
  for (const [name, type, kind] of [
    ['foo.cdn.example.org', 'A', null],
    ['q.alias.example.org', 'A', null],
    ['front.shop.example.org', 'A', null],
    ['x.g.example.org', 'A', null],
    ['paris.eu.example.org', 'A', null],
    ['anything.example.org', 'MX', null],
    ['anything.example.org', 'AAAA', 'ncache nxrrset'],
    ['paris.eu.example.org', 'AAAA', 'ncache nxrrset'],
    ['q.ent.example.org', 'TXT', 'ncache nxrrset'],
    ['nope.cdn.example.org', 'TXT', 'ncache nxrrset'],
    ['x.host.cdn.example.org', 'A', 'ncache nxdomain'],
  ] as const) {
    const r = await delv(port, wildAnchors, name, type, 'example.org');
    t.ok(r.fully && r.negative === kind, `${name} ${type}: validated${kind === null ? '' : ` ${kind}`}`, { output: r.output });
  }

  // The Site Name before and after its backend stops: east, then west; both validated.
  const before = await delv(port, anchors, 'east.example.net', 'A');
  t.match(before.output, /192\.0\.2\.80/);
  t.ok(before.fully);
  await backend.stop();
  const deadline = Date.now() + 5000;
  let after = before;
  while (Date.now() < deadline) {
    after = await delv(port, anchors, 'east.example.net', 'A');
    if (/192\.0\.2\.90/.test(after.output)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.match(after.output, /192\.0\.2\.90/, 'east failed over to west');
  t.ok(after.fully, 'the failover answer is fully validated', { output: after.output });
});

