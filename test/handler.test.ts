/**
 * Table-driven tests of the socket-free handler: every RFC behaviour docs/zones.md lists under "Answers".
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { makeSnapshot } from '../src/state/snapshot.js';
import { ask, compileText, decode, ecsOption, fixedEnv, makeHandler, query, TYPE } from './helpers/dns.js';

const SAMPLE = readFileSync(new URL('./fixtures/app.example.com.yaml', import.meta.url), 'utf8');
const zones = compileText(SAMPLE);
const { handler, runtime } = makeHandler(zones, fixedEnv());

const a = (d: ReturnType<typeof ask>) => d!.answers.map((r: any) => r.address ?? r.domain ?? r.exchange ?? r.data);

t.test('Pool, Group and Site Names answer a site with TTL 0 and AA', async (t) => {
  for (const [name, type, expected] of [
    ['app.example.com', 'A', ['203.0.113.10', '203.0.113.20', '198.51.100.30']],
    ['app.example.com', 'AAAA', ['2001:db8:b::10']],
    ['americas.app.example.com', 'A', ['203.0.113.10', '203.0.113.20']],
    ['europe.app.example.com', 'A', ['198.51.100.30', '203.0.113.20']],
    ['boston.app.example.com', 'A', ['203.0.113.10']],
    ['chicago.app.example.com', 'A', ['203.0.113.20']],
    ['geneva.app.example.com', 'A', ['198.51.100.30']],
  ] as const) {
    const r = ask(handler, query(name, type))!;
    t.equal(r.rcode, 0, `${name} ${type} NOERROR`);
    t.ok(r.aa, `${name} AA`);
    t.equal(r.answers.length, 1, `${name} one site`);
    t.ok((expected as readonly string[]).includes(r.answers[0].address), `${name} ${type} -> ${r.answers[0].address}`);
    t.equal(r.answers[0].ttl, 0, 'dynamic TTL 0');
  }
});

t.test('Site Name fails over to the next site of its group, in order, wrapping', async (t) => {
  const down = (...ids: string[]) => makeSnapshot(new Map(ids.map((id) => [`app.example.com/${id}`, { up: false, reason: 'test' }])), true);
  const cases: [string[], string, string][] = [
    [[], 'boston', '203.0.113.10'],
    [['boston'], 'boston', '203.0.113.20'],
    [['chicago'], 'chicago', '203.0.113.10'], // wraps to the start of americas
    [['geneva'], 'geneva', '203.0.113.20'],
    [['boston', 'chicago'], 'boston', '203.0.113.10'], // all down: the site itself (all_down: first)
  ];
  for (const [downSites, site, expected] of cases) {
    runtime.publishState(down(...downSites));
    const r = ask(handler, query(`${site}.app.example.com`))!;
    t.same(a(r), [expected], `${site} with [${downSites}] down -> ${expected}`);
  }
  runtime.publishState(down('boston'));
  t.same(a(ask(handler, query('boston.app.example.com', 'AAAA'))), ['2001:db8:b::10'], 'no site of the family up: all_down first (the site itself)');
  runtime.publishState(down());
});

t.test('Site Name of an up site without the family: NODATA with the SOA, on the general and the prebuilt path', async (t) => {
  runtime.publishState(makeSnapshot(new Map(), true));
  for (const site of ['chicago', 'geneva']) {
    const r = ask(handler, query(`${site}.app.example.com`, 'AAAA'))!;
    t.equal(r.rcode, 0, `${site} AAAA NOERROR`);
    t.same(a(r), [], `${site} is up and IPv4-only: no other site's IPv6 address`);
    t.equal(r.authorities[0]?.type, TYPE.SOA, 'NODATA carries the SOA');
  }
  runtime.publishState(makeSnapshot(new Map([['app.example.com/chicago', { up: false, reason: 'test' }]]), true));
  t.same(a(ask(handler, query('chicago.app.example.com', 'AAAA'))), ['2001:db8:b::10'], 'chicago down: the next site of its group with the family');
  runtime.publishState(makeSnapshot(new Map(), true));
});

t.test('Pool Name skips down sites and sites without the asked family', async (t) => {
  runtime.publishState(makeSnapshot(new Map([['app.example.com/boston', { up: false }]]), true));
  for (let i = 0; i < 20; i++) t.not(a(ask(handler, query('app.example.com')))[0], '203.0.113.10');
  const r6 = ask(handler, query('app.example.com', 'AAAA'))!;
  t.same(a(r6), ['2001:db8:b::10'], 'all_down: all still gives the only AAAA site');
  runtime.publishState(makeSnapshot(new Map([['app.example.com/boston', { up: true, utilization: 0.9 }], ['app.example.com/chicago', { up: true, utilization: 0.2 }], ['app.example.com/geneva', { up: true, utilization: 0.5 }]]), true));
  t.same(a(ask(handler, query('app.example.com'))), ['203.0.113.20'], 'least busy');
  runtime.publishState(makeSnapshot(new Map(), true));
});

t.test('header flags: AA, RA clear, RD and CD copied, ID echoed, question case kept', async (t) => {
  const r = ask(handler, query('BoStOn.App.Example.Com', 'A', { id: 0xbeef, rd: false, cd: true }))!;
  t.equal(r.id, 0xbeef);
  t.ok(r.qr);
  t.ok(r.aa);
  t.notOk(r.ra, 'RA clear');
  t.notOk(r.rd, 'RD copied (clear)');
  t.ok(r.cd, 'CD copied');
  t.equal(r.questions[0].name, 'BoStOn.App.Example.Com', 'question echoed with its case');
  t.ok(ask(handler, query('boston.app.example.com', 'A', { rd: true }))!.rd, 'RD copied (set)');
});

t.test('negative answers carry the SOA with TTL min(SOA TTL, minimum)', async (t) => {
  const nx = ask(handler, query('nope.app.example.com'))!;
  t.equal(nx.rcode, 3, 'NXDOMAIN');
  t.ok(nx.aa);
  t.equal(nx.authorities[0].type, TYPE.SOA);
  t.equal(nx.authorities[0].ttl, 60);
  t.equal(nx.authorities[0].primary, 'ns1.app.example.com');
  const nodata = ask(handler, query('mail.app.example.com', 'AAAA'))!;
  t.equal(nodata.rcode, 0, 'NODATA is NOERROR');
  t.equal(nodata.answers.length, 0);
  t.equal(nodata.authorities[0].type, TYPE.SOA);
  const dynNodata = ask(handler, query('app.example.com', 'SRV'))!;
  t.equal(dynNodata.rcode, 0);
  t.equal(dynNodata.answers.length, 0);
  t.equal(dynNodata.authorities.length, 1);
  const ent = ask(handler, query('legacy.app.example.com', 'A'))!;
  t.equal(ent.rcode, 0, 'a delegation point is not NXDOMAIN');
});

t.test('REFUSED outside our zones, NOTIMP for other opcodes, FORMERR for bad questions', async (t) => {
  const refused = ask(handler, query('example.org'))!;
  t.equal(refused.rcode, 5);
  t.notOk(refused.aa);
  t.equal(ask(handler, query('app.example.com', 'A', { opcode: 2 }))!.rcode, 4, 'STATUS -> NOTIMP');
  t.equal(ask(handler, query('app.example.com', 'A', { opcode: 5 }))!.rcode, 4, 'UPDATE -> NOTIMP');
  const two = query('app.example.com');
  two.writeUInt16BE(2, 4);
  t.equal(ask(handler, two)!.rcode, 1, 'QDCOUNT 2 -> FORMERR');
  const zero = query('app.example.com').subarray(0, 12);
  zero.writeUInt16BE(0, 4);
  t.equal(ask(handler, Buffer.from(zero))!.rcode, 1, 'QDCOUNT 0 -> FORMERR');
  const truncated = query('app.example.com').subarray(0, 20);
  t.equal(ask(handler, Buffer.from(truncated))!.rcode, 1, 'cut question -> FORMERR');
  const badLabel = query('app.example.com');
  badLabel[12] = 0x50;
  t.equal(ask(handler, badLabel)!.rcode, 1, 'label length 0x50 -> FORMERR');
  const pointer = Buffer.concat([query('x').subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
  t.equal(ask(handler, pointer)!.rcode, 1, 'compression pointer loop in the question -> FORMERR');
  t.equal(ask(handler, query('app.example.com', 'AXFR'))!.rcode, 5, 'AXFR refused');
  t.equal(ask(handler, query('app.example.com', 'A', { qclass: 3 }))!.rcode, 5, 'class CH refused');
});

t.test('no reply to responses (QR=1) or to packets under 12 bytes', async (t) => {
  const response = query('app.example.com');
  response.writeUInt16BE(0x8100, 2);
  t.equal(handler.handle(response, { transport: 'udp', clientAddress: '192.0.2.1' }), null);
  for (let n = 0; n < 12; n++) t.equal(handler.handle(Buffer.alloc(n), { transport: 'udp', clientAddress: '192.0.2.1' }), null, `${n} bytes`);
});

t.test('apex SOA and NS with glue', async (t) => {
  const soa = ask(handler, query('app.example.com', 'SOA'))!;
  t.equal(soa.answers[0].type, TYPE.SOA);
  t.equal(soa.answers[0].ttl, 300);
  t.equal(soa.answers[0].email ?? soa.answers[0].admin, 'hostmaster.example.com');
  const ns = ask(handler, query('app.example.com', 'NS'))!;
  t.same(ns.answers.map((r: any) => r.ns).sort(), ['ns1.app.example.com', 'ns2.app.example.com']);
  t.same(ns.additionals.map((r: any) => r.address).sort(), ['192.0.2.53', '198.51.100.53']);
  t.same(a(ask(handler, query('ns1.app.example.com'))), ['192.0.2.53'], 'glue name answers itself');
});

t.test('CNAME for any type, chased in-zone (into a Pool Name too)', async (t) => {
  const r = ask(handler, query('www.app.example.com', 'A'))!;
  t.equal(r.answers[0].type, TYPE.CNAME);
  t.equal(r.answers[0].domain, 'app.example.com');
  t.equal(r.answers[1].type, TYPE.A);
  t.equal(r.answers[1].name, 'app.example.com');
  const mx = ask(handler, query('www.app.example.com', 'MX'))!;
  t.same(mx.answers.map((x: any) => x.type), [TYPE.CNAME, TYPE.MX], 'chased to the apex MX');
  const txt = ask(handler, query('www.app.example.com', 'CNAME'))!;
  t.same(txt.answers.map((x: any) => x.type), [TYPE.CNAME]);
});

t.test('a delegation is a referral without AA, with glue', async (t) => {
  for (const name of ['legacy.app.example.com', 'deep.x.legacy.app.example.com']) {
    const r = ask(handler, query(name, 'A'))!;
    t.equal(r.rcode, 0);
    t.notOk(r.aa, 'no AA');
    t.equal(r.answers.length, 0);
    t.equal(r.authorities[0].type, TYPE.NS);
    t.equal(r.authorities[0].ns, 'ns.legacy.app.example.com');
    t.same(r.additionals.map((x: any) => x.address), ['192.0.2.99']);
  }
});

t.test('ANY is answered with one RRset (RFC 8482)', async (t) => {
  const r = ask(handler, query('app.example.com', 'ANY'))!;
  t.equal(r.answers.length, 1);
  t.equal(r.answers[0].type, TYPE.A);
  const m = ask(handler, query('mail.app.example.com', 'ANY'))!;
  t.same(m.answers.map((x: any) => x.type), [TYPE.A]);
});

t.test('EDNS: OPT on every reply, 1232 advertised, BADVERS, DO echoed, options not echoed', async (t) => {
  const edns = { udpSize: 4096, do: true, options: Buffer.from([0xfd, 0xe9, 0, 2, 1, 2]) };
  for (const [name, type, opcode] of [['app.example.com', 'A', 0], ['nope.app.example.com', 'A', 0], ['example.org', 'A', 0]] as const) {
    const r = ask(handler, query(name, type, { edns, opcode }))!;
    t.ok(r.opt, `${name}: OPT present`);
    t.equal(r.opt.class, 1232, 'advertises 1232');
    t.equal(r.opt.doFlag, true, 'DO echoed');
    t.equal(r.raw.readUInt16BE(r.raw.length - 2), 0, 'no options echoed');
  }
  const formerr = query('app.example.com', 'A', { edns });
  formerr.writeUInt16BE(2, 4);
  const f = ask(handler, formerr)!;
  t.equal(f.rcode, 1);
  t.ok(f.opt, 'FORMERR carries OPT');
  const noDo = ask(handler, query('app.example.com', 'A', { edns: { udpSize: 1232 } }))!;
  t.equal(noDo.opt.doFlag, false);
  const bad = ask(handler, query('app.example.com', 'A', { edns: { version: 1 } }))!;
  t.equal(bad.extendedRcode, 16, 'BADVERS');
  t.equal(bad.answers.length, 0);
  t.ok(bad.opt);
  t.notOk(ask(handler, query('app.example.com'))!.opt, 'no OPT without EDNS');
  const badOpt = query('app.example.com', 'A', { edns: { options: Buffer.from([0, 8, 0, 1]) } });
  badOpt.writeUInt16BE(2, badOpt.length - 6 - 2 + 0); // corrupt option length past RDATA
  t.equal(ask(handler, badOpt)!.rcode, 1, 'malformed OPT -> FORMERR');
  const twoOpts = Buffer.concat([query('app.example.com', 'A', { edns: {} }), Buffer.from([0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0])]);
  twoOpts.writeUInt16BE(2, 10);
  t.equal(ask(handler, twoOpts)!.rcode, 1, 'two OPTs -> FORMERR');
});

t.test('ECS: malformed is FORMERR; valid is echoed with a scope', async (t) => {
  const ok = ask(handler, query('app.example.com', 'A', { edns: { options: ecsOption('198.51.100.0', 24) } }))!;
  t.equal(ok.rcode, 0);
  const opt = ok.raw.subarray(ok.raw.length - 4 - 3);
  t.equal(ok.raw.readUInt16BE(ok.raw.length - 7 - 4), 8, 'ECS option code echoed');
  t.equal(opt.length, 7);
  const badScope = ask(handler, query('app.example.com', 'A', { edns: { options: ecsOption('198.51.100.0', 24, 8) } }))!;
  t.equal(badScope.rcode, 1, 'scope != 0 in a query');
  const extraBits = ask(handler, query('app.example.com', 'A', { edns: { options: ecsOption('198.51.100.1', 24) } }))!;
  t.equal(extraBits.rcode, 0, 'host bits past /24 are not sent (address truncated to 3 bytes)');
  const badBits = ecsOption('198.51.100.0', 23);
  badBits[10] = 0x65; // 198.51.101: bit beyond /23 set
  t.equal(ask(handler, query('app.example.com', 'A', { edns: { options: badBits } }))!.rcode, 1, 'bits beyond the prefix');
  const badFamily = ecsOption('198.51.100.0', 24);
  badFamily.writeUInt16BE(3, 4);
  t.equal(ask(handler, query('app.example.com', 'A', { edns: { options: badFamily } }))!.rcode, 1, 'unknown family');
});

t.test('UDP size: 512 without EDNS, min(client, 1232) with; TC with whole RRsets; TCP gets all', async (t) => {
  const records = Array.from({ length: 60 }, (_, i) => `"txt-${i}-${'x'.repeat(20)}"`).join(', ');
  const big = compileText(`zone: big.test
soa: { mname: ns1.big.test, rname: h.big.test }
nameservers: { ns1.big.test: [192.0.2.1] }
records:
  many: { TXT: [${records}] }
  "@": { A: [${Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`).join(', ')}] }
  long: { TXT: "${'y'.repeat(600)}" }
`);
  const { handler: h } = makeHandler(big);
  const plain = h.handle(query('many.big.test', 'TXT'), { transport: 'udp', clientAddress: '127.0.0.1' })!;
  t.ok(plain.length <= 512, `UDP no EDNS: ${plain.length} <= 512`);
  const d = decode(plain);
  t.ok(d.tc, 'TC set');
  t.equal(d.answers.length, 0, 'the TXT RRset does not fit whole, so none of it is sent');
  const e = h.handle(query('@.big.test'.replace('@.', ''), 'A', { edns: { udpSize: 4096 } }), { transport: 'udp', clientAddress: '127.0.0.1' })!;
  t.notOk(decode(e).tc, '40 A records fit in 1232');
  const small = h.handle(query('big.test', 'A', { edns: { udpSize: 600 } }), { transport: 'udp', clientAddress: '127.0.0.1' })!;
  t.ok(small.length <= 600);
  const sd = decode(small);
  t.ok(sd.opt, 'truncated reply keeps its OPT');
  const over = h.handle(query('many.big.test', 'TXT', { edns: { udpSize: 65000 } }), { transport: 'udp', clientAddress: '127.0.0.1' })!;
  t.ok(over.length <= 1232, 'capped at 1232 even when the client offers more');
  t.ok(decode(over).tc);
  const tcp = decode(h.handle(query('many.big.test', 'TXT'), { transport: 'tcp', clientAddress: '127.0.0.1' })!);
  t.notOk(tcp.tc);
  t.equal(tcp.answers.length, 60, 'TCP gets it all');
  const long = decode(h.handle(query('long.big.test', 'TXT', { edns: {} }), { transport: 'udp', clientAddress: '127.0.0.1' })!);
  const rdata = long.raw;
  t.ok(long.answers.length === 1);
  // 600 bytes -> strings of 255, 255, 90
  const idx = rdata.indexOf(Buffer.from([255, 0x79, 0x79]));
  t.ok(idx > 0, 'first string is 255 bytes');
  t.equal(rdata[idx + 256], 255, 'second string is 255 bytes');
  t.equal(rdata[idx + 512], 90, 'third string holds the rest');
});
