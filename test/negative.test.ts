/**
 * Table tests of the socket-free handler: where a CNAME chain ends inside the zone (RFC 1034
 * §4.3.2, RFC 2308, RFC 6604), DS at a zone cut (RFC 4035 §3.1.4.1), the flags of NOTIMP and the
 * rcode BADVERS is counted under. test/e2e/negative-knot.test.ts compares the same cases with knot.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { QueryMetrics } from '../src/admin/query-metrics.js';
import { Handler } from '../src/server/handler.js';
import { Runtime } from '../src/state/runtime.js';
import { renderMetrics } from '../src/metrics/definitions.js';
import { compileText, decode, makeHandler, query, TYPE } from './helpers/dns.js';
import { memoryLogger, metric, parseMetrics } from './helpers/metrics.js';

const NEGATIVE_ZONE = readFileSync(new URL('./fixtures/negative.example.net.yaml', import.meta.url), 'utf8');

const zones = compileText(NEGATIVE_ZONE);
const { handler } = makeHandler(zones);

/** DS (RFC 4034): dns2 has no name for it. */
const DS = 43;

interface Row {
  name: string;
  type: string | number;
  rcode: number;
  aa: boolean;
  /** Owner/type of each record, per section. */
  answer: string[];
  authority: string[];
  additional: string[];
}

const rr = (r: any) => `${r.name} ${Object.keys(TYPE).find((k) => TYPE[k] === r.type)}`;

// knot 3.2 gives these same sections for the same zone (checked by test/e2e/negative-knot.test.ts).
const ROWS: Row[] = [
  // RFC 2308 §3: NODATA after a CNAME is the CNAME plus the SOA.
  { name: 'www', type: 'MX', rcode: 0, aa: true, answer: ['www.example.net CNAME'], authority: ['example.net SOA'], additional: [] },
  { name: 'toent', type: 'A', rcode: 0, aa: true, answer: ['toent.example.net CNAME'], authority: ['example.net SOA'], additional: [] },
  { name: 'topool', type: 'MX', rcode: 0, aa: true, answer: ['topool.example.net CNAME'], authority: ['example.net SOA'], additional: [] },
  // A Pool Name without an address of the family: NODATA, the SOA after the CNAME too.
  { name: 'topool', type: 'AAAA', rcode: 0, aa: true, answer: ['topool.example.net CNAME'], authority: ['example.net SOA'], additional: [] },
  // RFC 6604 §3: NXDOMAIN is about the last name of the chain; the chain stays in the answer.
  { name: 'dangling', type: 'A', rcode: 3, aa: true, answer: ['dangling.example.net CNAME'], authority: ['example.net SOA'], additional: [] },
  { name: 'chain', type: 'TXT', rcode: 3, aa: true, answer: ['chain.example.net CNAME', 'dangling.example.net CNAME'], authority: ['example.net SOA'], additional: [] },
  // RFC 1034 §4.3.2 step 3b after 3a: the CNAME, then the referral; AA speaks for the CNAME.
  { name: 'tosub', type: 'A', rcode: 0, aa: true, answer: ['tosub.example.net CNAME'], authority: ['sub.example.net NS'], additional: ['ns.sub.example.net A'] },
  { name: 'tocut', type: 'A', rcode: 0, aa: true, answer: ['tocut.example.net CNAME'], authority: ['sub.example.net NS'], additional: ['ns.sub.example.net A'] },
  { name: 'tosub', type: DS, rcode: 0, aa: true, answer: ['tosub.example.net CNAME'], authority: ['sub.example.net NS'], additional: ['ns.sub.example.net A'] },
  // RFC 4035 §3.1.4.1: DS at the cut is the parent's, authoritative NODATA; below the cut, a referral.
  { name: 'sub', type: DS, rcode: 0, aa: true, answer: [], authority: ['example.net SOA'], additional: [] },
  { name: 'tocut', type: DS, rcode: 0, aa: true, answer: ['tocut.example.net CNAME'], authority: ['example.net SOA'], additional: [] },
  { name: 'x.sub', type: DS, rcode: 0, aa: false, answer: [], authority: ['sub.example.net NS'], additional: ['ns.sub.example.net A'] },
  { name: 'sub', type: 'A', rcode: 0, aa: false, answer: [], authority: ['sub.example.net NS'], additional: ['ns.sub.example.net A'] },
  // Unchanged: a chain that leaves the zone, and a chain that ends in an answer.
  { name: 'out', type: 'A', rcode: 0, aa: true, answer: ['out.example.net CNAME'], authority: [], additional: [] },
  { name: 'www', type: 'A', rcode: 0, aa: true, answer: ['www.example.net CNAME', 'example.net A'], authority: [], additional: [] },
];

t.test('where an in-zone CNAME chain ends decides the answer', async (t) => {
  for (const row of ROWS) {
    for (const transport of ['udp', 'tcp'] as const) {
      const out = handler.handle(query(`${row.name}.example.net`, row.type, { edns: {} }), { transport, clientAddress: '192.0.2.9' });
      const d = decode(out!);
      const what = `${row.name} ${row.type} (${transport})`;
      t.equal(d.rcode, row.rcode, `${what}: rcode`);
      t.equal(d.aa, row.aa, `${what}: AA`);
      t.same(d.answers.map(rr), row.answer, `${what}: answer`);
      t.same(d.authorities.map(rr), row.authority, `${what}: authority`);
      t.same(d.additionals.map(rr), row.additional, `${what}: additional`);
    }
  }
});

t.test('the negative SOA after a CNAME has the negative TTL (RFC 2308 §5)', async (t) => {
  const d = decode(handler.handle(query('dangling.example.net', 'A'), { transport: 'udp', clientAddress: '192.0.2.9' })!);
  t.equal(d.answers[0].ttl, 600, 'the CNAME keeps its TTL');
  t.equal(d.authorities[0].ttl, 30, 'SOA TTL min(TTL, minimum)');
});

t.test('a served zone inside another keeps the names below it from the outer zone', async (t) => {
  const inner = `zone: sub2.example.net
soa: { mname: ns1.example.net, rname: hostmaster.example.net }
nameservers: { ns1.example.net: [192.0.2.1] }
records:
  host: { A: [192.0.2.60] }
`;
  const outer = NEGATIVE_ZONE.replace('records:\n', 'records:\n  toinner: { CNAME: host.sub2.example.net. }\n');
  const { compileZoneFiles, makeZoneSet } = await import('../src/config/compile.js');
  const { parseZoneText } = await import('../src/config/load.js');
  const files = [parseZoneText(outer, 'zones/outer.yaml'), parseZoneText(inner, 'zones/inner.yaml')] as any[];
  // One compile, two sets sharing the outer zone, as a reload that adds the inner file keeps it.
  const [outerZone, innerZone] = compileZoneFiles(files).zones;
  const alone = makeZoneSet([outerZone]);
  const both = makeZoneSet([outerZone, innerZone]);
  t.ok(both.nested, 'the set knows a zone lies inside another');
  t.notOk(alone.nested);
  const ask = (set: typeof both) => decode(makeHandler(set).handler.handle(query('toinner.example.net', 'A'), { transport: 'udp', clientAddress: '192.0.2.9' })!);
  // The outer zone alone: the target is its own, and missing.
  t.equal(ask(alone).rcode, 3, 'NXDOMAIN while the inner zone is not served');
  // With the inner zone served, the target is not the outer zone's to deny (and the answer just
  // given for the outer zone alone is not reused): the client's resolver follows the CNAME.
  const d = ask(both);
  t.equal(d.rcode, 0, 'NOERROR once the inner zone is served');
  t.same(d.answers.map(rr), ['toinner.example.net CNAME']);
  t.same(d.authorities, []);
});

t.test('NOTIMP for another opcode copies RD only; QUERY answers copy RD and CD', async (t) => {
  for (const opcode of [1, 2, 5, 15]) {
    for (const rd of [false, true]) {
      const d = decode(handler.handle(query('www.example.net', 'A', { opcode, rd, cd: true }), { transport: 'udp', clientAddress: '192.0.2.9' })!);
      t.equal(d.rcode, 4, `opcode ${opcode}: NOTIMP`);
      t.equal(d.opcode, opcode, 'opcode copied');
      t.equal(d.rd, rd, `opcode ${opcode}: RD copied (${rd})`);
      t.notOk(d.cd, `opcode ${opcode}: CD not copied`);
    }
  }
  const q = decode(handler.handle(query('www.example.net', 'A', { rd: true, cd: true }), { transport: 'udp', clientAddress: '192.0.2.9' })!);
  t.ok(q.rd && q.cd, 'QUERY: RD and CD copied');
  const refused = decode(handler.handle(query('example.org', 'A', { cd: true }), { transport: 'udp', clientAddress: '192.0.2.9' })!);
  t.ok(refused.cd, 'QUERY REFUSED: CD copied');
});

t.test('BADVERS is counted as rcode="BADVERS" in /metrics and the query log, not NOERROR', async (t) => {
  const { logger, lines } = memoryLogger();
  const metrics = new QueryMetrics({ logger, sample: 1 }, 1);
  t.teardown(() => metrics.close());
  const h = new Handler(new Runtime(zones), undefined, metrics);
  const before = parseMetrics(await renderMetrics());
  const d = decode(h.handle(query('www.example.net', 'A', { edns: { version: 1 } }), { transport: 'udp', clientAddress: '192.0.2.9' })!);
  t.equal(d.extendedRcode, 16, 'the reply is BADVERS');
  h.handle(query('www.example.net', 'A', { edns: {} }), { transport: 'udp', clientAddress: '192.0.2.9' });
  const after = parseMetrics(await renderMetrics());
  const delta = (labels: Record<string, string>) => metric(after, 'sitedns_queries_total', labels) - metric(before, 'sitedns_queries_total', labels);
  t.equal(delta({ zone: '(none)', qtype: 'A', rcode: 'BADVERS', transport: 'udp' }), 1, 'one BADVERS (answered before any zone is looked up)');
  t.equal(delta({ zone: 'example.net', rcode: 'NOERROR' }), 1, 'one NOERROR: the next query is not BADVERS');
  t.same(lines.filter((l) => l.msg === 'query').map((l) => l.rcode), ['BADVERS', 'NOERROR'], 'query log');
});

t.test('explain tells the same ends of a CNAME chain, and DS at a cut', async (t) => {
  const { explain } = await import('../src/admin/explain.js');
  const runtime = new Runtime(zones);
  const h = new Handler(runtime);
  const explained = (name: string, type: string) => explain(runtime, h.env, { name: `${name}.example.net`, type }) as any;
  const dangling = explained('dangling', 'A');
  t.equal(dangling.rcode, 'NXDOMAIN');
  t.same(dangling.answer.map((r: any) => r.type), ['CNAME']);
  t.match(dangling.why, /^CNAME to gone\.example\.net: no such name/);
  const nodata = explained('www', 'MX');
  t.equal(nodata.rcode, 'NOERROR');
  t.same(nodata.authority.map((r: any) => r.type), ['SOA']);
  t.match(nodata.why, /^CNAME to example\.net: .*NODATA/);
  const referral = explained('tosub', 'A');
  t.equal(referral.authoritative, true, 'AA for the CNAME part');
  t.same(referral.answer.map((r: any) => r.type), ['CNAME']);
  t.same(referral.authority.map((r: any) => r.type), ['NS']);
  t.match(referral.why, /^CNAME to host\.sub\.example\.net: delegated/);
  const plain = explained('x.sub', 'A');
  t.equal(plain.authoritative, false, 'a plain referral has no AA');
  t.same(plain.answer, []);
  const ds = explained('sub', 'DS');
  t.equal(ds.rcode, 'NOERROR');
  t.same(ds.authority.map((r: any) => r.type), ['SOA'], 'DS at the cut: NODATA');
});
