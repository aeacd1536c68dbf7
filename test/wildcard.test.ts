/**
 * Wildcards (RFC 4592) on the socket-free handler: synthesis with the query's own name as owner,
 * closest-encloser blocking, empty non-terminals, delegations, wildcard CNAMEs, NODATA, CNAME
 * targets a wildcard answers or that end the chain negatively, and Pool/Group/Site Names that
 * are wildcards; `sitedns check` on wildcards that never match.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { explain } from '../src/admin/explain.js';
import { compileZoneFiles } from '../src/config/compile.js';
import { formatProblem } from '../src/config/errors.js';
import { parseZoneText } from '../src/config/load.js';
import { Handler } from '../src/server/handler.js';
import { Runtime } from '../src/state/runtime.js';
import { makeSnapshot } from '../src/state/snapshot.js';
import { ask, compileText, decode, fixedEnv, makeHandler, query, tempZonesDir } from './helpers/dns.js';

const TEXT = readFileSync(new URL('./fixtures/wildcard.example.org.yaml', import.meta.url), 'utf8');
const zones = compileText(TEXT, 'zones/wildcard.yaml');
const { handler, runtime } = makeHandler(zones, fixedEnv());

const NOERROR = 0;
const NXDOMAIN = 3;

/** One line per record: "owner TYPE data" (TYPE as dns2's number), the way the cases read. */
function rrs(records: any[]): string[] {
  return records.map((r) => `${r.name} ${r.type} ${r.address ?? r.domain ?? r.exchange ?? r.data ?? ''}`.trim());
}

t.test('static wildcards: synthesis, blocking, NODATA, delegations (RFC 4592 §2.2, §3.3)', async (t) => {
  const SOA = ['example.org 6'];
  // [name, type, rcode, answer, authority (owner type)]
  const cases: [string, string, number, string[], string[]][] = [
    ['foo.cdn.example.org', 'A', NOERROR, ['foo.cdn.example.org 1 192.0.2.77', 'foo.cdn.example.org 1 192.0.2.79'], []],
    ['a.b.cdn.example.org', 'A', NOERROR, ['a.b.cdn.example.org 1 192.0.2.77', 'a.b.cdn.example.org 1 192.0.2.79'], []],
    // The wildcard matched, but holds no MX: NODATA, not the apex's MX.
    ['foo.cdn.example.org', 'MX', NOERROR, [], SOA],
    // An existing name is answered as itself, and blocks the wildcard below it.
    ['host.cdn.example.org', 'A', NOERROR, ['host.cdn.example.org 1 192.0.2.78'], []],
    ['host.cdn.example.org', 'MX', NOERROR, [], SOA],
    ['x.host.cdn.example.org', 'A', NXDOMAIN, [], SOA],
    // cdn and x.cdn are empty non-terminals: they exist (NODATA) and block (y.x.cdn: NXDOMAIN).
    ['cdn.example.org', 'A', NOERROR, [], SOA],
    ['x.cdn.example.org', 'A', NOERROR, [], SOA],
    ['y.x.cdn.example.org', 'A', NXDOMAIN, [], SOA],
    // The wildcard's own name is an ordinary name.
    ['*.cdn.example.org', 'A', NOERROR, ['*.cdn.example.org 1 192.0.2.77', '*.cdn.example.org 1 192.0.2.79'], []],
    // "*" at the apex answers any name whose closest encloser is the apex.
    ['anything.example.org', 'MX', NOERROR, ['anything.example.org 15 mx.example.org'], []],
    ['anything.example.org', 'TXT', NOERROR, ['anything.example.org 16 wild'], []],
    ['anything.example.org', 'A', NOERROR, [], SOA],
    ['mx.example.org', 'MX', NOERROR, [], SOA],
    // shop is an empty non-terminal above the Pool Name *.shop: the apex wildcard does not reach it.
    ['shop.example.org', 'MX', NOERROR, [], SOA],
    // RFC 4592 §4.9: an empty non-terminal wildcard (*.ent, with a.*.ent below it): NODATA.
    ['q.ent.example.org', 'TXT', NOERROR, [], SOA],
    ['a.*.ent.example.org', 'TXT', NOERROR, ['a.*.ent.example.org 16 below an empty wildcard'], []],
    // Wildcard CNAMEs, followed inside the zone (through another wildcard too) and out of it.
    ['q.alias.example.org', 'A', NOERROR, ['q.alias.example.org 5 target.example.org', 'target.example.org 1 192.0.2.88'], []],
    ['q.alias.example.org', 'CNAME', NOERROR, ['q.alias.example.org 5 target.example.org'], []],
    ['q.chain.example.org', 'A', NOERROR, ['q.chain.example.org 5 z.cdn.example.org', 'z.cdn.example.org 1 192.0.2.77', 'z.cdn.example.org 1 192.0.2.79'], []],
    ['q.out.example.org', 'A', NOERROR, ['q.out.example.org 5 www.other.test'], []],
    ['q.loop.example.org', 'A', NOERROR, ['q.loop.example.org 5 again.loop.example.org', 'again.loop.example.org 5 again.loop.example.org'], []],
  ];
  for (const [name, type, rcode, answer, authority] of cases) {
    const r = ask(handler, query(name, type))!;
    t.equal(r.rcode, rcode, `${name} ${type}: rcode`);
    t.ok(r.aa, `${name} ${type}: AA`);
    t.same(rrs(r.answers), answer, `${name} ${type}: answer`);
    t.same(r.authorities.map((x: any) => `${x.name} ${x.type}`), authority, `${name} ${type}: authority`);
  }
});

t.test('a CNAME target is answered by its wildcard, or ends the chain as a negative answer or referral', async (t) => {
  // RFC 4592 §3.3.1 applies to a CNAME target as to the name asked (RFC 1034 §4.3.2 step 3a);
  // where no wildcard answers it, the chain ends as the target does (RFC 2308 §3, RFC 6604 §3).
  const chains = compileText(`zone: example.com
ttl: 300
soa: { mname: ns1.example.com, rname: hostmaster.example.com, minimum: 60 }
nameservers:
  ns1.example.com: [192.0.2.1]
records:
  "*.cdn": { A: [192.0.2.77] }
  host.cdn: { A: [192.0.2.78] }
  deep.x.cdn: { A: [192.0.2.76] }
  "*.dead": { CNAME: gone.example.com. }
  "*.ref": { CNAME: host.sub.example.com. }
  "a.*.ent": { TXT: ["below an empty wildcard"] }
  tocdn: { CNAME: foo.cdn.example.com. }
  toblocked: { CNAME: y.x.cdn.example.com. }
  toblocking: { CNAME: x.cdn.example.com. }
  tohost: { CNAME: z.host.cdn.example.com. }
  todead: { CNAME: q.dead.example.com. }
  toempty: { CNAME: q.ent.example.com. }
  sub: { NS: [ns.sub.example.com.] }
  ns.sub: { A: [192.0.2.50] }
`);
  const SOA = ['example.com 6'];
  // [name, type, rcode, AA, answer, authority (owner type)]
  const cases: [string, string, number, boolean, string[], string[]][] = [
    // The target does not exist and *.cdn answers it, owned by the target.
    ['tocdn', 'A', NOERROR, true, ['tocdn.example.com 5 foo.cdn.example.com', 'foo.cdn.example.com 1 192.0.2.77'], []],
    // *.cdn answers the target but holds no MX: NODATA, the CNAME and the SOA.
    ['tocdn', 'MX', NOERROR, true, ['tocdn.example.com 5 foo.cdn.example.com'], SOA],
    // x.cdn is an empty non-terminal: it blocks *.cdn below it (NXDOMAIN) and is NODATA itself.
    ['toblocked', 'A', NXDOMAIN, true, ['toblocked.example.com 5 y.x.cdn.example.com'], SOA],
    ['toblocking', 'A', NOERROR, true, ['toblocking.example.com 5 x.cdn.example.com'], SOA],
    // host.cdn exists: below it no wildcard answers.
    ['tohost', 'A', NXDOMAIN, true, ['tohost.example.com 5 z.host.cdn.example.com'], SOA],
    // A synthesized CNAME to a missing name: NXDOMAIN, the whole chain with its synthesized owner.
    ['todead', 'A', NXDOMAIN, true, ['todead.example.com 5 q.dead.example.com', 'q.dead.example.com 5 gone.example.com'], SOA],
    ['q.dead', 'A', NXDOMAIN, true, ['q.dead.example.com 5 gone.example.com'], SOA],
    // RFC 4592 §4.9: the empty non-terminal wildcard *.ent answers the target with NODATA.
    ['toempty', 'TXT', NOERROR, true, ['toempty.example.com 5 q.ent.example.com'], SOA],
    // A synthesized CNAME into a delegation: the CNAME, authoritative, then the referral.
    ['q.ref', 'A', NOERROR, true, ['q.ref.example.com 5 host.sub.example.com'], ['sub.example.com 2']],
  ];
  const fast = new Handler(new Runtime(chains), fixedEnv(), {}, { prebuilt: true });
  const general = new Handler(new Runtime(chains), fixedEnv(), {}, { prebuilt: false });
  for (const [label, type, rcode, aa, answer, authority] of cases) {
    const name = `${label}.example.com`;
    const raw = fast.handle(query(name, type), { transport: 'udp', clientAddress: '192.0.2.1' })!;
    const r = decode(raw);
    t.equal(r.rcode, rcode, `${name} ${type}: rcode`);
    t.equal(r.aa, aa, `${name} ${type}: AA`);
    t.same(rrs(r.answers), answer, `${name} ${type}: answer`);
    t.same(r.authorities.map((x: any) => `${x.name} ${x.type}`), authority, `${name} ${type}: authority`);
    t.ok(raw.equals(general.handle(query(name, type), { transport: 'udp', clientAddress: '192.0.2.1' })!), `${name} ${type}: the general path gives the same bytes`);
  }
  t.ok(fast.answeredBy.prebuilt > 0, 'some of them from prebuilt bytes');
});

t.test('a wildcard does not match at or below a delegation: the referral comes first', async (t) => {
  for (const name of ['sub.example.org', 'x.sub.example.org', 'a.b.sub.example.org']) {
    const r = ask(handler, query(name, 'MX'))!;
    t.equal(r.rcode, NOERROR, name);
    t.notOk(r.aa, `${name}: a referral is not authoritative`);
    t.same(r.answers, [], `${name}: no synthesized MX`);
    t.same(r.authorities.map((x: any) => `${x.name} ${x.type}`), ['sub.example.org 2'], `${name}: NS of the cut`);
  }
});

t.test('the synthesized owner echoes the question letter case and compresses to it', async (t) => {
  const raw = handler.handle(query('FoO.Cdn.Example.ORG', 'A'), { transport: 'udp', clientAddress: '192.0.2.1' })!;
  const r = decode(raw);
  t.same(r.answers.map((x: any) => x.name), ['FoO.Cdn.Example.ORG', 'FoO.Cdn.Example.ORG'], 'owner read through the pointer');
  const question = 12;
  const firstAnswer = question + 'FoO.Cdn.Example.ORG'.length + 2 + 4;
  t.equal(raw.readUInt16BE(firstAnswer), 0xc000 | question, 'the owner is a pointer to the question name');
  t.equal(raw.length, firstAnswer + 2 * (2 + 10 + 4), 'both records take a 2-byte owner');
});

t.test('Pool, Group and Site Names as wildcards answer with the name asked as owner', async (t) => {
  const cases: [string, string, string[]][] = [
    ['front.shop.example.org', 'A', ['front.shop.example.org 1 192.0.2.10']],
    ['a.b.shop.example.org', 'AAAA', ['a.b.shop.example.org 28 2001:db8::10']],
    ['x.g.example.org', 'A', ['x.g.example.org 1 192.0.2.10']],
    ['paris.eu.example.org', 'A', ['paris.eu.example.org 1 192.0.2.30']],
    // A CNAME whose target a wildcard Pool Name answers.
    ['www.example.org', 'A', ['www.example.org 5 front.shop.example.org', 'front.shop.example.org 1 192.0.2.10']],
  ];
  for (const [name, type, answer] of cases) {
    const r = ask(handler, query(name, type))!;
    t.equal(r.rcode, NOERROR, `${name} ${type}`);
    t.same(rrs(r.answers), answer, `${name} ${type}: the policy's answer, owned by the name asked`);
    t.equal(r.answers.at(-1).ttl, 0, `${name}: dynamic_ttl`);
  }
  // The policy still decides: with site a down, the pool and group answer b.
  runtime.publishState(makeSnapshot(new Map([['example.org/a', { up: false }]]), true));
  t.same(rrs(ask(handler, query('other.shop.example.org'))!.answers), ['other.shop.example.org 1 192.0.2.20'], 'pool fails over');
  t.same(rrs(ask(handler, query('y.g.example.org'))!.answers), ['y.g.example.org 1 192.0.2.20'], 'group fails over');
  runtime.publishState(makeSnapshot(new Map(), true));
  const nodata = ask(handler, query('front.shop.example.org', 'MX'))!;
  t.equal(nodata.rcode, NOERROR, 'other types at a wildcard Pool Name: NODATA');
  t.same(nodata.answers, []);
  t.equal(nodata.authorities[0].type, 6, 'with the SOA');
});

t.test('names a wildcard answers are replayed from templates, unless a body name could compress differently', async (t) => {
  const { handler: h } = makeHandler(zones, fixedEnv());
  const ctx = { transport: 'udp' as const, clientAddress: '192.0.2.1' };
  const by = (name: string, type = 'A') => {
    const before = h.answeredBy.prebuilt;
    const r = decode(h.handle(query(name, type), ctx)!);
    return { prebuilt: h.answeredBy.prebuilt - before, answer: rrs(r.answers) };
  };
  t.same(by('foo.cdn.example.org'), { prebuilt: 1, answer: ['foo.cdn.example.org 1 192.0.2.77', 'foo.cdn.example.org 1 192.0.2.79'] });
  t.same(by('a.longer.name.cdn.example.org'), { prebuilt: 1, answer: ['a.longer.name.cdn.example.org 1 192.0.2.77', 'a.longer.name.cdn.example.org 1 192.0.2.79'] }, 'the same template, moved');
  t.same(by('front.shop.example.org'), { prebuilt: 1, answer: ['front.shop.example.org 1 192.0.2.10'] }, 'a wildcard Pool Name: the choice from a template');
  t.same(by('anything.example.org', 'MX'), { prebuilt: 1, answer: ['anything.example.org 15 mx.example.org'] }, 'mx exists: no question can share its label');
  // *.loop's target again.loop does not exist: the question again.loop compresses against it.
  t.same(by('again.loop.example.org').prebuilt, 0, 'again.loop: general path');
  t.same(by('q.loop.example.org').prebuilt, 0, 'q.loop: the same wildcard answer, general path');
  t.same(by('x.sub.example.org').prebuilt, 0, 'below a delegation: general path (a referral)');
});

t.test('explain shows the synthesized owner, as the answer carries it', async (t) => {
  const shop = explain(runtime, fixedEnv(), { name: 'front.shop.example.org', type: 'A' }) as any;
  t.equal(shop.rcode, 'NOERROR');
  t.same(shop.answer.map((r: any) => `${r.name} ${r.type} ${r.data}`), ['front.shop.example.org A 192.0.2.10'], 'the wildcard Pool Name answers with the name asked');
  const cdn = explain(runtime, fixedEnv(), { name: 'foo.cdn.example.org', type: 'A' }) as any;
  t.same(cdn.answer.map((r: any) => r.name), ['foo.cdn.example.org', 'foo.cdn.example.org'], 'static wildcard records too');
});

function problems(text: string): string[] {
  const loaded = parseZoneText(text, 'z.yaml');
  if ('problems' in loaded) return loaded.problems.map(formatProblem);
  return compileZoneFiles([loaded]).problems.map(formatProblem);
}

const BASE = `zone: example.org
soa: { mname: ns1.example.org, rname: hostmaster.example.org }
nameservers:
  ns1.example.org: [192.0.2.1]
`;

t.test('a wildcard that can never match is a zone error', async (t) => {
  const cases: [string, RegExp][] = [
    [BASE + 'records:\n  sub: { NS: ns.other.test. }\n  "*.sub": { A: 192.0.2.7 }\n', /^z\.yaml:7: records\["\*\.sub"\]: the wildcard \*\.sub\.example\.org is below a delegation and never matches/],
    [BASE + 'records:\n  sub: { NS: ns.other.test. }\n  "*.x.sub": { TXT: hi }\n', /^z\.yaml:7: records\["\*\.x\.sub"\]: the wildcard \*\.x\.sub\.example\.org is below a delegation and never matches/],
    [BASE + 'records:\n  "*": { NS: ns.other.test. }\n', /^z\.yaml:6: records\.\*: a wildcard cannot own NS/],
    [BASE + 'sites:\n  s: { addresses: [192.0.2.9] }\npool: { name: "*.sub" }\nrecords:\n  sub: { NS: ns.other.test. }\n', /^z\.yaml:\d+: pool\.name: \*\.sub\.example\.org is at or below a delegation$/],
  ];
  for (const [text, expected] of cases) {
    const p = problems(text);
    t.equal(p.length, 1, `one problem: ${p.join(' | ')}`);
    t.match(p[0] ?? '', expected);
  }
  t.same(problems(BASE + 'records:\n  "*": { TXT: hi }\n  "*.cdn": { A: 192.0.2.7 }\n  x.cdn: { A: 192.0.2.8 }\n'), [], 'wildcards that match are fine');
});

t.test('sitedns check reports a wildcard below a delegation and exits 1', async (t) => {
  const dir = tempZonesDir({ 'z.yaml': BASE + 'records:\n  sub: { NS: ns.other.test. }\n  "*.sub": { A: 192.0.2.7 }\n' });
  const run = spawnSync(process.execPath, ['dist/cli/index.js', 'check', dir], { encoding: 'utf8' });
  t.equal(run.status, 1);
  t.match(run.stderr, /z\.yaml:7: records\["\*\.sub"\]: the wildcard \*\.sub\.example\.org is below a delegation and never matches/);
  const good = spawnSync(process.execPath, ['dist/cli/index.js', 'check', new URL('./fixtures/wildcard.example.org.yaml', import.meta.url).pathname], { encoding: 'utf8' });
  t.equal(good.status, 0, good.stderr);
});
