/**
 * DO=1 answers of a signed zone on the socket-free handler (RFC 4035 §3.1): every answer kind,
 * its RRSIGs verified with node:crypto against the zone's DNSKEY, its NSEC proofs checked for
 * what they cover. DO=0 and unsigned zones are unchanged.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { compileZoneFiles, makeZoneSet } from '../../src/config/compile.js';
import { parseZoneText } from '../../src/config/load.js';
import { canonicalKey } from '../../src/model/signatures.js';
import { makeSnapshot } from '../../src/state/snapshot.js';
import { KeyError } from '../../src/dnssec/key-file.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { compileText, query } from '../helpers/dns.js';
import { base32hex, checkSignatures, DNSKEY, DS, makeKeySet, NSEC, NSEC3, nsec3HashOf, parseMessage, parseNsec, parseNsec3, parseRrsig, RRSIG, signedZones, type Message, type WireRR } from '../helpers/dnssec.js';

const TEXT = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');
const NOW = Date.UTC(2026, 11, 1);

for (const [algorithm, kind] of [
  [13, 'csk'],
  [15, 'ksk+zsk'],
] as const) {
  t.test(`algorithm ${algorithm}, ${kind}`, async (t) => {
    const keys = makeKeySet('example.net', algorithm, kind);
    const runtime = new Runtime(signedZones(TEXT, keys, NOW));
    const handlers = { prebuilt: new Handler(runtime, undefined, {}, { prebuilt: true }), general: new Handler(runtime, undefined, {}, { prebuilt: false }) };
    const ask = (name: string, type: string | number, transport: 'udp' | 'tcp' = 'tcp', handler = handlers.prebuilt): Message => {
      const out = handler.handle(query(name, type, { edns: { do: true } }), { transport, clientAddress: '192.0.2.1' });
      return parseMessage(out!);
    };

    const dnskeyAnswer = ask('example.net', 'DNSKEY');
    const dnskeys = dnskeyAnswer.answer.filter((r) => r.type === DNSKEY);
    t.equal(dnskeys.length, keys.published.length, 'the apex DNSKEY RRset holds every published key');
    const dnskeySigs = dnskeyAnswer.answer.filter((r) => r.type === RRSIG).map((r) => parseRrsig(r.rdata));
    t.same(dnskeySigs.map((s) => s.keyTag), keys.keySigning.map((k) => k.keyTag), 'DNSKEY is signed by the key-signing keys');
    t.same(checkSignatures(dnskeyAnswer.answer, dnskeys), []);

    /** Every RRset of every section verifies, NS and glue of a referral excepted. */
    const verified = (m: Message, label: string, referral = false) => {
      const problems = checkSignatures([...m.answer, ...m.authority], dnskeys, (rr) => referral && rr.type === 2);
      t.same(problems, [], `${label}: every RRset is signed and verifies`);
      const sigs = [...m.answer, ...m.authority].filter((r) => r.type === RRSIG).map((r) => parseRrsig(r.rdata));
      for (const sig of sigs) {
        t.equal(sig.inception, Math.floor(NOW / 1000) - 3600, `${label}: inception an hour before the signing time`);
        t.equal(sig.expiration - sig.inception, 14 * 86400, `${label}: expiration after the validity`);
      }
      return sigs;
    };
    const covers = (nsec: WireRR, name: string) => {
      const { next } = parseNsec(nsec.rdata);
      const k = canonicalKey(name);
      const wraps = canonicalKey(next) <= canonicalKey(nsec.owner);
      return canonicalKey(nsec.owner) < k && (wraps || k < canonicalKey(next));
    };

    for (const [name, type] of [
      ['mx.example.net', 'A'],
      ['example.net', 'MX'],
      ['example.net', 'TXT'],
      ['example.net', 'SOA'],
      ['example.net', 'NS'],
    ] as const) {
      const m = ask(name, type);
      t.equal(m.rcode, 0);
      t.ok(m.answer.some((r) => r.type === RRSIG), `${name} ${type}: RRSIG in the answer`);
      verified(m, `${name} ${type}`);
    }

    t.test('Pool, Group and Site Names: signed for every choice, original TTL 0', async (t) => {
      for (const name of ['pool.example.net', 'pair.example.net', 'east.example.net', 'north.example.net']) {
        for (const type of ['A', 'AAAA']) {
          const m = ask(name, type);
          const sigs = verified(m, `${name} ${type}`);
          if (m.answer.length > 0) t.ok(sigs.every((s) => s.originalTtl === 0), `${name} ${type}: original TTL 0`);
        }
      }
      const cname = ask('www.example.net', 'A');
      t.same([...new Set(cname.answer.map((r) => r.type))], [5, RRSIG, 1], 'a CNAME into the pool: both RRsets signed');
      t.equal(cname.answer.filter((r) => r.type === RRSIG).length, 2 * keys.zoneSigning.length);
      verified(cname, 'CNAME into the pool');
      // East goes down: the Site Name fails over to the next site, still signed.
      runtime.publishState(makeSnapshot(new Map([['example.net/east', { up: false }]]), true));
      const after = ask('east.example.net', 'A');
      t.same(after.answer.filter((r) => r.type === 1).map((r) => [...r.rdata].join('.')), ['192.0.2.90'], 'east fails over to west');
      verified(after, 'east after failover');
      // Everything down: the pool's sorry address, signed.
      runtime.publishState(makeSnapshot(new Map(['east', 'west', 'north'].map((id) => [`example.net/${id}`, { up: false }])), true));
      const sorry = ask('pool.example.net', 'A');
      t.same(sorry.answer.filter((r) => r.type === 1).map((r) => [...r.rdata].join('.')), ['192.0.2.250']);
      verified(sorry, 'sorry');
      const all = ask('pair.example.net', 'A');
      t.same(all.answer.filter((r) => r.type === 1).map((r) => [...r.rdata].join('.')).sort(), ['192.0.2.80', '192.0.2.90'], 'all down: every address of the group');
      verified(all, 'all down');
      runtime.publishState(makeSnapshot(new Map(), true));
    });

    t.test('NXDOMAIN: the name and the wildcard denied (RFC 4035 §3.1.3.2)', async (t) => {
      for (const name of ['nope.example.net', 'a.b.x.ent.example.net', 'dangling.example.net']) {
        const m = ask(name, 'A');
        t.equal(m.rcode, 3, name);
        verified(m, name);
        const nsecs = m.authority.filter((r) => r.type === NSEC);
        const denied = name === 'dangling.example.net' ? 'gone.example.net' : name;
        t.ok(nsecs.some((n) => covers(n, denied)), `${name}: an NSEC covers ${denied}`);
        const encloser = name === 'a.b.x.ent.example.net' ? 'x.ent.example.net' : 'example.net';
        t.ok(nsecs.some((n) => covers(n, `*.${encloser}`)), `${name}: an NSEC covers *.${encloser}`);
      }
    });

    t.test('NODATA: the NSEC of the name shows the type absent (RFC 4035 §3.1.3.1)', async (t) => {
      for (const [name, type, owner] of [
        ['mx.example.net', 'TXT', 'mx.example.net'],
        ['pool.example.net', 'MX', 'pool.example.net'],
        ['west.example.net', 'AAAA', 'west.example.net'],
        ['sub.example.net', 43, 'sub.example.net'],
      ] as const) {
        const m = ask(name, type);
        t.equal(m.rcode, 0);
        t.same(m.answer, [], `${name} ${type}: no answer`);
        verified(m, `${name} ${type}`);
        const nsec = m.authority.find((r) => r.type === NSEC && r.owner === owner);
        t.ok(nsec, `${name} ${type}: the NSEC of ${owner}`);
        const types = parseNsec(nsec!.rdata).types;
        t.notOk(types.includes(type === 43 ? 43 : type === 'MX' ? 15 : type === 'TXT' ? 16 : 28), `${name}: bitmap without ${type}`);
        t.ok(types.includes(RRSIG) && types.includes(NSEC), `${name}: bitmap with RRSIG and NSEC`);
      }
      const ent = ask('ent.example.net', 'A');
      t.equal(ent.rcode, 0);
      t.ok(ent.authority.some((r) => r.type === NSEC && covers(r, 'ent.example.net')), 'an empty non-terminal: the NSEC covering it');
      verified(ent, 'empty non-terminal');
    });

    t.test('wildcards: the expansion signed, the name asked denied (RFC 4035 §3.1.3.3)', async (t) => {
      const m = ask('a.wild.example.net', 'TXT');
      const sig = m.answer.filter((r) => r.type === RRSIG).map((r) => parseRrsig(r.rdata))[0];
      t.equal(sig.labels, 3, 'labels of *.wild.example.net');
      verified(m, 'wildcard answer');
      t.ok(m.authority.some((r) => r.type === NSEC && covers(r, 'a.wild.example.net')), 'the NSEC covering the name asked');
      const nodata = ask('a.wild.example.net', 'A');
      verified(nodata, 'wildcard NODATA');
      t.ok(nodata.authority.some((r) => r.type === NSEC && r.owner === '*.wild.example.net'), 'the wildcard NSEC');
      t.ok(nodata.authority.some((r) => r.type === NSEC && covers(r, 'a.wild.example.net')), 'the NSEC covering the name asked');
    });

    t.test('a delegation without DS: NS and glue unsigned, the NSEC proving no DS (RFC 4035 §3.1.4)', async (t) => {
      const m = ask('host.sub.example.net', 'A');
      t.same(m.authority.filter((r) => r.type === 2).map((r) => r.owner), ['sub.example.net']);
      verified(m, 'referral', true);
      const nsec = m.authority.find((r) => r.type === NSEC);
      t.equal(nsec?.owner, 'sub.example.net');
      t.notOk(parseNsec(nsec!.rdata).types.includes(43), 'no DS in the bitmap');
      t.notOk(m.additional.some((r) => r.type === RRSIG), 'glue unsigned');
    });

    t.test('a delegation with DS: the DS and its RRSIGs in the referral, DS answered by the parent (RFC 4035 §3.1.4)', async (t) => {
      const m = ask('host.secure.example.net', 'A');
      t.same(m.authority.map((r) => r.type), [2, 43, RRSIG], 'NS, DS, RRSIG(DS)');
      verified(m, 'secure referral', true);
      t.notOk(m.additional.some((r) => r.type === RRSIG), 'glue unsigned');
      const ds = ask('secure.example.net', 43);
      t.same(ds.answer.map((r) => r.type), [43, RRSIG], 'DS at the cut: answered, signed');
      t.ok(ds.flags & 0x0400, 'authoritative');
      verified(ds, 'DS');
      const nsec = ask('example.net', 47);
      t.same(nsec.answer.map((r) => [r.owner, r.type]), [['example.net', NSEC], ['example.net', RRSIG]], 'NSEC query: the NSEC RRset answers');
      verified(nsec, 'NSEC query');
      const cut = ask('secure.example.net', 'TXT');
      t.same(cut.authority.map((r) => r.type).slice(0, 3), [2, 43, RRSIG], 'other types at the cut: the referral');
      const viaCname = ask('to-secure.example.net', 43);
      t.same(viaCname.answer.map((r) => [r.owner, r.type]), [['to-secure.example.net', 5], ['to-secure.example.net', RRSIG], ['secure.example.net', 43], ['secure.example.net', RRSIG]], 'DS through a CNAME to the cut: the chain and the DS');
      verified(viaCname, 'DS through a CNAME');
      t.notOk(viaCname.authority.some((r) => r.type === NSEC), 'no denial');
      const noDs = ask('to-sub.example.net', 43);
      t.same(noDs.answer.map((r) => r.type), [5, RRSIG], 'DS through a CNAME to a cut without DS: the chain');
      verified(noDs, 'no DS through a CNAME');
      const noDsNsec = noDs.authority.find((r) => r.type === NSEC);
      t.equal(noDsNsec?.owner, 'sub.example.net', 'the NSEC of the cut');
      t.notOk(parseNsec(noDsNsec!.rdata).types.includes(43), 'without DS');
      const plain = handlers.prebuilt.handle(query('host.secure.example.net', 'A', { edns: { do: false } }), { transport: 'udp', clientAddress: '192.0.2.1' })!;
      t.same(parseMessage(plain).authority.map((r) => r.type), [2], 'DO=0: the referral without DS');
    });

    t.test('DO=0 answers hold no DNSSEC records', async (t) => {
      for (const [name, type] of [
        ['mx.example.net', 'A'],
        ['nope.example.net', 'A'],
        ['pool.example.net', 'A'],
      ]) {
        const out = handlers.prebuilt.handle(query(name, type, { edns: { do: false } }), { transport: 'udp', clientAddress: '192.0.2.1' });
        const m = parseMessage(out!);
        t.notOk([...m.answer, ...m.authority].some((r) => r.type === RRSIG || r.type === NSEC), `${name} ${type}`);
      }
    });

    t.test('UDP: a DO=1 answer too large for the client sets TC (RFC 4035 §3.1.1)', async (t) => {
      const udp = (edns: { do?: boolean; udpSize?: number }) => handlers.general.handle(query('big.example.net', 'TXT', { edns }), { transport: 'udp', clientAddress: '192.0.2.1' })!;
      const plain = udp({ udpSize: 512 });
      t.equal(plain.readUInt16BE(2) & 0x0200, 0, 'DO=0 fits 512 bytes');
      const signed = udp({ do: true, udpSize: 512 });
      t.ok(signed.length <= 512, 'never over the client size');
      t.not(signed.readUInt16BE(2) & 0x0200, 0, 'DO=1 with its RRSIGs does not fit 512: TC');
      const fits = udp({ do: true });
      t.equal(fits.readUInt16BE(2) & 0x0200, 0, 'at 1232 it fits');
      verified(parseMessage(fits), 'big TXT');
      const prebuilt = handlers.prebuilt.handle(query('big.example.net', 'TXT', { edns: { do: true, udpSize: 512 } }), { transport: 'udp', clientAddress: '192.0.2.1' })!;
      t.ok(prebuilt.equals(signed), 'the fast path gives the same truncated reply');
      const tcp = ask('big.example.net', 'TXT', 'tcp');
      t.equal(tcp.answer.filter((r) => r.type === RRSIG).length, keys.zoneSigning.length, 'TCP carries all');
    });
  });
}

t.test('an unsigned zone answers DO=1 as before', async (t) => {
  const zones = compileText(TEXT.replace('dnssec: true', ''));
  const handler = new Handler(new Runtime(zones));
  const m = parseMessage(handler.handle(query('nope.example.net', 'A', { edns: { do: true } }), { transport: 'udp', clientAddress: '192.0.2.1' })!);
  t.equal(m.rcode, 3);
  t.same(m.authority.map((r) => r.type), [6]);
});

t.test('a signed zone compiled without keys (the loader thread check) is unsigned', async (t) => {
  const zones = compileText(TEXT);
  t.equal(zones.zones.get('example.net')!.signatures, undefined);
});

t.test('a zone whose keys cannot be read is refused with the error, naming the file', async (t) => {
  const loaded = parseZoneText(TEXT, 'zones/signed.yaml');
  if ('problems' in loaded) throw new Error('parse');
  const compiled = compileZoneFiles([loaded], { keysFor: () => { throw new KeyError('EKEY_READ', '.sitedns/keys/Kexample.net+013+01234.json', 'permission denied'); }, now: () => NOW });
  t.equal(compiled.zones.length, 0);
  t.equal(compiled.problems[0].code, 'EKEY_READ');
  t.equal(compiled.problems[0].file, '.sitedns/keys/Kexample.net+013+01234.json');
});

t.test('a signed zone with errors of its own reports them and never asks for its keys', async (t) => {
  const loaded = parseZoneText(TEXT.replace(/\nrecords:\n/, '\nrecords:\n  bad:\n    CNAME: nowhere.example.net\n    A: [192.0.2.9]\n'), 'zones/signed.yaml');
  if ('problems' in loaded) throw new Error('parse');
  let asked = 0;
  const compiled = compileZoneFiles([loaded], { keysFor: () => { asked++; throw new KeyError('EKEY_DIR', '.sitedns/keys', 'no keys'); }, now: () => NOW });
  t.same(compiled.problems.map((p) => p.message), ['CNAME cannot stand beside other data (RFC 1034 §3.6.2)'], "the file's own problem, not the keys'");
  t.equal(asked, 0, 'keys are neither read nor made for a zone that does not compile');
});

// With opt-out the same proofs but those of the delegation without DS (its own test below).
for (const denial of ['nsec3', 'nsec3-opt-out'] as const)
t.test(`NSEC3 (RFC 5155, RFC 9276 parameters), ${denial}: every proof signed, hashes matching and covering`, async (t) => {
  const keys = makeKeySet('example.net', 13, 'csk');
  const runtime = new Runtime(signedZones(TEXT.replace('dnssec: true', `dnssec: { denial: ${denial} }`), keys, NOW));
  const handler = new Handler(runtime);
  const ask = (name: string, type: string | number): Message => parseMessage(handler.handle(query(name, type, { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  const dnskeys = ask('example.net', 'DNSKEY').answer.filter((r) => r.type === DNSKEY);
  const param = ask('example.net', 51);
  t.same(param.answer.map((r) => r.type), [51, RRSIG], 'NSEC3PARAM at the apex');
  t.same([...param.answer[0].rdata], [1, 0, 0, 0, 0], 'SHA-1, no flags, 0 extra iterations, no salt (RFC 9276 §3.1)');
  const hashOf = (r: WireRR) => r.owner.split('.')[0];
  const matching = (m: Message, name: string) => m.authority.some((r) => r.type === NSEC3 && hashOf(r) === nsec3HashOf(name));
  const covering = (m: Message, name: string) =>
    m.authority.some((r) => {
      if (r.type !== NSEC3) return false;
      const h = nsec3HashOf(name);
      const { next } = parseNsec3(r.rdata);
      const own = hashOf(r);
      return own < next ? own < h && h < next : h > own || h < next;
    });
  const check = (m: Message, label: string) => t.same(checkSignatures([...m.answer, ...m.authority], dnskeys, (rr) => rr.type === 2 && m.answer.length === 0 && !m.authority.some((a) => a.type === 6)), [], `${label}: signed`);

  const nx = ask('a.b.nope.example.net', 'A');
  t.equal(nx.rcode, 3);
  check(nx, 'NXDOMAIN');
  t.ok(matching(nx, 'example.net'), 'closest encloser matched');
  t.ok(covering(nx, 'nope.example.net'), 'next closer covered');
  t.ok(covering(nx, '*.example.net'), 'wildcard covered');
  t.ok(nx.authority.filter((r) => r.type === NSEC3).every((r) => parseNsec3(r.rdata).iterations === 0), 'no extra iterations');
  if (denial === 'nsec3') t.ok(nx.authority.filter((r) => r.type === NSEC3).every((r) => parseNsec3(r.rdata).flags === 0), 'no opt-out');

  const nodata = ask('mx.example.net', 'TXT');
  check(nodata, 'NODATA');
  t.ok(matching(nodata, 'mx.example.net'), 'the name matched');
  const ent = ask('ent.example.net', 'A');
  check(ent, 'empty non-terminal');
  t.ok(matching(ent, 'ent.example.net'), 'an empty non-terminal has its NSEC3 (RFC 5155 §7.1)');

  const wild = ask('q.wild.example.net', 'TXT');
  check(wild, 'wildcard answer');
  t.ok(covering(wild, 'q.wild.example.net'), 'the next closer name covered');
  const wildNodata = ask('q.wild.example.net', 'A');
  check(wildNodata, 'wildcard NODATA');
  t.ok(matching(wildNodata, 'wild.example.net') && covering(wildNodata, 'q.wild.example.net') && matching(wildNodata, '*.wild.example.net'), 'closest encloser proof and the wildcard matched (RFC 5155 §7.2.5)');

  const referral = ask('host.sub.example.net', 'A');
  check(referral, 'insecure referral');
  if (denial === 'nsec3') {
    t.ok(matching(referral, 'sub.example.net'), 'the delegation matched');
    t.notOk(parseNsec3(referral.authority.find((r) => r.type === NSEC3)!.rdata).types.includes(43), 'without DS');
  }

  const westAAAA = ask('west.example.net', 'AAAA');
  check(westAAAA, 'dynamic NODATA');
  const proof = westAAAA.authority.find((r) => r.type === NSEC3)!;
  t.equal(hashOf(proof), nsec3HashOf('west.example.net'));
  t.notOk(parseNsec3(proof.rdata).types.includes(28), 'the Site Name NSEC3 without AAAA');
});

t.test('wildcards of every kind, signed: static, CNAME, Pool/Group/Site Names, NODATA, NSEC and NSEC3', async (t) => {
  const WILD = readFileSync(new URL('../fixtures/wildcard.example.org.yaml', import.meta.url), 'utf8');
  for (const denial of ['nsec', 'nsec3']) {
    const keys = makeKeySet('example.org', 15, 'csk');
    const loaded = parseZoneText(`${WILD}\ndnssec: { denial: ${denial} }\n`, 'zones/wild.yaml');
    if ('problems' in loaded) throw new Error('parse');
    const compiled = compileZoneFiles([loaded], { keysFor: () => keys, now: () => NOW });
    const handler = new Handler(new Runtime(makeZoneSet(compiled.zones)));
    const ask = (name: string, type: string | number): Message => parseMessage(handler.handle(query(name, type, { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
    const dnskeys = ask('example.org', 'DNSKEY').answer.filter((r) => r.type === DNSKEY);
    const hashOf = (r: WireRR) => r.owner.split('.')[0];
    const nsec3Covers = (r: WireRR, name: string) => {
      const h = nsec3HashOf(name);
      const { next } = parseNsec3(r.rdata);
      const own = hashOf(r);
      return own < next ? own < h && h < next : h > own || h < next;
    };
    const nsecCovers = (r: WireRR, name: string) => {
      const { next } = parseNsec(r.rdata);
      const k = canonicalKey(name);
      return canonicalKey(r.owner) < k && (canonicalKey(next) <= canonicalKey(r.owner) || k < canonicalKey(next));
    };
    // Each case with the names a wildcard answered in it, and the next closer name of each
    // (RFC 5155 §7.2.6: one label below the wildcard's closest encloser).
    for (const [name, type, expansions] of [
      ['foo.cdn.example.org', 'A', [['foo.cdn.example.org', 'foo.cdn.example.org']]],
      ['a.b.cdn.example.org', 'A', [['a.b.cdn.example.org', 'b.cdn.example.org']]],
      ['q.alias.example.org', 'A', [['q.alias.example.org', 'q.alias.example.org']]],
      ['q.chain.example.org', 'A', [['q.chain.example.org', 'q.chain.example.org'], ['z.cdn.example.org', 'z.cdn.example.org']]],
      ['front.shop.example.org', 'A', [['front.shop.example.org', 'front.shop.example.org']]],
      ['x.g.example.org', 'A', [['x.g.example.org', 'x.g.example.org']]],
      ['paris.eu.example.org', 'A', [['paris.eu.example.org', 'paris.eu.example.org']]],
      ['paris.eu.example.org', 'AAAA', []],
      ['www.example.org', 'A', [['front.shop.example.org', 'front.shop.example.org']]],
      ['anything.example.org', 'MX', [['anything.example.org', 'anything.example.org']]],
      ['anything.example.org', 'AAAA', []],
      ['q.ent.example.org', 'TXT', []],
    ] as const) {
      const m = ask(name, type);
      t.same(checkSignatures([...m.answer, ...m.authority], dnskeys), [], `${denial}: ${name} ${type} signed`);
      const sigs = m.answer.filter((r) => r.type === RRSIG).map((r) => ({ sig: parseRrsig(r.rdata), owner: r.owner }));
      const expanded = sigs.filter(({ sig, owner }) => sig.labels < owner.split('.').length).map(({ owner }) => owner);
      t.same(expanded, expansions.map(([asked]) => asked), `${denial}: ${name} ${type}: the names a wildcard answered`);
      for (const [asked, nextCloser] of expansions) {
        const proved = denial === 'nsec' ? m.authority.some((r) => r.type === NSEC && nsecCovers(r, asked)) : m.authority.some((r) => r.type === NSEC3 && nsec3Covers(r, nextCloser));
        t.ok(proved, `${denial}: ${name} ${type}: the ${denial === 'nsec' ? `NSEC covering ${asked}` : `NSEC3 covering ${nextCloser}`}`);
      }
    }
  }
});

const CHILD = `zone: secure.example.net
ttl: 600
soa: { mname: ns.secure.example.net, rname: hostmaster.example.net, minimum: 30 }
nameservers:
  ns.secure.example.net: [192.0.2.51]
records:
  www: { A: [192.0.2.60] }
dnssec: true
`;

/** The signed fixture and its child secure.example.net, both served here, each with its keys. */
function parentAndChild(childText = CHILD) {
  const keys = new Map([['example.net', makeKeySet('example.net')], ['secure.example.net', makeKeySet('secure.example.net')]]);
  const loaded = [parseZoneText(TEXT, 'zones/signed.yaml'), parseZoneText(childText, 'zones/child.yaml')];
  const files = loaded.map((l) => {
    if ('problems' in l) throw new Error(JSON.stringify(l.problems));
    return l;
  });
  const compiled = compileZoneFiles(files, { keysFor: (zone) => keys.get(zone), now: () => NOW });
  if (compiled.problems.length > 0) throw new Error(JSON.stringify(compiled.problems));
  return { zones: makeZoneSet(compiled.zones), keys };
}

t.test('DS at the apex of a child zone served here too: the parent side answers (RFC 4035 §3.1.4.1)', async (t) => {
  for (const childText of [CHILD, CHILD.replace('dnssec: true\n', '')]) {
    const { zones, keys } = parentAndChild(childText);
    const runtime = new Runtime(zones);
    for (const prebuilt of [true, false]) {
      const handler = new Handler(runtime, undefined, {}, { prebuilt });
      const ask = (name: string, type: string | number, edns = { do: true }) => handler.handle(query(name, type, { edns }), { transport: 'tcp', clientAddress: '192.0.2.1' })!;
      const label = `${childText === CHILD ? 'signed' : 'unsigned'} child, ${prebuilt ? 'fast' : 'general'} path`;
      const parentKeys = parseMessage(ask('example.net', 'DNSKEY')).answer.filter((r) => r.type === DNSKEY);
      t.equal(parentKeys.length, keys.get('example.net')!.published.length);
      const ds = parseMessage(ask('secure.example.net', DS));
      t.equal(ds.rcode, 0, label);
      t.same(ds.answer.map((r) => [r.owner, r.type]), [['secure.example.net', DS], ['secure.example.net', RRSIG]], `${label}: the parent's DS and its RRSIG`);
      t.equal(parseRrsig(ds.answer[1].rdata).signer, 'example.net', `${label}: signed by the parent`);
      t.same(checkSignatures(ds.answer, parentKeys), [], `${label}: verifies with the parent's keys`);
      const plain = parseMessage(ask('secure.example.net', DS, { do: false }));
      t.same(plain.answer.map((r) => r.type), [DS], `${label}: DO=0, the DS alone`);
      const soa = parseMessage(ask('secure.example.net', 'SOA'));
      t.same(soa.answer.filter((r) => r.type === 6).map((r) => r.owner), ['secure.example.net'], `${label}: other types at the apex: the child`);
    }
  }
  // A child whose parent holds no DS: the parent's signed NODATA, its NSEC showing NS without DS.
  const { zones } = parentAndChild(CHILD.replace(/secure/g, 'sub'));
  const handler = new Handler(new Runtime(zones));
  const m = parseMessage(handler.handle(query('sub.example.net', DS, { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  t.equal(m.rcode, 0);
  t.same(m.answer, []);
  const nsec = m.authority.find((r) => r.type === NSEC);
  t.equal(nsec?.owner, 'sub.example.net', "the parent's NSEC of the cut");
  t.same(parseNsec(nsec!.rdata).types.filter((x) => x === 2 || x === 43), [2], 'NS, no DS');
});

/** The fixture with opt-out and a second delegation without DS, d.only: only.example.net is an empty non-terminal above it alone. */
const OPT_OUT_TEXT = TEXT.replace('dnssec: true', 'dnssec: { denial: nsec3-opt-out }').replace('records:\n', 'records:\n  d.only: { NS: [ns.sub.example.net.] }\n');

t.test('NSEC3 with opt-out (RFC 5155 §6, §7): the chain without unsigned delegations, their proofs by the closest provable encloser', async (t) => {
  const keys = makeKeySet('example.net', 13, 'csk');
  const zones = signedZones(OPT_OUT_TEXT, keys, NOW);
  const handler = new Handler(new Runtime(zones));
  const ask = (name: string, type: string | number): Message => parseMessage(handler.handle(query(name, type, { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  const dnskeys = ask('example.net', 'DNSKEY').answer.filter((r) => r.type === DNSKEY);
  const check = (m: Message, label: string) => t.same(checkSignatures([...m.answer, ...m.authority], dnskeys, (rr) => rr.type === 2 && m.answer.length === 0 && !m.authority.some((a) => a.type === 6)), [], `${label}: signed`);
  const hashOf = (owner: string) => owner.split('.')[0];
  const spanCovers = (owner: string, next: string, name: string) => {
    const h = nsec3HashOf(name);
    const own = hashOf(owner);
    return own < next ? own < h && h < next : h > own || h < next;
  };
  const nsec3s = (m: Message) => m.authority.filter((r) => r.type === NSEC3).map((r) => ({ owner: r.owner, ...parseNsec3(r.rdata) }));
  const matching = (m: Message, name: string) => nsec3s(m).find((r) => hashOf(r.owner) === nsec3HashOf(name));
  const covering = (m: Message, name: string) => nsec3s(m).find((r) => spanCovers(r.owner, r.next, name));
  const leftOut = ['sub.example.net', 'd.only.example.net', 'only.example.net'];

  // The chain: every record of the zone, read from the model.
  const chain = zones.zones.get('example.net')!.signatures!.chain;
  const records = chain.nsec.map((set) => ({ owner: set.owner, ...parseNsec3(Buffer.concat(set.records[0].rdata as Buffer[])) }));
  for (const name of leftOut) t.notOk(records.some((r) => hashOf(r.owner) === nsec3HashOf(name)), `no NSEC3 of ${name} (RFC 5155 §7.1)`);
  for (const name of ['secure.example.net', 'ent.example.net', 'wild.example.net', '*.wild.example.net', 'example.net']) t.ok(records.some((r) => hashOf(r.owner) === nsec3HashOf(name)), `the NSEC3 of ${name}`);
  const optedOut = records.filter((r) => leftOut.some((name) => spanCovers(r.owner, r.next, name)));
  t.ok(optedOut.length > 0 && optedOut.length < records.length, 'some spans hold a left-out name, some do not');
  for (const r of records) t.equal(r.flags, optedOut.includes(r) ? 1 : 0, `${r.owner}: Opt-Out exactly where its span holds an unsigned delegation or its empty non-terminal (RFC 5155 §6)`);
  t.same([...ask('example.net', 51).answer[0].rdata], [1, 0, 0, 0, 0], 'NSEC3PARAM flags 0 (RFC 5155 §4.1.2)');

  // An insecure delegation: its referral and its DS query prove it by the closest provable encloser.
  for (const [name, type, cut, nextCloser] of [
    ['host.sub.example.net', 'A', 'sub.example.net', 'sub.example.net'],
    ['sub.example.net', DS, 'sub.example.net', 'sub.example.net'],
    ['to-sub.example.net', DS, 'sub.example.net', 'sub.example.net'],
    ['x.d.only.example.net', 'A', 'd.only.example.net', 'only.example.net'],
    ['d.only.example.net', DS, 'd.only.example.net', 'only.example.net'],
  ] as const) {
    const m = ask(name, type);
    const label = `${name} ${type === DS ? 'DS' : type}`;
    t.equal(m.rcode, 0, label);
    check(m, label);
    if (type === 'A') t.same(m.authority.filter((r) => r.type === 2).map((r) => r.owner), [cut], `${label}: referred to ${cut}`);
    else t.same(m.answer.filter((r) => r.type === DS), [], `${label}: no DS`);
    t.notOk(m.authority.some((r) => r.type === DS), `${label}: no DS in the authority`);
    t.ok(matching(m, 'example.net'), `${label}: the closest provable encloser, example.net, matched`);
    t.equal(covering(m, nextCloser)?.flags, 1, `${label}: the next closer name ${nextCloser} covered by an Opt-Out NSEC3 (RFC 5155 §7.2.7, §7.2.4)`);
    t.notOk(matching(m, cut), `${label}: no NSEC3 of the cut`);
  }
  const only = ask('only.example.net', 'A');
  t.equal(only.rcode, 0, 'an empty non-terminal above only an unsigned delegation: NODATA');
  check(only, 'only.example.net A');
  t.ok(matching(only, 'example.net') && covering(only, 'only.example.net')?.flags === 1, 'its proof: the closest provable encloser and the Opt-Out NSEC3 covering it');
  const belowOnly = ask('x.only.example.net', 'A');
  t.equal(belowOnly.rcode, 3, 'a name below it that does not exist: NXDOMAIN');
  check(belowOnly, 'x.only.example.net A');
  t.ok(matching(belowOnly, 'example.net') && covering(belowOnly, 'only.example.net')?.flags === 1 && covering(belowOnly, '*.example.net'), 'from the closest provable encloser: next closer covered (Opt-Out), wildcard covered');

  // A secure delegation keeps its own NSEC3 and its referral its DS.
  const secure = ask('host.secure.example.net', 'A');
  t.same(secure.authority.map((r) => r.type), [2, 43, RRSIG], 'a delegation with DS: NS, DS, RRSIG(DS)');
  check(secure, 'secure referral');
  t.same(ask('secure.example.net', DS).answer.map((r) => r.type), [DS, RRSIG], 'its DS answered');

  // NXDOMAIN (the other proofs are the NSEC3 test's): each record's flag that of its span.
  const nx = ask('a.b.nope.example.net', 'A');
  t.equal(nx.rcode, 3);
  check(nx, 'NXDOMAIN');
  t.ok(matching(nx, 'example.net') && covering(nx, 'nope.example.net') && covering(nx, '*.example.net'), 'NXDOMAIN: closest encloser proof and wildcard covered (RFC 5155 §7.2.2)');
  t.equal(covering(nx, 'nope.example.net')!.flags, records.find((r) => spanCovers(r.owner, r.next, 'nope.example.net'))!.flags, 'the covering record as in the chain');
});

t.test('NSEC3 with opt-out: a wildcard empty non-terminal above only an unsigned delegation keeps its NSEC3 (RFC 4592 §4.9)', async (t) => {
  const keys = makeKeySet('example.net');
  const zones = signedZones(OPT_OUT_TEXT.replace('records:\n', 'records:\n  d.*.w: { NS: [ns.sub.example.net.] }\n'), keys, NOW);
  const chain = zones.zones.get('example.net')!.signatures!.chain;
  t.ok(chain.keys.includes(nsec3HashOf('*.w.example.net')) && chain.keys.includes(nsec3HashOf('w.example.net')), 'the wildcard and its parent in the chain');
  t.notOk(chain.keys.includes(nsec3HashOf('d.*.w.example.net')), 'not the delegation');
  const handler = new Handler(new Runtime(zones));
  const m = parseMessage(handler.handle(query('q.w.example.net', 'A', { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  t.equal(m.rcode, 0, 'the wildcard answers NODATA');
  const owners = m.authority.filter((r) => r.type === NSEC3).map((r) => r.owner.split('.')[0]);
  t.ok(owners.includes(nsec3HashOf('w.example.net')) && owners.includes(nsec3HashOf('*.w.example.net')), 'its proof: the closest encloser and the wildcard matched (RFC 5155 §7.2.5)');
  const dnskeys = parseMessage(handler.handle(query('example.net', 'DNSKEY', { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!).answer.filter((r) => r.type === DNSKEY);
  t.same(checkSignatures([...m.answer, ...m.authority], dnskeys), [], 'signed');
});

t.test('NSEC3 with opt-out, no unsigned delegation: the chain of NSEC3, flags 0', async (t) => {
  const text = TEXT.replace(/^ {2}(sub|ns\.sub|to-sub):.*\n/gm, '');
  const chainOf = (denial: string) => signedZones(text.replace('dnssec: true', `dnssec: { denial: ${denial} }`), makeKeySet('example.net'), NOW).zones.get('example.net')!.signatures!.chain;
  const [plain, optOut] = [chainOf('nsec3'), chainOf('nsec3-opt-out')];
  t.same(optOut.keys, plain.keys, 'the same names');
  t.same(optOut.nsec.map((set) => set.records[0].rdata), plain.nsec.map((set) => set.records[0].rdata), 'the same records: no span to opt out');
});

t.test('NSEC3: no empty non-terminal below a delegation point (RFC 5155 §7.1)', async (t) => {
  // Glue two labels below the cut: x.sub.example.net would be an empty non-terminal of the child.
  const text = TEXT.replace('sub: { NS: [ns.sub.example.net.] }', 'sub: { NS: [ns.x.sub.example.net.] }').replace('ns.sub: { A: [192.0.2.50] }', 'ns.x.sub: { A: [192.0.2.50] }');
  const zones = signedZones(text.replace('dnssec: true', 'dnssec: { denial: nsec3 }'), makeKeySet('example.net'), NOW);
  const zone = zones.zones.get('example.net')!;
  t.notOk(zone.emptyNonTerminals.has('x.sub.example.net'), 'not an empty non-terminal of the parent');
  const keys = zone.signatures!.chain.keys;
  t.notOk(keys.includes(nsec3HashOf('x.sub.example.net')), 'no NSEC3 for the name below the cut');
  t.ok(keys.includes(nsec3HashOf('sub.example.net')) && keys.includes(nsec3HashOf('ent.example.net')), 'the cut and the empty non-terminal above it keep theirs');
  const handler = new Handler(new Runtime(zones));
  const m = parseMessage(handler.handle(query('x.sub.example.net', 'A', { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  t.same(m.authority.filter((r) => r.type === 2).map((r) => r.owner), ['sub.example.net'], 'the name below the cut is referred');
  t.equal(m.additional.find((r) => r.type === 1)?.owner, 'ns.x.sub.example.net', 'with its glue');
});

t.test('a question whose label holds a dot: proved by its wire labels (RFC 4034 §6.1, RFC 5155 §5)', async (t) => {
  /** A DO=1 query of the name with these wire labels (a "." is a byte of its label). */
  const wireQuery = (labels: string[]): Buffer => {
    const q = query('a.example.net', 'A', { edns: { do: true } });
    const name = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
    return Buffer.concat([q.subarray(0, 12), name, q.subarray(12 + 'a.example.net'.length + 2)]);
  };
  const labels = ['zz.a', 'example', 'net'];
  const nsec = new Handler(new Runtime(signedZones(TEXT, makeKeySet('example.net'), NOW)));
  const m = parseMessage(nsec.handle(wireQuery(labels), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  t.equal(m.rcode, 3);
  // "zz.a" sorts after every other label under example.net: the last NSEC covers it, not the
  // apex's (where the labels "a", "zz\" would put it).
  const covering = m.authority.filter((r) => r.type === NSEC);
  t.ok(covering.some((r) => r.owner === 'www.example.net' && parseNsec(r.rdata).next === 'example.net'), 'the NSEC of the last name covers it', { owners: covering.map((r) => r.owner) });

  const nsec3 = new Handler(new Runtime(signedZones(TEXT.replace('dnssec: true', 'dnssec: { denial: nsec3 }'), makeKeySet('example.net'), NOW)));
  for (const first of ['zz.a', 'q.b', 'm.n', 'x\\.y', 'a.b.c']) {
    const asked = [first, 'example', 'net'];
    const m3 = parseMessage(nsec3.handle(wireQuery(asked), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
    t.equal(m3.rcode, 3);
    const wire = Buffer.concat([...asked.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
    const hash = base32hex(createHash('sha1').update(wire).digest());
    const covers = m3.authority.some((r) => {
      if (r.type !== NSEC3) return false;
      const own = r.owner.split('.')[0];
      const { next } = parseNsec3(r.rdata);
      return own < next ? own < hash && hash < next : hash > own || hash < next;
    });
    t.ok(covers, `${JSON.stringify(first)}: an NSEC3 covers the hash of its wire form (the next closer name)`);
  }
});

/** Every name of the fixture (data, empty non-terminal, cut, below a cut, wildcard, absent) and every type asked. */
const FIXTURE_NAMES = ['example.net', 'mx.example.net', 'big.example.net', 'www.example.net', 'dangling.example.net', 'to-secure.example.net', 'to-sub.example.net', 'ent.example.net', 'x.ent.example.net', 'a.wild.example.net', '*.wild.example.net', 'sub.example.net', 'ns.sub.example.net', 'host.sub.example.net', 'secure.example.net', 'ns.secure.example.net', 'pool.example.net', 'pair.example.net', 'east.example.net', 'west.example.net', 'north.example.net', 'nope.example.net', 'a.b.x.ent.example.net', 'other.test'];
const FIXTURE_TYPES = ['A', 'AAAA', 'MX', 'TXT', 'NS', 'SOA', 'CNAME', 'ANY', 43, 47];

t.test('a signed zone answers DO=0 byte for byte as the same zone unsigned', async (t) => {
  const signed = new Runtime(signedZones(TEXT, makeKeySet('example.net'), NOW));
  // Loaded at the same moment as the signed one (signedZones): the same default SOA serial.
  const loaded = parseZoneText(TEXT.replace('dnssec: true', ''), 'zones/signed.yaml');
  if ('problems' in loaded) throw new Error('parse');
  const unsigned = new Runtime(makeZoneSet(compileZoneFiles([{ ...loaded, loadedAt: NOW }]).zones));
  for (const prebuilt of [true, false]) {
    const env = { now: () => NOW, random: () => 0.5 };
    const a = new Handler(signed, env, {}, { prebuilt });
    const b = new Handler(unsigned, env, {}, { prebuilt });
    let compared = 0;
    for (const name of FIXTURE_NAMES) {
      for (const type of FIXTURE_TYPES) {
        for (const edns of [undefined, { do: false }]) {
          for (const transport of ['udp', 'tcp'] as const) {
            const q = query(name, type, edns === undefined ? {} : { edns });
            const ctx = { transport, clientAddress: '192.0.2.1' };
            const x = a.handle(q, ctx)!;
            const y = b.handle(q, ctx)!;
            if (!x.equals(y)) t.fail(`${prebuilt ? 'fast' : 'general'}: ${name} ${type} ${transport} ${edns === undefined ? 'no EDNS' : 'DO=0'}`, { signed: x.toString('hex'), unsigned: y.toString('hex') });
            compared++;
          }
        }
      }
    }
    t.equal(compared, FIXTURE_NAMES.length * FIXTURE_TYPES.length * 4, `${prebuilt ? 'fast' : 'general'} path: every reply compared`);
  }
});

t.test("an unsigned zone answers DO=1 as DO=0 but for the OPT's DO bit", async (t) => {
  const runtime = new Runtime(compileText(TEXT.replace('dnssec: true', '')));
  for (const prebuilt of [true, false]) {
    const handler = new Handler(runtime, { now: () => NOW, random: () => 0.5 }, {}, { prebuilt });
    for (const name of FIXTURE_NAMES) {
      for (const type of FIXTURE_TYPES) {
        const ctx = { transport: 'udp' as const, clientAddress: '192.0.2.1' };
        const plain = handler.handle(query(name, type, { edns: { do: false } }), ctx)!;
        const dnssecOk = handler.handle(query(name, type, { edns: { do: true } }), ctx)!;
        const label = `${prebuilt ? 'fast' : 'general'}: ${name} ${type}`;
        const differ: number[] = [];
        for (let i = 0; i < Math.max(plain.length, dnssecOk.length); i++) if (plain[i] !== dnssecOk[i]) differ.push(i);
        const at = differ[0];
        // The DO bit: the high bit of the OPT's flags, 7 bytes into the OPT record (root name, type 41, class, extended RCODE, version).
        const isDoBit = differ.length === 1 && plain.length === dnssecOk.length && (plain[at] ^ dnssecOk[at]) === 0x80 && dnssecOk[at - 7] === 0 && dnssecOk.readUInt16BE(at - 6) === 41;
        t.ok(isDoBit, `${label}: only the DO bit differs`, { differ });
      }
    }
  }
});
