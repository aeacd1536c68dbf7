/**
 * End-to-end wildcards (RFC 4592): a real `sitedns serve`, asked with dig, and the static cases
 * compared with knot serving the same zone (answer and authority sections, RCODE, AA).
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, query, tempZonesDir, type Decoded } from '../helpers/dns.js';
import { startSitedns, udpQuery } from '../helpers/net.js';
import { freePort } from '../helpers/redis.js';

/** One zone, written for both servers: sitedns's YAML and knot's master file. */
const YAML = `zone: example.org
ttl: 300
soa: { mname: ns1.example.org, rname: hostmaster.example.org, serial: 1, minimum: 60 }
nameservers:
  ns1.example.org: [192.0.2.1]
records:
  "*": { MX: ["10 mx.example.org."], TXT: ["wild"] }
  mx: { A: [192.0.2.25] }
  "*.cdn": { A: [192.0.2.77, 192.0.2.79] }
  host.cdn: { A: [192.0.2.78] }
  deep.x.cdn: { A: [192.0.2.76] }
  "*.alias": { CNAME: target }
  target: { A: [192.0.2.88] }
  "*.chain": { CNAME: z.cdn }
  "*.out": { CNAME: www.other.test. }
  "a.*.ent": { TXT: ["below an empty wildcard"] }
  sub: { NS: [ns.sub.example.org.] }
  ns.sub: { A: [192.0.2.53] }
`;
const MASTER = `$ORIGIN example.org.
$TTL 300
@ SOA ns1.example.org. hostmaster.example.org. 1 3600 600 604800 60
@ NS ns1.example.org.
ns1 A 192.0.2.1
* MX 10 mx.example.org.
* TXT "wild"
mx A 192.0.2.25
*.cdn A 192.0.2.77
*.cdn A 192.0.2.79
host.cdn A 192.0.2.78
deep.x.cdn A 192.0.2.76
*.alias CNAME target
target A 192.0.2.88
*.chain CNAME z.cdn
*.out CNAME www.other.test.
a.*.ent TXT "below an empty wildcard"
sub NS ns.sub.example.org.
ns.sub A 192.0.2.53
`;

const CASES: [string, string][] = [
  ['foo.cdn.example.org', 'A'],
  ['a.b.cdn.example.org', 'A'],
  ['foo.cdn.example.org', 'MX'],
  ['foo.cdn.example.org', 'ANY'],
  ['host.cdn.example.org', 'A'],
  ['host.cdn.example.org', 'TXT'],
  ['x.host.cdn.example.org', 'A'],
  ['cdn.example.org', 'A'],
  ['x.cdn.example.org', 'TXT'],
  ['y.x.cdn.example.org', 'A'],
  ['*.cdn.example.org', 'A'],
  ['anything.example.org', 'MX'],
  ['anything.example.org', 'TXT'],
  ['anything.example.org', 'AAAA'],
  ['mx.example.org', 'MX'],
  ['q.ent.example.org', 'TXT'],
  ['a.*.ent.example.org', 'TXT'],
  ['q.alias.example.org', 'A'],
  ['q.alias.example.org', 'CNAME'],
  ['q.chain.example.org', 'A'],
  ['q.out.example.org', 'A'],
  ['x.sub.example.org', 'MX'],
  ['sub.example.org', 'TXT'],
];

/** The parts both servers must agree on: RCODE, AA, answer and authority (owner, type, TTL, data). */
function comparable(d: Decoded): unknown {
  const rr = (r: any) => `${r.name} ${r.type} ${r.ttl} ${JSON.stringify(r.address ?? r.domain ?? r.exchange ?? r.data ?? r.primary ?? r.ns ?? '')}`;
  return { rcode: d.rcode, aa: d.aa, answer: d.answers.map(rr).sort(), authority: d.authorities.map(rr).sort() };
}

/** Starts knotd on a free port with MASTER; stopped by `teardown`. */
async function startKnot(teardown: (stop: () => Promise<void>) => void): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sitedns-knot-'));
  const port = await freePort();
  writeFileSync(join(dir, 'example.org.zone'), MASTER);
  writeFileSync(join(dir, 'knot.conf'), `server:\n  rundir: "${dir}"\n  listen: 127.0.0.1@${port}\ndatabase:\n  storage: "${dir}"\nlog:\n  - target: stderr\n    any: error\nzone:\n  - domain: example.org\n    file: "${dir}/example.org.zone"\n`);
  const knot = spawn('knotd', ['-c', join(dir, 'knot.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  teardown(async () => {
    if (knot.exitCode !== null) return;
    knot.kill('SIGTERM');
    await once(knot, 'exit');
  });
  for (let i = 0; i < 100; i++) {
    const reply = await udpQuery(port, query('example.org', 'SOA'), '127.0.0.1', 200);
    if (reply !== null && decode(reply).answers.length === 1) return port;
  }
  throw new Error('knotd did not answer');
}

const haveKnot = spawnSync('knotd', ['--version']).status === 0;

(haveKnot ? t.test : t.skip)('static wildcard answers match knot', async (t) => {
  const sitedns = await startSitedns(['serve', '--zones', tempZonesDir({ 'example.org.yaml': YAML }), '--listen', '127.0.0.1:0']);
  t.teardown(() => sitedns.stop());
  const knotPort = await startKnot((stop) => t.teardown(stop));
  for (const [name, type] of CASES) {
    for (const edns of [false, {}] as const) {
      const q = query(name, type, { rd: false, edns });
      const ours = decode((await udpQuery(sitedns.port, q))!);
      const knots = decode((await udpQuery(knotPort, q))!);
      t.same(comparable(ours), comparable(knots), `${name} ${type}${edns ? ' (EDNS)' : ''}: as knot answers`);
    }
  }
});

const haveDig = spawnSync('dig', ['-v']).status === 0;

(haveDig ? t.test : t.skip)('dig: the synthesized owner is the name asked, for records and for a wildcard Pool Name', async (t) => {
  const zone = `${YAML}sites:\n  a: { addresses: [192.0.2.10] }\npool: { name: "*.shop", policy: first }\n`;
  const sitedns = await startSitedns(['serve', '--zones', tempZonesDir({ 'example.org.yaml': zone }), '--listen', '127.0.0.1:0']);
  t.teardown(() => sitedns.stop());
  const dig = (...args: string[]) => spawnSync('dig', ['@127.0.0.1', '-p', String(sitedns.port), '+norec', '+noall', '+answer', ...args], { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.split(/\s+/).join(' '));
  t.same(dig('Some.Name.cdn.example.org', 'A').sort(), ['Some.Name.cdn.example.org. 300 IN A 192.0.2.77', 'Some.Name.cdn.example.org. 300 IN A 192.0.2.79']);
  t.same(dig('+tcp', 'front.shop.example.org', 'A'), ['front.shop.example.org. 0 IN A 192.0.2.10']);
  t.same(dig('q.alias.example.org', 'A'), ['q.alias.example.org. 300 IN CNAME target.example.org.', 'target.example.org. 300 IN A 192.0.2.88']);
});
