/** RRSIG over an RRset (RFC 4034 §3, §6), checked by an independent verifier (test/helpers/dnssec.ts). */
import t from 'tap';
import { canonicalRdata, labelCount, signatureWindow, signRRset } from '../../src/dnssec/sign.js';
import { canonicalKey } from '../../src/model/signatures.js';
import { ipv4Rdata, mxRdata, txtRdata, type WireRecord } from '../../src/dns/records.js';
import { dnskeyBytes, makeKey, parseRrsig, verifyRrsig, type WireRR } from '../helpers/dnssec.js';

const asWire = (r: WireRecord): WireRR => ({ owner: r.owner, type: r.type, ttl: r.ttl, rdata: canonicalRdata(r.rdata) });
const NOW = Date.UTC(2026, 0, 1);
const window = signatureWindow(NOW, 14 * 86_400_000);

for (const algorithm of [13, 15] as const) {
  t.test(`algorithm ${algorithm}: the signature verifies over the set in any order`, async (t) => {
    const key = makeKey(algorithm);
    const dnskey: WireRR = { owner: 'example.net', type: 48, ttl: 300, rdata: dnskeyBytes(key.flags, key.algorithm, key.publicKey) };
    const rdatas = [ipv4Rdata('192.0.2.2'), ipv4Rdata('192.0.2.1'), ipv4Rdata('192.0.2.3')];
    const rrsig = signRRset({ owner: 'www.example.net', type: 1, ttl: 300, rdatas }, key, 'example.net', window);
    const sig = parseRrsig(canonicalRdata(rrsig.rdata));
    t.equal(sig.algorithm, algorithm);
    t.equal(sig.keyTag, key.keyTag);
    t.equal(sig.signer, 'example.net');
    t.equal(sig.labels, 3);
    t.equal(sig.originalTtl, 300);
    t.equal(sig.inception, NOW / 1000 - 3600, 'inception an hour in the past');
    t.equal(sig.expiration, sig.inception + 14 * 86400);
    t.equal(sig.signature.length, 64, 'RFC 6605 §4 / RFC 8080 §3: 64 bytes');
    const records = rdatas.map((rdata) => ({ owner: 'www.example.net', type: 1, ttl: 300, rdata: canonicalRdata(rdata) }));
    t.equal(verifyRrsig(sig, records, [dnskey]), null);
    t.equal(verifyRrsig(sig, [...records].reverse(), [dnskey]), null, 'order does not matter');
    t.equal(verifyRrsig(sig, [...records, records[0]], [dnskey]), null, 'duplicates count once');
    t.equal(verifyRrsig(sig, records.slice(1), [dnskey]), 'signature does not verify', 'another set does not verify');
    const other = makeKey(algorithm);
    const otherKey: WireRR = { ...dnskey, rdata: dnskeyBytes(other.flags, other.algorithm, other.publicKey) };
    t.not(verifyRrsig({ ...sig, keyTag: other.keyTag }, records, [otherKey]), null, 'another key does not verify');
  });
}

t.test('names in RDATA are signed uncompressed, original TTL as given', async (t) => {
  const key = makeKey(13);
  const dnskey: WireRR = { owner: 'example.net', type: 48, ttl: 300, rdata: dnskeyBytes(key.flags, key.algorithm, key.publicKey) };
  const rdatas = [mxRdata(10, 'mx.example.net'), mxRdata(20, 'mx2.example.net')];
  const rrsig = signRRset({ owner: 'example.net', type: 15, ttl: 60, rdatas }, key, 'example.net', window, 3600);
  const sig = parseRrsig(canonicalRdata(rrsig.rdata));
  t.equal(sig.originalTtl, 3600);
  t.equal(rrsig.ttl, 60, 'the RRSIG carries the RRset TTL');
  t.equal(verifyRrsig(sig, rdatas.map((rdata) => ({ owner: 'example.net', type: 15, ttl: 60, rdata: canonicalRdata(rdata) })), [dnskey]), null);
});

t.test('a wildcard owner signs with its labels minus the asterisk (RFC 4034 §3.1.3)', async (t) => {
  t.equal(labelCount('*.cdn.example.net'), 3);
  t.equal(labelCount('www.example.net'), 3);
  t.equal(labelCount(''), 0);
  const key = makeKey(15);
  const dnskey: WireRR = { owner: 'example.net', type: 48, ttl: 300, rdata: dnskeyBytes(key.flags, key.algorithm, key.publicKey) };
  const rrsig = signRRset({ owner: '*.cdn.example.net', type: 16, ttl: 300, rdatas: [txtRdata(['wild'])] }, key, 'example.net', window);
  const sig = parseRrsig(canonicalRdata(rrsig.rdata));
  // A validator checks the expansion against `*.` + the last `labels` labels of the name asked.
  t.equal(verifyRrsig(sig, [asWire({ owner: 'a.b.cdn.example.net', type: 16, ttl: 300, rdata: txtRdata(['wild']) })], [dnskey]), null);
});

t.test('canonical order (RFC 4034 §6.1)', async (t) => {
  const names = ['example', 'a.example', 'yljkjljk.a.example', 'z.a.example', 'zabc.a.example', 'z.example', '\u0001.z.example', '*.z.example', '\u00c8.z.example'];
  const shuffled = [...names].reverse();
  t.same(shuffled.sort((a, b) => (canonicalKey(a) < canonicalKey(b) ? -1 : 1)), names);
});
