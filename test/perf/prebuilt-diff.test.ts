/**
 * Differential test: the prebuilt fast path must answer byte for byte what the general
 * encoder (dns/response.ts) answers, over many names, types, EDNS variants, flags, letter cases,
 * transports and site states. Both handlers get the same deterministic random source and are
 * called in lockstep, so their policies choose alike.
 */
import t from 'tap';
import { ServerCookies } from '../../src/dns/cookies.js';
import { readFileSync } from 'node:fs';
import { compileZoneFiles, makeZoneSet } from '../../src/config/compile.js';
import { formatProblem } from '../../src/config/errors.js';
import { parseZoneText } from '../../src/config/load.js';
import { COOKIE_PROVEN } from '../../src/dns/reply-options.js';
import { Handler } from '../../src/server/handler.js';
import { MAX_DENIAL_TEMPLATES, tableOnQueryPath } from '../../src/server/fast-path.js';
import { nsec3Hash } from '../../src/model/signatures.js';
import { PeerContext } from '../../src/server/request-context.js';
import { Runtime } from '../../src/state/runtime.js';
import { makeSnapshot } from '../../src/state/snapshot.js';
import type { ZoneSet } from '../../src/model/zone-model.js';
import { decode, ecsOption, fixedEnv, query } from '../helpers/dns.js';
import { makeKeySet } from '../helpers/dnssec.js';

const SAMPLE = readFileSync(new URL('../fixtures/app.example.com.yaml', import.meta.url), 'utf8');

// A parent zone whose SOA names live inside it (so NXDOMAIN bodies compress against questions
// like x.hostmaster.example.net), a child zone below it, delegations, CNAME chains (ending in an
// answer, NODATA, NXDOMAIN, a referral, another zone), ENTs, big RRsets that truncate, and pools
// with sorry addresses and every all_down.
const PARENT = `zone: example.net
ttl: 600
soa: { mname: ns1.example.net, rname: hostmaster.example.net, minimum: 30 }
nameservers:
  ns1.example.net: [192.0.2.1, "2001:db8::1"]
  ns2.other.test: [192.0.2.2]
sites:
  a: { addresses: [192.0.2.10, 192.0.2.11, "2001:db8::a"] }
  b: { addresses: [192.0.2.20] }
  c: { addresses: ["2001:db8::c"], all_down: sorry }
groups:
  g1: [a, b]
  g2: { sites: [c, a], all_down: nodata }
  g3: { sites: [b], all_down: servfail }
pool: { name: www, policy: least-busy, sorry: [192.0.2.99, "2001:db8::99"], all_down: sorry }
records:
  "@": { TXT: ["hello", "${'z'.repeat(300)}"], MX: ["10 mx.example.net.", "20 mx.other.test."] }
  mx: { A: [192.0.2.30] }
  alias: { CNAME: www.example.net. }
  alias2: { CNAME: alias.example.net. }
  out: { CNAME: elsewhere.other.test. }
  deep.ent.chain: { A: [192.0.2.40] }
  many: { TXT: [${Array.from({ length: 40 }, (_, i) => `"t${i}-${'x'.repeat(20)}"`).join(', ')}] }
  wide: { A: [${Array.from({ length: 40 }, (_, i) => `192.0.2.${100 + i}`).join(', ')}] }
  sub: { NS: [ns.sub.example.net., ns.other.test.] }
  ns.sub: { A: [192.0.2.50] }
  srv._tcp: { SRV: ["0 5 443 mx.example.net."] }
  caa: { CAA: ['0 issue "ca.test"'] }
  dangling: { CNAME: gone.example.net. }
  dangling2: { CNAME: dangling.example.net. }
  tosub: { CNAME: host.sub.example.net. }
  tocut: { CNAME: sub.example.net. }
  toent: { CNAME: ent.chain.example.net. }
  tochild: { CNAME: gone.child.example.net. }
`;
const CHILD = `zone: child.example.net
soa: { mname: ns.child.example.net, rname: admin.example.org, minimum: 5 }
nameservers: { ns.child.example.net: [192.0.2.60] }
sites:
  x: { addresses: [192.0.2.70] }
  y: { addresses: [192.0.2.71] }
pool: { name: "@", policy: first, answers: 2 }
records:
  www: { CNAME: child.example.net. }
`;

function compileAll(texts: Record<string, string>, signed = false): ZoneSet {
  const files = Object.entries(texts).map(([file, text]) => {
    const loaded = parseZoneText(text, file);
    if ('problems' in loaded) throw new Error(loaded.problems.map(formatProblem).join('\n'));
    return loaded;
  });
  const compiled = compileZoneFiles(files, signed ? { keysFor: (zone) => makeKeySet(zone), now: () => Date.now() } : undefined);
  if (compiled.problems.length) throw new Error(compiled.problems.map(formatProblem).join('\n'));
  return makeZoneSet(compiled.zones);
}

// Wildcards (RFC 4592): static, CNAME, empty non-terminal, and Pool/Group/Site Names.
const WILD = readFileSync(new URL('../fixtures/wildcard.example.org.yaml', import.meta.url), 'utf8');

const zones = compileAll({ 'zones/app.yaml': SAMPLE, 'zones/net.yaml': PARENT, 'zones/child.yaml': CHILD, 'zones/wild.yaml': WILD });

function mixCase(name: string, seed: number): string {
  return [...name].map((c, i) => ((i + seed) % 3 === 0 ? c.toUpperCase() : c)).join('');
}

const names = new Set<string>();
for (const zone of zones.zones.values()) {
  for (const n of zone.nodes.keys()) names.add(n);
  for (const n of zone.emptyNonTerminals) names.add(n);
  names.add(zone.origin);
  for (const prefix of ['nope', 'a.b', 'hostmaster', 'x.hostmaster', 'ns1', 'x.ns1', 'x.ns.sub', 'y.sub', 'zz.child']) names.add(`${prefix}.${zone.origin}`);
}
names.add('example.com');
names.add('not.served.test');
names.add('');
names.add('x.deep.ent.chain.example.net');
names.add('www.child.example.net');
// Names wildcards answer (each owner synthesized from the question), and names they must not.
for (const prefix of ['foo.cdn', 'a.b.cdn', 'x.host.cdn', 'y.x.cdn', 'q.alias', 'q.chain', 'q.out', 'q.loop', 'again.loop', 'front.shop', 'a.b.shop', 'x.g', 'paris.eu', 'q.ent', 'x.mx']) {
  names.add(`${prefix}.example.org`);
}

const TYPES = ['A', 'AAAA', 'ANY', 'MX', 'TXT', 'NS', 'SOA', 'CNAME', 'SRV', 'CAA', 'PTR', 43 /* DS */, 999, 'AXFR', 41];
type Edns = Parameters<typeof query>[2]['edns'];
const EDNS: Edns[] = [
  false,
  {},
  { udpSize: 512 },
  { udpSize: 600 },
  { udpSize: 4096, do: true },
  { udpSize: 100 },
  { version: 1 },
  { options: Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]) }, // a client cookie: not echoed
  { options: ecsOption('198.51.100.7', 24) },
  // ECS on the fast path (echoed, scope 0) unless the answer depends on the client; every
  // malformed form must still reach the general path's FORMERR.
  { options: ecsOption('2001:db8:1200::', 56) },
  { options: ecsOption('198.51.100.0', 22), udpSize: 512 },
  { options: ecsOption('0.0.0.0', 0) },
  { options: Buffer.concat([Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]), ecsOption('203.0.113.0', 24)]) },
  { options: ecsOption('198.51.100.7', 20) }, // bits beyond the prefix: FORMERR
  { options: ecsOption('198.51.100.7', 24, 8) }, // scope set in a query: FORMERR
  { options: Buffer.concat([ecsOption('198.51.100.7', 24), ecsOption('198.51.100.7', 24)]) }, // two: FORMERR
  { options: Buffer.from([0, 8, 0, 3, 0, 1, 24]) }, // too short: FORMERR
];

const STATES = [
  makeSnapshot(new Map(), false),
  makeSnapshot(new Map([['example.net/a', { up: false }], ['app.example.com/boston', { up: false }]]), true),
  makeSnapshot(new Map([['example.net/a', { up: false }], ['example.net/b', { up: false }], ['example.net/c', { up: false }], ['child.example.net/x', { up: false }]]), true),
  makeSnapshot(new Map([['app.example.com/boston', { up: true, utilization: 0.9 }], ['app.example.com/chicago', { up: true, utilization: 0.1 }], ['example.org/a', { up: false }]]), true),
];

/**
 * Asks `fast` and `slow` every query `queries` yields, over UDP and TCP from one client; fails on
 * the first 10 replies that differ.
 */
function compare(t: Tap.Test, fast: Handler, slow: Handler, queries: () => Generator<{ label: string; q: Buffer }>): { compared: number; mismatches: number } {
  const ctx = new PeerContext('udp');
  ctx.setText('203.0.113.9');
  let compared = 0;
  let mismatches = 0;
  for (const { label, q } of queries()) {
    for (const transport of ['udp', 'tcp'] as const) {
      ctx.transport = transport;
      const a = fast.handle(q, ctx);
      const b = slow.handle(q, ctx);
      compared++;
      if (a === null || b === null ? a !== b : !a.equals(b)) {
        mismatches++;
        if (mismatches <= 10) t.fail(`${label} ${transport}: fast ${a?.toString('hex')} != general ${b?.toString('hex')}`);
      }
    }
  }
  return { compared, mismatches };
}

t.test('prebuilt answers are byte-identical to the general encoder', async (t) => {
  const randoms = [0.1, 0.7, 0.4, 0.95, 0.3];
  const fastRuntime = new Runtime(zones);
  const slowRuntime = new Runtime(zones);
  const fast = new Handler(fastRuntime, fixedEnv(undefined, randoms), {}, { prebuilt: true });
  const slow = new Handler(slowRuntime, fixedEnv(undefined, randoms), {}, { prebuilt: false });
  let seed = 0;
  // The share answered from prebuilt bytes is counted apart for the wildcard zone: many of its
  // names are there to take the general path (CNAME loops, names below a delegation or an SOA
  // name), so it has a floor of its own.
  const shares = { other: { prebuilt: 0, all: 0 }, wildcard: { prebuilt: 0, all: 0 } };
  const { compared, mismatches } = compare(t, fast, slow, function* () {
    for (const state of STATES) {
      fastRuntime.publishState(state);
      slowRuntime.publishState(state);
      for (const name of names) {
        const share = shares[name === 'example.org' || name.endsWith('.example.org') ? 'wildcard' : 'other'];
        for (const type of TYPES) {
          for (const edns of EDNS) {
            seed++;
            const [prebuilt, all] = [fast.answeredBy.prebuilt, slow.answeredBy.general];
            yield { label: `${name} ${type} ${JSON.stringify(edns)}`, q: query(mixCase(name, seed), type, { id: seed & 0xffff, rd: seed % 2 === 0, cd: seed % 5 === 0, opcode: seed % 31 === 0 ? 2 : 0, edns }) };
            share.prebuilt += fast.answeredBy.prebuilt - prebuilt;
            share.all += slow.answeredBy.general - all;
          }
        }
      }
    }
  });
  t.equal(mismatches, 0, `${compared} queries compared`);
  t.ok(compared > 10000);
  t.equal(shares.other.all + shares.wildcard.all, compared, 'every query counted in one share');
  t.ok(shares.other.prebuilt > shares.other.all * 0.4, `prebuilt answered ${shares.other.prebuilt} of ${shares.other.all} outside the wildcard zone`);
  t.ok(shares.wildcard.prebuilt > shares.wildcard.all * 0.3, `prebuilt answered ${shares.wildcard.prebuilt} of ${shares.wildcard.all} in the wildcard zone`);
  t.equal(slow.answeredBy.prebuilt, 0, 'the reference handler never took the fast path');
});

t.test('with NSID and cookies on, the fast path writes their options as the general path does', async (t) => {
  // One secret and one clock for both handlers; the server cookie below is valid at that time.
  const options = () => ({ identity: { nsid: 'ns-1', versionBind: 'v1' }, cookies: new ServerCookies(['e5e973e5a6b2a43f48e7dc849e37bfcf'], () => 0x6553f100 * 1000 + 5000) });
  const fast = new Handler(new Runtime(zones), fixedEnv(), {}, { prebuilt: true, ...options() });
  const slow = new Handler(new Runtime(zones), fixedEnv(), {}, { prebuilt: false, ...options() });
  const learned = slow.handle(query('www.example.net', 'A', { edns: { options: Buffer.from('000a00080102030405060708', 'hex') } }), { transport: 'udp', clientAddress: '203.0.113.9' })!;
  const serverCookie = learned.subarray(learned.length - 28);
  t.equal(serverCookie.readUInt16BE(0), 10, 'the general path gave a cookie');
  const ednsCases: Edns[] = [
    ...EDNS,
    { options: serverCookie }, // client + valid server cookie
    { options: Buffer.from('000a0018' + '0102030405060708' + '01000000' + '6553f100' + '0011223344556677', 'hex') }, // invalid server cookie
    { options: Buffer.from('000a0009010203040506070809', 'hex') }, // 9 bytes: FORMERR
    { options: Buffer.from([0, 3, 0, 0]) }, // NSID asked
    { options: Buffer.concat([Buffer.from([0, 3, 0, 0]), ecsOption('198.51.100.7', 24), Buffer.from('000a00080102030405060708', 'hex')]) },
  ];
  let seed = 0;
  const { compared, mismatches } = compare(t, fast, slow, function* () {
    for (const name of names) {
      for (const type of ['A', 'AAAA', 'MX', 'TXT', 'SOA']) {
        for (const edns of ednsCases) {
          seed++;
          yield { label: `${name} ${type} ${JSON.stringify(edns)}`, q: query(mixCase(name, seed), type, { id: seed & 0xffff, rd: seed % 2 === 0, edns }) };
        }
      }
    }
  });
  t.equal(mismatches, 0, `${compared} queries compared`);
  t.ok(fast.answeredBy.prebuilt > compared * 0.3, `prebuilt answered ${fast.answeredBy.prebuilt} of ${compared}`);
  const before = fast.answeredBy.prebuilt;
  const withBoth = query('www.example.net', 'A', { edns: { options: Buffer.concat([Buffer.from([0, 3, 0, 0]), serverCookie]) } });
  const reply = fast.handle(withBoth, { transport: 'udp', clientAddress: '203.0.113.9' })!;
  t.equal(fast.answeredBy.prebuilt, before + 1, 'a query with NSID and a cookie is answered from prebuilt bytes');
  t.equal(fast.lastCookie, COOKIE_PROVEN, 'and its cookie is checked there');
  t.ok(reply.subarray(reply.length - 28).equals(serverCookie), 'the valid cookie comes back');
  const ctx = { transport: 'udp' as const, clientAddress: '203.0.113.9' };
  for (const name of ['id.server', 'hostname.bind', 'version.bind', 'www.example.net']) {
    const q = query(name, 'TXT', { qclass: 3, edns: { options: Buffer.from([0, 3, 0, 0]) } });
    const a = fast.handle(q, ctx)!;
    t.ok(a.equals(slow.handle(q, ctx)!), `CH TXT ${name}: rcode ${a[3] & 0xf}, the same bytes`);
  }
});

t.test('the fast path answers what it covers, with the question letter case echoed', async (t) => {
  const h = new Handler(new Runtime(zones), fixedEnv());
  const ctx = new PeerContext('udp');
  ctx.setBytes(4, Uint8Array.from([192, 0, 2, 1]), 0, 53);
  t.equal(ctx.clientAddress, '192.0.2.1', 'lazy text from bytes');
  const out = Buffer.alloc(1232);
  for (const [name, type, rcode] of [
    ['WwW.Example.NET', 'A', 0],
    ['NoPe.ExAmple.net', 'A', 3],
    ['q.r.child.example.net', 'AAAA', 3],
    ['unknown.test', 'A', 5],
  ] as const) {
    const q = query(name, type, { edns: {} });
    const slot = Buffer.alloc(512);
    q.copy(slot);
    const n = h.handleInto(slot, ctx, out, q.length);
    t.ok(n > 0, `${name} answered from a slot view`);
    const d = decode(out.subarray(0, n));
    t.equal(d.rcode, rcode, `${name} rcode`);
    t.equal(d.questions[0].name, name, 'letter case echoed');
    t.ok(d.opt, 'OPT present');
  }
  t.equal(h.answeredBy.prebuilt, 4, 'all four from prebuilt bytes');
  t.equal(h.handleInto(Buffer.alloc(5), ctx, out), -1, 'short packet: no response');
});

t.test('DO=1 answers of signed zones: prebuilt bytes equal the general encoder, the common cases from prebuilt', async (t) => {
  const SIGNED = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');
  const signedZones = compileAll({ 'zones/net.yaml': SIGNED, 'zones/wild.yaml': `${WILD}\ndnssec: true\n`, 'zones/app.yaml': SAMPLE }, true);
  const randoms = [0.1, 0.7, 0.4, 0.95, 0.3];
  const fastRuntime = new Runtime(signedZones);
  const slowRuntime = new Runtime(signedZones);
  const fast = new Handler(fastRuntime, fixedEnv(undefined, randoms), {}, { prebuilt: true });
  const slow = new Handler(slowRuntime, fixedEnv(undefined, randoms), {}, { prebuilt: false });
  const signedNames = new Set<string>();
  for (const zone of signedZones.zones.values()) {
    for (const n of zone.nodes.keys()) signedNames.add(n);
    for (const n of zone.emptyNonTerminals) signedNames.add(n);
    for (const prefix of ['nope', 'a.b', 'x.ns.sub', 'host.secure', 'foo.cdn', 'a.wild', 'q.alias']) signedNames.add(`${prefix}.${zone.origin}`);
  }
  const states = [
    makeSnapshot(new Map(), true),
    makeSnapshot(new Map([['example.net/east', { up: false }], ['example.org/a', { up: false }]]), true),
    makeSnapshot(new Map(['east', 'west', 'north'].map((id) => [`example.net/${id}`, { up: false }])), true),
  ];
  const ednsCases: Edns[] = [{ do: true }, { do: true, udpSize: 512 }, { do: true, udpSize: 4096 }, { do: true, options: ecsOption('198.51.100.7', 24) }, {}];
  let seed = 0;
  const common = { prebuilt: 0, all: 0 };
  const { compared, mismatches } = compare(t, fast, slow, function* () {
    for (const state of states) {
      fastRuntime.publishState(state);
      slowRuntime.publishState(state);
      for (const name of signedNames) {
        for (const type of ['A', 'AAAA', 'MX', 'TXT', 'SOA', 'NS', 'DNSKEY', 43, 47, 'ANY']) {
          for (const edns of ednsCases) {
            seed++;
            const before = fast.answeredBy.prebuilt;
            yield { label: `${name} ${type} ${JSON.stringify(edns)}`, q: query(mixCase(name, seed), type, { id: seed & 0xffff, rd: seed % 2 === 0, cd: seed % 5 === 0, edns }) };
            // The common cases: A and AAAA of Pool/Group/Site Names and static names, DO=1 at the default size.
            if ((type === 'A' || type === 'AAAA') && edns !== undefined && edns !== false && edns.do === true && edns.udpSize === undefined && edns.options === undefined) {
              common.all += 2;
              common.prebuilt += fast.answeredBy.prebuilt - before;
            }
          }
        }
      }
    }
  });
  t.equal(mismatches, 0, `${compared} queries compared`);
  t.ok(compared > 2000);
  t.ok(common.prebuilt > common.all * 0.5, `prebuilt answered ${common.prebuilt} of ${common.all} DO=1 A/AAAA queries`);
  const pool = query('pool.example.net', 'A', { edns: { do: true } });
  const before = fast.answeredBy.prebuilt;
  fast.handle(pool, { transport: 'udp', clientAddress: '203.0.113.9' });
  t.equal(fast.answeredBy.prebuilt, before + 1, 'a DO=1 Pool Name query is answered from prebuilt signed bytes');
});

/** A query of the name with these wire labels: a label may hold a "." byte (RFC 4343 §2.1). */
function labelsQuery(labels: string[], type: string | number, opts: Parameters<typeof query>[2]): Buffer {
  const q = query('a', type, opts);
  const name = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
  return Buffer.concat([q.subarray(0, 12), name, q.subarray(12 + 3)]);
}

/** A deterministic random source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

for (const denial of ['nsec', 'nsec3', 'nsec3-opt-out'] as const) {
  t.test(`DO=1 NXDOMAIN and wildcard answers of a signed zone (${denial}): templates equal the general encoder for random names`, async (t) => {
    // An empty non-terminal above only a delegation without DS (with opt-out, not in the chain: the
    // proof is the apex's, RFC 5155 §7.2.1).
    const SIGNED = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8')
      .replace('dnssec: true', `dnssec: { denial: ${denial} }`)
      .replace('records:\n', 'records:\n  c.insecure: { NS: [ns.other.test.] }\n');
    const signedZones = compileAll({ 'zones/net.yaml': SIGNED, 'zones/wild.yaml': `${WILD}\ndnssec: { denial: ${denial} }\n` }, true);
    const chain = signedZones.zones.get('example.net')!.signatures!.chain;
    t.equal(chain.optOut, denial === 'nsec3-opt-out', 'opt-out as configured');
    t.equal(chain.keys.includes(nsec3Hash('insecure.example.net')), denial === 'nsec3', 'the empty non-terminal above the insecure delegation: in an NSEC3 chain without opt-out only');
    const fast = new Handler(new Runtime(signedZones), fixedEnv(), {}, { prebuilt: true });
    const slow = new Handler(new Runtime(signedZones), fixedEnv(), {}, { prebuilt: false });
    const random = seeded(denial === 'nsec' ? 19 : 5155);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
    const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
    const label = (): string => Array.from({ length: 1 + Math.floor(random() * 12) }, () => pick([...ALPHABET])).join('');
    // Below the apex, a node, an empty non-terminal (ent), a node below it (x.ent), a wildcard's
    // encloser (wild), delegations (sub, secure), the SOA's names (ns1, hostmaster), and the
    // other zone; names before the first owner ("0", "-") and after the last ("zzz", "~").
    const parents = ['example.net', 'insecure.example.net', 'c.insecure.example.net', 'mx.example.net', 'ent.example.net', 'x.ent.example.net', 'wild.example.net', 'sub.example.net', 'secure.example.net', 'ns1.example.net', 'hostmaster.example.net', 'pool.example.net', 'www.example.net', 'example.org', 'cdn.example.org', 'x.cdn.example.org', 'alias.example.org', 'chain.example.org', 'loop.example.org', 'out.example.org', 'shop.example.org', 'g.example.org', 'eu.example.org', 'ent.example.org'];
    // Below these a wildcard answers (static, CNAME, Pool, Group and Site Names; RFC 4592).
    const wildcards = new Set(['wild.example.net', 'example.org', 'cdn.example.org', 'alias.example.org', 'chain.example.org', 'shop.example.org', 'g.example.org', 'eu.example.org']);
    const fixed = ['0', '-', 'a', 'zzz', 'zzzzzzzz', '~', 'west0', 'mx-', 'big0', 'b.c.d', 'A.B'];
    const ednsCases: Edns[] = [
      { do: true },
      { do: true },
      { do: true },
      { do: true, udpSize: 512 },
      { do: true, udpSize: 600 },
      { do: true, udpSize: 4096 },
      { do: true, options: Buffer.from([0, 3, 0, 0]) },
      { do: true, options: ecsOption('198.51.100.7', 24) },
      { do: true, options: Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]) },
      { udpSize: 1232 },
    ];
    const fastDenials = { prebuilt: 0, all: 0 };
    const fastWildcards = { prebuilt: 0, all: 0 };
    let truncated = 0;
    let seed = 0;
    const { compared, mismatches } = compare(t, fast, slow, function* () {
      for (let n = 0; n < 5000; n++) {
        seed++;
        const parent = pick(parents);
        const depth = 1 + Math.floor(random() * 3);
        const prefix = n < fixed.length * parents.length ? [fixed[n % fixed.length]] : Array.from({ length: depth }, label);
        // A label holding a "." byte now and then: ordered by its wire labels.
        if (n % 17 === 0) prefix[0] = `${prefix[0]}.${label()}`;
        const labels = [...prefix.flatMap((p) => (n % 17 === 0 ? [p] : p.split('.'))), ...parent.split('.')];
        const edns = pick(ednsCases);
        const type = pick(['A', 'AAAA', 'TXT', 'MX', 'NS', 43, 'ANY']);
        const q = labelsQuery(labels, type, { id: seed & 0xffff, rd: seed % 2 === 0, cd: seed % 5 === 0, edns });
        const before = fast.answeredBy.prebuilt;
        yield { label: `${JSON.stringify(labels)} ${type} ${JSON.stringify(edns)}`, q };
        const reply = slow.handle(q, { transport: 'udp', clientAddress: '203.0.113.9' })!;
        if ((reply[3] & 0xf) === 3 && (reply[2] & 0x02) !== 0) truncated++;
        // Names below the apex or a node (a dot inside a label too): the fast path's to answer.
        if ((reply[3] & 0xf) === 3 && (parent === 'example.net' || parent === 'mx.example.net' || parent === 'x.ent.example.net') && edns !== false && edns !== undefined && edns.udpSize === undefined) {
          fastDenials.all += 2;
          fastDenials.prebuilt += fast.answeredBy.prebuilt - before;
        }
        // One label below a wildcard's encloser, asked for A or TXT at the default size: answered by the wildcard.
        if (wildcards.has(parent) && labels.length === parent.split('.').length + 1 && (type === 'A' || type === 'TXT') && edns !== false && edns !== undefined && edns.do === true && edns.udpSize === undefined) {
          fastWildcards.all += 2;
          fastWildcards.prebuilt += fast.answeredBy.prebuilt - before;
        }
      }
    });
    t.equal(mismatches, 0, `${compared} queries compared`);
    // Names whose label below the apex is an NSEC3 owner's hash label (or as long as one): the
    // general encoder compresses that owner against the question.
    // (example.org has a wildcard at its apex: such a name is a wildcard answer there.)
    const hashNames = compare(t, fast, slow, function* () {
      for (const origin of ['example.net', 'example.org']) {
        const hashes = signedZones.zones.get(origin)!.signatures!.chain.keys.slice(0, 6);
        for (const hash of [...hashes, 'v'.repeat(32)]) {
          for (const name of [`${hash}.${origin}`, `q.${hash}.${origin}`, `${hash.toUpperCase()}.${origin}`]) yield { label: name, q: query(name, 'TXT', { edns: { do: true } }) };
        }
      }
    });
    t.equal(hashNames.mismatches, 0, `${hashNames.compared} names with a hash-long label compared`);
    t.ok(truncated > 0, `${truncated} NXDOMAIN replies truncated under a small EDNS size`);
    t.ok(fastDenials.all > 500, `${fastDenials.all} DO=1 NXDOMAIN queries of plain names`);
    const share = fastDenials.prebuilt / fastDenials.all;
    t.ok(share > 0.95, `${fastDenials.prebuilt} of ${fastDenials.all} answered from templates`);
    t.ok(fastWildcards.all > 100 && fastWildcards.prebuilt > fastWildcards.all * 0.7, `DO=1 wildcard answers: ${fastWildcards.prebuilt} of ${fastWildcards.all} from templates`);
    for (const [name, type] of [['a.wild.example.net', 'TXT'], ['Foo.cdn.example.org', 'A'], ['front.shop.example.org', 'A'], ['x.G.example.org', 'A'], ['paris.eu.example.org', 'AAAA'], ['anything.example.org', 'MX']]) {
      const before = fast.answeredBy.prebuilt;
      const reply = fast.handle(query(name, type, { edns: { do: true } }), { transport: 'udp', clientAddress: '203.0.113.9' })!;
      t.equal(reply[3] & 0xf, 0, `${name} ${type}: NOERROR`);
      t.equal(fast.answeredBy.prebuilt, before + 1, `${name} ${type}: DO=1 wildcard answer from a template`);
    }
    for (const name of ['nope.example.net', 'NoPe.Example.NET', 'a.b.x.ent.example.net', 'zzz.example.net']) {
      const before = fast.answeredBy.prebuilt;
      const reply = fast.handle(query(name, 'A', { edns: { do: true } }), { transport: 'udp', clientAddress: '203.0.113.9' })!;
      t.equal(reply[3] & 0xf, 3, `${name}: NXDOMAIN`);
      t.equal(fast.answeredBy.prebuilt, before + 1, `${name}: DO=1 NXDOMAIN from a template`);
    }
  });
}

t.test('DO=1 NXDOMAIN templates stay within their bound under a flood of distinct names', async (t) => {
  const count = Math.ceil(MAX_DENIAL_TEMPLATES / 2) + 100;
  const records = Array.from({ length: count }, (_, i) => `  n${String(i).padStart(5, '0')}: { A: [192.0.2.1] }`).join('\n');
  const text = `zone: flood.test\nsoa: { mname: ns.other.test, rname: admin.other.test }\nnameservers: { ns.other.test: [] }\nrecords:\n${records}\ndnssec: { algorithm: ed25519 }\n`;
  const floodZones = compileAll({ 'zones/flood.yaml': text }, true);
  const fast = new Handler(new Runtime(floodZones), fixedEnv(), {}, { prebuilt: true });
  const slow = new Handler(new Runtime(floodZones), fixedEnv(), {}, { prebuilt: false });
  const table = tableOnQueryPath(floodZones);
  // Each name lies in an interval of its own (below a node, or between two): 2 x count templates wanted.
  const flood = function* () {
    for (let i = 0; i < count; i++) {
      const node = `n${String(i).padStart(5, '0')}`;
      yield { label: `below ${node}`, q: query(`q.${node}.flood.test`, 'A', { edns: { do: true } }) };
      yield { label: `after ${node}`, q: query(`${node}x.flood.test`, 'A', { edns: { do: true } }) };
    }
  };
  const { compared, mismatches } = compare(t, fast, slow, flood);
  t.equal(mismatches, 0, `${compared} queries compared, past the bound too`);
  t.equal(table.denialTemplates, MAX_DENIAL_TEMPLATES, 'the memo filled up to its bound, not past it');
  const before = fast.answeredBy.prebuilt;
  compare(t, fast, slow, flood);
  t.equal(table.denialTemplates, MAX_DENIAL_TEMPLATES, 'a second flood adds nothing');
  t.equal(fast.answeredBy.prebuilt - before, MAX_DENIAL_TEMPLATES * 2, 'names with a template answered from it (UDP and TCP), the rest by the general path');
});

t.test('DO=1 wildcard answers stay within the same bound under a flood of distinct names (NSEC3)', async (t) => {
  const count = MAX_DENIAL_TEMPLATES + 100;
  const records = Array.from({ length: count }, (_, i) => `  n${String(i).padStart(5, '0')}: { A: [192.0.2.1] }`).join('\n');
  const text = `zone: flood.test\nsoa: { mname: ns.other.test, rname: admin.other.test }\nnameservers: { ns.other.test: [] }\nrecords:\n  "*": { TXT: [wild] }\n${records}\ndnssec: { algorithm: ed25519, denial: nsec3 }\n`;
  const floodZones = compileAll({ 'zones/flood.yaml': text }, true);
  const fast = new Handler(new Runtime(floodZones), fixedEnv(), {}, { prebuilt: true });
  const slow = new Handler(new Runtime(floodZones), fixedEnv(), {}, { prebuilt: false });
  const table = tableOnQueryPath(floodZones);
  // Names the apex wildcard answers, their next closer names hashed all over the chain.
  const flood = function* () {
    for (let i = 0; i < 3 * count; i++) yield { label: `w${i}`, q: query(`w${i}.flood.test`, i % 2 === 0 ? 'TXT' : 'A', { edns: { do: true } }) };
  };
  const before = fast.answeredBy.prebuilt;
  const { compared, mismatches } = compare(t, fast, slow, flood);
  t.equal(mismatches, 0, `${compared} queries compared, past the bound too`);
  t.ok(fast.answeredBy.prebuilt - before > MAX_DENIAL_TEMPLATES / 2, `${fast.answeredBy.prebuilt - before} answered from templates`);
  t.equal(table.denialTemplates, MAX_DENIAL_TEMPLATES, 'the memo filled up to its bound, not past it');
});

t.test("DO=1 answers of a wildcard Pool Name count each site's answer against the bound", async (t) => {
  const SITES = 40;
  const NAMES = 101; // two draws per name (UDP, TCP): 202 per round, so each round draws other sites for a name
  const sites = Array.from({ length: SITES }, (_, i) => `  s${i}: { addresses: [192.0.2.${i + 10}] }`).join('\n');
  const records = Array.from({ length: NAMES }, (_, i) => `  n${String(i).padStart(3, '0')}: { A: [192.0.2.1] }`).join('\n');
  const text = `zone: flood.test\nsoa: { mname: ns.other.test, rname: admin.other.test }\nnameservers: { ns.other.test: [] }\nsites:\n${sites}\npool: { name: "*", policy: least-busy, sites: [${Array.from({ length: SITES }, (_, i) => `s${i}`).join(', ')}] }\nrecords:\n${records}\ndnssec: { algorithm: ed25519 }\n`;
  const floodZones = compileAll({ 'zones/flood.yaml': text }, true);
  // Every site drawn in turn: each name asked builds an answer per site.
  const randoms = Array.from({ length: SITES }, (_, i) => (i + 0.5) / SITES);
  const fast = new Handler(new Runtime(floodZones), fixedEnv(undefined, randoms), {}, { prebuilt: true });
  const slow = new Handler(new Runtime(floodZones), fixedEnv(undefined, randoms), {}, { prebuilt: false });
  const table = tableOnQueryPath(floodZones);
  // One name per interval of the chain (NAMES names, ProvedNames and types: 2 x NAMES charges),
  // each asked once per site (SITES x NAMES choices: past the bound).
  const flood = function* () {
    for (let round = 0; round < SITES; round++) {
      for (let i = 0; i < NAMES; i++) yield { label: `n${i}x, draw ${round}`, q: query(`n${String(i).padStart(3, '0')}x.flood.test`, 'A', { edns: { do: true } }) };
    }
  };
  const { compared, mismatches } = compare(t, fast, slow, flood);
  t.equal(mismatches, 0, `${compared} queries compared, past the bound too`);
  t.equal(table.denialTemplates, MAX_DENIAL_TEMPLATES, "the sites' answers filled the memo up to its bound, not past it");
});
