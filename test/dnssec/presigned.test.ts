/**
 * Signatures made by one thread and adopted by another (dnssec/signature-bytes.ts): a compile
 * given matching signatures serves exactly them; any mismatch (another file text, signing time or
 * key set, or a count that is not the signing's) signs afresh, and what it signs validates.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { compileZone, makeZoneSet } from '../../src/config/compile.js';
import { parseZoneText, type LoadedZoneFile } from '../../src/config/load.js';
import type { ZoneSigning } from '../../src/dnssec/signature-bytes.js';
import type { ZoneKeySet } from '../../src/dnssec/types.js';
import type { ZoneModel, ZoneSignatureBytes } from '../../src/model/zone-model.js';
import { rrsetKey } from '../../src/model/signatures.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { query } from '../helpers/dns.js';
import { answerProblems, makeKeySet, parseMessage } from '../helpers/dnssec.js';

const TEXT = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');
const NOW = Date.UTC(2026, 11, 1);

function loaded(text = TEXT): LoadedZoneFile {
  const file = parseZoneText(text, 'zones/signed.yaml');
  if ('problems' in file) throw new Error('fixture does not parse');
  // One default serial for every compile of the test, as one load gives every thread (else two
  // compiles a second apart sign different SOAs).
  return { ...file, loadedAt: NOW };
}

/** Compiles the fixture with `signing`; its signatures as bytes, and whether they are the ones shipped. */
function compiled(keys: ZoneKeySet, signing: Partial<ZoneSigning>, text = TEXT): { zone: ZoneModel; bytes: ZoneSignatureBytes; adopted: boolean } {
  const zone = compileZone(loaded(text), { keysFor: () => keys, now: () => NOW, digest: 'digest-a', ...signing });
  if ('problems' in zone) throw new Error('fixture does not compile');
  return { zone, bytes: zone.signatures!.bytes, adopted: zone.signatures!.bytes === signing.presigned };
}

/** The signature field of the SOA's RRSIG. */
const soaSignature = (zone: ZoneModel) => Buffer.from(zone.signatures!.rrsigs.get(rrsetKey('example.net', 6))!.records[0].rdata[2] as Buffer);

/** Problems validating the DNSKEY, SOA, MX, NXDOMAIN and Pool answers with DO=1 (none: all verify). */
function validationProblems(zone: ZoneModel): string[] {
  const handler = new Handler(new Runtime(makeZoneSet([zone])), undefined, {}, { prebuilt: false });
  const ask = (name: string, type: string) => parseMessage(handler.handle(query(name, type, { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  return answerProblems(ask, 'example.net', [['example.net', 'DNSKEY'], ['example.net', 'SOA'], ['example.net', 'MX'], ['nope.example.net', 'A'], ['pool.example.net', 'A']]);
}

t.test('matching signatures are adopted: the same bytes, no signing', async (t) => {
  const keys = makeKeySet('example.net');
  const first = compiled(keys, {});
  t.equal(first.adopted, false, 'made here');
  t.ok(first.bytes.count > 20, `every RRSIG recorded (${first.bytes.count})`);
  const again = compiled(keys, { presigned: first.bytes });
  t.equal(again.adopted, true, 'adopted: the zone holds the shipped bytes');
  t.same(soaSignature(again.zone), soaSignature(first.zone), 'the same RRSIG bytes (ECDSA signing again would make others)');
  t.ok((again.zone.signatures!.rrsigs.get(rrsetKey('example.net', 6))!.records[0].rdata[2] as Buffer).buffer instanceof SharedArrayBuffer, 'a view of the shipped memory');
  t.same(validationProblems(again.zone), [], 'and they validate');
});

t.test('any mismatch signs afresh, and that validates', async (t) => {
  const keys = makeKeySet('example.net');
  const first = compiled(keys, {});
  const made = first.bytes;
  const cases: [string, ZoneKeySet, Partial<ZoneSigning>, string?][] = [
    // Signatures over another SOA (a serial), all else alike: the first few are verified.
    ['a zone compiled differently', keys, { presigned: made }, TEXT.replace('minimum: 30 }', 'minimum: 30, serial: 7 }')],
    ['another file text', keys, { presigned: made, digest: 'digest-b' }],
    ['no digest to compare', keys, { presigned: made, digest: undefined }],
    ['another signing time', keys, { presigned: made, now: () => NOW + 1000 }],
    ['another key set', makeKeySet('example.net'), { presigned: made }],
    ['one signature short', keys, { presigned: { ...made, count: made.count - 1 } }],
    ['one signature too many', keys, { presigned: { ...made, count: made.count + 1 } }],
  ];
  for (const [label, keySet, signing, text] of cases) {
    const result = compiled(keySet, signing, text);
    t.equal(result.adopted, false, `${label}: signed here`);
    t.not(result.bytes, made, `${label}: its own signatures recorded`);
    t.equal(result.bytes.count, made.count, `${label}: as many as the signing makes`);
    t.notSame(soaSignature(result.zone), soaSignature(first.zone), `${label}: not the shipped bytes`);
    t.same(validationProblems(result.zone), [], `${label}: what it signed validates`);
  }
});

t.test('a signature past the apex that does not verify is caught: one per chunk and the last are verified', async (t) => {
  const keys = makeKeySet('example.net');
  const records = Array.from({ length: 1500 }, (_, i) => `  host${i}: { A: [198.51.100.${i % 250}] }`).join('\n');
  const text = TEXT.replace(/\nrecords:\n/, `\nrecords:\n${records}\n`);
  const first = compiled(keys, {}, text);
  t.ok(first.bytes.count > 1024, `more than one chunk of signatures (${first.bytes.count})`);
  /** The shipped bytes, copied, with signature `index` flipped (none: null). */
  const tampered = (index: number | null): ZoneSignatureBytes => {
    const chunks = first.bytes.chunks.map((chunk) => {
      const copy = new SharedArrayBuffer(chunk.byteLength);
      new Uint8Array(copy).set(new Uint8Array(chunk));
      return copy;
    });
    if (index !== null) new Uint8Array(chunks[Math.floor(index / 1024)])[(index % 1024) * 64] ^= 0xff;
    return { ...first.bytes, chunks };
  };
  t.equal(compiled(keys, { presigned: tampered(null) }, text).adopted, true, 'an untouched copy is adopted');
  for (const [label, index] of [['the last of the first chunk', 1023], ['the very last', first.bytes.count - 1]] as const) {
    const result = compiled(keys, { presigned: tampered(index) }, text);
    t.equal(result.adopted, false, `${label}: signed here instead`);
  }
});
