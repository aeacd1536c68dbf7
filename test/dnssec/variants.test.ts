/**
 * What signing costs a query: nothing for the answers prepared at load (every Pool/Group/Site
 * choice up to the bound, the NSEC chain a random-name flood hits), a bounded cache past it.
 */
import t from 'tap';
import { compileZoneFiles, makeZoneSet } from '../../src/config/compile.js';
import { parseZoneText } from '../../src/config/load.js';
import { MAX_VARIANTS_PER_FAMILY, VARIANT_CACHE_SIZE } from '../../src/dnssec/sign-zone.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { query } from '../helpers/dns.js';
import { makeSnapshot } from '../../src/state/snapshot.js';
import { checkSignatures, DNSKEY, makeKeySet, parseMessage, RRSIG, type Message } from '../helpers/dnssec.js';

function zoneWith(sites: number, answers: number, policy = 'random'): string {
  const list = Array.from({ length: sites }, (_, i) => `  s${String(i).padStart(2, '0')}: { addresses: [192.0.2.${i + 1}] }`).join('\n');
  return `zone: example.net
soa: { mname: ns1.example.net, rname: hostmaster.example.net }
nameservers: { ns1.example.net: [192.0.2.200] }
sites:
${list}
pool: { name: pool, policy: ${policy}, answers: ${answers} }
dnssec: true
`;
}

function serve(text: string, randoms: number[]) {
  const loaded = parseZoneText(text, 'zones/v.yaml');
  if ('problems' in loaded) throw new Error('parse');
  const keys = makeKeySet('example.net');
  const compiled = compileZoneFiles([loaded], { keysFor: () => keys, now: () => Date.now() });
  if (compiled.problems.length > 0) throw new Error(JSON.stringify(compiled.problems));
  const zones = makeZoneSet(compiled.zones);
  let i = 0;
  const runtime = new Runtime(zones);
  const handler = new Handler(runtime, { now: () => Date.now(), random: () => randoms[i++ % randoms.length] });
  const ask = (name: string, type = 'A'): Message => parseMessage(handler.handle(query(name, type, { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  const dnskeys = ask('example.net', 'DNSKEY').answer.filter((r) => r.type === DNSKEY);
  return { zone: zones.zones.get('example.net')!, ask, dnskeys, runtime };
}

t.test('answers: N within the bound: every combination signed at load', async (t) => {
  const { zone, ask, dnskeys } = serve(zoneWith(5, 2), [0.1, 0.5, 0.9, 0.3, 0.7]);
  // 5 sites alone, all 5 together, 10 pairs.
  t.equal(zone.signatures!.variants.get('pool.example.net')!.size, 5 + 1 + 10);
  for (let i = 0; i < 20; i++) {
    const m = ask('pool.example.net');
    t.equal(m.answer.filter((r) => r.type === 1).length, 2, 'two sites');
    t.same(checkSignatures(m.answer, dnskeys), []);
  }
});

t.test('answers: 3 of 10 sites: every answer of the steady state and of one site down signed at load', async (t) => {
  const draws = Array.from({ length: 40 }, (_, i) => (i + 0.5) / 40);
  for (const policy of ['first', 'round-robin', 'random', 'weighted']) {
    const { zone, ask, runtime } = serve(zoneWith(10, 3, policy), draws);
    const variants = zone.signatures!.variants.get('pool.example.net')!;
    t.ok(variants.size <= 2 * MAX_VARIANTS_PER_FAMILY, `${policy}: ${variants.size} signed at load`);
    const seen = new Set<string>();
    for (const down of [-1, ...Array.from({ length: 10 }, (_, i) => i)]) {
      const states = down < 0 ? new Map() : new Map([[`example.net/s${String(down).padStart(2, '0')}`, { up: false }]]);
      runtime.publishState(makeSnapshot(states, true));
      for (let i = 0; i < draws.length; i++) {
        const ids = ask('pool.example.net').answer.filter((r) => r.type === 1).map((r) => `s${String(r.rdata[3] - 1).padStart(2, '0')}`);
        t.equal(ids.length, 3);
        const key = `4:${ids.sort().join(',')}`;
        seen.add(key);
        if (!variants.has(key)) t.fail(`${policy}, ${down < 0 ? 'all up' : `s${down} down`}: ${key} signed on the query path`);
      }
    }
    t.ok(seen.size >= (policy === 'first' ? 4 : 30), `${policy}: ${seen.size} distinct answers, each signed at load`);
  }
});

t.test('past the bound: combinations signed on first use, kept in a bounded cache', async (t) => {
  const { zone, ask, dnskeys } = serve(zoneWith(20, 3), [0.11, 0.52, 0.93, 0.34, 0.75, 0.16, 0.57]);
  const variants = zone.signatures!.variants.get('pool.example.net')!;
  t.ok(variants.size <= MAX_VARIANTS_PER_FAMILY, `${variants.size} signed at load`);
  const seen = new Map<string, string>();
  for (let i = 0; i < 30; i++) {
    const m = ask('pool.example.net');
    t.equal(m.answer.filter((r) => r.type === 1).length, 3, 'three sites');
    t.same(checkSignatures(m.answer, dnskeys), [], 'the answer signed on demand validates');
    const set = m.answer.filter((r) => r.type === 1).map((r) => r.rdata.toString('hex')).sort().join();
    const sig = m.answer.find((r) => r.type === RRSIG)!.rdata.toString('hex');
    if (seen.has(set)) t.equal(sig, seen.get(set), 'the same set: the cached signature, not a new one');
    seen.set(set, sig);
  }
});

t.test('the signatures made on first use stay within VARIANT_CACHE_SIZE, the oldest made out first', async (t) => {
  const { zone } = serve(zoneWith(3, 1), [0.5]);
  const signatures = zone.signatures!;
  const name = zone.dynamicNames.find((d) => d.name === 'pool.example.net')!;
  // A flood of distinct answers (as many sites answering N would give), each a one-address A RRset.
  const answer = (i: number) => {
    const record = { owner: name.name, type: 1, ttl: 0, rdata: [Buffer.from([10, (i >> 16) & 255, (i >> 8) & 255, i & 255])] };
    return { owner: name.name, type: 1, ttl: 0, records: [record] };
  };
  const sign = (i: number): Buffer => Buffer.concat(signatures.signVariant(name, 4, `4:flood${i}`, answer(i)).records[0].rdata.filter((part): part is Buffer => Buffer.isBuffer(part)));
  const first = sign(0);
  for (let i = 1; i < VARIANT_CACHE_SIZE; i++) sign(i);
  t.ok(sign(0).equals(first), 'with the cache full, the first answer is still kept');
  sign(VARIANT_CACHE_SIZE);
  t.notOk(sign(0).equals(first), 'one more: the first made is made out, signed again');
  // ECDSA signatures differ at every signing: a second 1,024 distinct answers make every earlier one out.
  const made = Array.from({ length: 8 }, (_, i) => sign(VARIANT_CACHE_SIZE + 1 + i));
  for (let i = 0; i < VARIANT_CACHE_SIZE; i++) sign(10 * VARIANT_CACHE_SIZE + i);
  t.ok(made.every((rdata, i) => !sign(VARIANT_CACHE_SIZE + 1 + i).equals(rdata)), 'past the bound nothing older is kept');
});

t.test('a random-name flood costs no signature: every NXDOMAIN proof was signed at load', async (t) => {
  const { ask, dnskeys } = serve(zoneWith(3, 1), [0.5]);
  // ECDSA signatures differ at every signing (RFC 6979 is not used): equal RRSIG bytes across
  // answers mean the records were made once, at load.
  const signatures = new Map<string, string>();
  for (let i = 0; i < 300; i++) {
    const m = ask(`r${(i * 2654435761) % 100000}.example.net`);
    t.equal(m.rcode, 3);
    if (i < 3) t.same(checkSignatures(m.authority, dnskeys), []);
    for (const r of m.authority) {
      if (r.type !== RRSIG) continue;
      const key = `${r.owner}/${r.rdata.readUInt16BE(0)}`;
      const known = signatures.get(key);
      if (known !== undefined && known !== r.rdata.toString('hex')) t.fail(`${key} signed again`);
      signatures.set(key, r.rdata.toString('hex'));
    }
  }
  t.ok(signatures.size <= 8, `${signatures.size} distinct RRSIGs over 300 random names`);
});
