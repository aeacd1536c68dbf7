/**
 * DNSSEC test helpers: signing keys made with node:crypto (key tag from src/dnssec/dnskey.ts), a
 * small wire reader that keeps each record's RDATA in canonical form, and an RRSIG verifier
 * written from RFC 4034 §3.1.8.1 with node:crypto, independent of src/dnssec/sign.ts.
 */
import { createHash, createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import type { SigningKey, ZoneKeySet } from '../../src/dnssec/types.js';
import { compileZoneFiles, makeZoneSet } from '../../src/config/compile.js';
import { parseZoneText } from '../../src/config/load.js';
import type { ZoneSet } from '../../src/model/zone-model.js';
import { dnskeyBytes as dnskeyOf, keyTag } from '../../src/dnssec/dnskey.js';
export { dsDigest } from '../../src/dnssec/dnskey.js';

/** One zone file's text compiled and signed with `keys` at `now`, as a zone set. */
export function signedZones(text: string, keys: ZoneKeySet, now: number): ZoneSet {
  const loaded = parseZoneText(text, 'zones/signed.yaml');
  if ('problems' in loaded) throw new Error(JSON.stringify(loaded.problems));
  // Loaded at the signing time: the default SOA serial is that second, whenever the test runs.
  const compiled = compileZoneFiles([{ ...loaded, loadedAt: now }], { keysFor: () => keys, now: () => now });
  if (compiled.problems.length > 0) throw new Error(JSON.stringify(compiled.problems));
  return makeZoneSet(compiled.zones);
}

export const RRSIG = 46;
export const NSEC = 47;
export const DNSKEY = 48;
export const NSEC3 = 50;
export const DS = 43;
export const CDS = 59;
export const CDNSKEY = 60;

export function dnskeyBytes(flags: number, algorithm: number, publicKey: Buffer): Buffer {
  return dnskeyOf({ flags, algorithm, publicKey });
}

export function makeKey(algorithm: 13 | 15 = 13, flags: 256 | 257 = 257): SigningKey {
  const pair = algorithm === 13 ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const jwk = pair.publicKey.export({ format: 'jwk' });
  const publicKey = algorithm === 13 ? Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]) : Buffer.from(jwk.x!, 'base64url');
  return { keyTag: keyTag(dnskeyBytes(flags, algorithm, publicKey)), algorithm, flags, publicKey, privateKey: pair.privateKey, file: `test-key-${algorithm}-${flags}` };
}

/** A key set for `zone`: one CSK, or a KSK and a ZSK. */
export function makeKeySet(zone: string, algorithm: 13 | 15 = 13, kind: 'csk' | 'ksk+zsk' = 'csk'): ZoneKeySet {
  if (kind === 'csk') {
    const csk = makeKey(algorithm, 257);
    return { zone, published: [csk], zoneSigning: [csk], keySigning: [csk], parentSignals: [csk], nextChangeAt: Infinity };
  }
  const ksk = makeKey(algorithm, 257);
  const zsk = makeKey(algorithm, 256);
  return { zone, published: [ksk, zsk], zoneSigning: [zsk], keySigning: [ksk], parentSignals: [ksk], nextChangeAt: Infinity };
}

/** The public key of a DNSKEY as node:crypto wants it (RFC 6605 §4, RFC 8080 §3). */
export function publicKeyObject(algorithm: number, key: Buffer): KeyObject {
  if (algorithm === 13) {
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: key.subarray(0, 32).toString('base64url'), y: key.subarray(32).toString('base64url') }, format: 'jwk' });
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.toString('base64url') }, format: 'jwk' });
}

// ---------------------------------------------------------------------------------------------

export interface WireRR {
  owner: string;
  type: number;
  ttl: number;
  /** RDATA with every name uncompressed and lower case (RFC 4034 §6.2). */
  rdata: Buffer;
}

export interface Message {
  flags: number;
  rcode: number;
  answer: WireRR[];
  authority: WireRR[];
  additional: WireRR[];
}

export function nameWire(name: string): Buffer {
  const parts: Buffer[] = [];
  if (name.length > 0) for (const l of name.toLowerCase().split('.')) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function readName(buf: Buffer, at: number): [string, number] {
  const labels: string[] = [];
  let pos = at;
  let end = -1;
  for (let hops = 0; hops < 128; hops++) {
    const len = buf[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return [labels.join('.').toLowerCase(), end];
    }
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1];
      continue;
    }
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new Error('name loop');
}

/** Names inside RDATA, by type: [offset of fixed bytes before, names...] as a layout. */
function canonical(buf: Buffer, type: number, start: number, end: number): Buffer {
  const names = (from: number, count: number): [Buffer[], number] => {
    const out: Buffer[] = [];
    let pos = from;
    for (let i = 0; i < count; i++) {
      const [n, next] = readName(buf, pos);
      out.push(nameWire(n));
      pos = next;
    }
    return [out, pos];
  };
  switch (type) {
    case 2: // NS
    case 5: // CNAME
    case 12: {
      const [n] = names(start, 1);
      return n[0];
    }
    case 6: {
      const [n, pos] = names(start, 2);
      return Buffer.concat([...n, buf.subarray(pos, end)]);
    }
    case 15: {
      const [n] = names(start + 2, 1);
      return Buffer.concat([buf.subarray(start, start + 2), n[0]]);
    }
    default:
      return Buffer.from(buf.subarray(start, end));
  }
}

export function parseMessage(buf: Buffer): Message {
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)];
  let pos = 12;
  for (let i = 0; i < counts[0]; i++) pos = readName(buf, pos)[1] + 4;
  const sections: WireRR[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]; i++) {
      const [owner, next] = readName(buf, pos);
      const type = buf.readUInt16BE(next);
      const ttl = buf.readUInt32BE(next + 4);
      const rdlength = buf.readUInt16BE(next + 8);
      const start = next + 10;
      pos = start + rdlength;
      if (type === 41) continue;
      sections[s].push({ owner, type, ttl, rdata: canonical(buf, type, start, pos) });
    }
  }
  return { flags: buf.readUInt16BE(2), rcode: buf.readUInt16BE(2) & 0xf, answer: sections[0], authority: sections[1], additional: sections[2] };
}

export interface Rrsig {
  typeCovered: number;
  algorithm: number;
  labels: number;
  originalTtl: number;
  expiration: number;
  inception: number;
  keyTag: number;
  signer: string;
  signature: Buffer;
  /** RDATA before the signature (RFC 4034 §3.1.8.1). */
  signedPart: Buffer;
}

export function parseRrsig(rdata: Buffer): Rrsig {
  const [signer, end] = readName(rdata, 18);
  return {
    typeCovered: rdata.readUInt16BE(0),
    algorithm: rdata[2],
    labels: rdata[3],
    originalTtl: rdata.readUInt32BE(4),
    expiration: rdata.readUInt32BE(8),
    inception: rdata.readUInt32BE(12),
    keyTag: rdata.readUInt16BE(16),
    signer,
    signature: rdata.subarray(end),
    signedPart: rdata.subarray(0, end),
  };
}

/**
 * Verifies `sig` over the records of `set` (one owner and type) with the DNSKEY records `keys`;
 * returns a reason when it does not verify, null when it does. A wildcard expansion (RRSIG labels
 * fewer than the owner's) is verified over `*.` + the owner's last `labels` labels (RFC 4035 §5.3.2).
 */
export function verifyRrsig(sig: Rrsig, set: WireRR[], keys: WireRR[]): string | null {
  if (set.length === 0) return 'no records';
  const key = keys.find((k) => keyTag(k.rdata) === sig.keyTag && k.rdata[3] === sig.algorithm);
  if (key === undefined) return `no DNSKEY with tag ${sig.keyTag}`;
  const ownerLabels = set[0].owner.split('.');
  const owner = sig.labels < ownerLabels.length ? ['*', ...ownerLabels.slice(ownerLabels.length - sig.labels)].join('.') : set[0].owner;
  const rdatas = [...new Set(set.map((r) => r.rdata.toString('hex')))].map((h) => Buffer.from(h, 'hex')).sort(Buffer.compare);
  const parts: Buffer[] = [sig.signedPart];
  for (const rdata of rdatas) {
    const head = Buffer.alloc(10);
    head.writeUInt16BE(set[0].type, 0);
    head.writeUInt16BE(1, 2);
    head.writeUInt32BE(sig.originalTtl, 4);
    head.writeUInt16BE(rdata.length, 8);
    parts.push(nameWire(owner), head, rdata);
  }
  const data = Buffer.concat(parts);
  const publicKey = publicKeyObject(sig.algorithm, key.rdata.subarray(4));
  const ok = sig.algorithm === 13 ? verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig.signature) : verify(null, data, publicKey, sig.signature);
  return ok ? null : 'signature does not verify';
}

/**
 * Every RRset of `records` checked: each has an RRSIG that verifies (except `unsigned` types,
 * e.g. NS and glue of a referral), and every RRSIG verifies. Returns the problems found.
 */
export function checkSignatures(records: WireRR[], keys: WireRR[], unsigned: (rr: WireRR) => boolean = () => false): string[] {
  const problems: string[] = [];
  const sets = new Map<string, WireRR[]>();
  for (const rr of records) {
    if (rr.type === RRSIG) continue;
    const k = `${rr.owner}/${rr.type}`;
    sets.set(k, [...(sets.get(k) ?? []), rr]);
  }
  for (const [k, set] of sets) {
    const sigs = records.filter((r) => r.type === RRSIG && r.owner === set[0].owner).map((r) => parseRrsig(r.rdata)).filter((s) => s.typeCovered === set[0].type);
    if (sigs.length === 0) {
      if (!unsigned(set[0])) problems.push(`${k}: no RRSIG`);
      continue;
    }
    for (const sig of sigs) {
      const why = verifyRrsig(sig, set, keys);
      if (why !== null) problems.push(`${k}: ${why}`);
    }
  }
  return problems;
}

/**
 * The problems (checkSignatures) of the DO=1 answers `ask` gives to `questions` ([name, type]),
 * checked against the DNSKEY RRset it answers for `origin`; none: every answer verifies.
 */
export function answerProblems(ask: (name: string, type: string) => Message, origin: string, questions: readonly (readonly [string, string])[]): string[] {
  const dnskeys = ask(origin, 'DNSKEY').answer.filter((r) => r.type === DNSKEY);
  if (dnskeys.length === 0) return ['no DNSKEY'];
  return questions.flatMap(([name, type]) => {
    const m = ask(name, type);
    return checkSignatures([...m.answer, ...m.authority], dnskeys).map((p) => `${name} ${type}: ${p}`);
  });
}

/** NSEC RDATA: next owner name and the types of its bitmap (RFC 4034 §4.1). */
export function parseNsec(rdata: Buffer): { next: string; types: number[] } {
  const [next, end] = readName(rdata, 0);
  return { next, types: bitmapTypes(rdata, end) };
}

export function bitmapTypes(rdata: Buffer, from: number): number[] {
  const types: number[] = [];
  for (let pos = from; pos < rdata.length; ) {
    const window = rdata[pos];
    const len = rdata[pos + 1];
    for (let i = 0; i < len; i++) {
      for (let b = 0; b < 8; b++) if (rdata[pos + 2 + i] & (0x80 >> b)) types.push(window * 256 + i * 8 + b);
    }
    pos += 2 + len;
  }
  return types;
}

/** RFC 4648 §7: base32hex, lower case, no padding. */
export function base32hex(bytes: Buffer): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuv';
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out;
}

/** RFC 5155 §5 (no extra iterations, empty salt): base32hex of SHA-1 of the name's wire form. */
export function nsec3HashOf(name: string): string {
  return base32hex(createHash('sha1').update(nameWire(name)).digest());
}

/** NSEC3 RDATA (RFC 5155 §3.2): flags, iterations, salt, next hashed owner (base32hex) and types. */
export function parseNsec3(rdata: Buffer): { flags: number; iterations: number; salt: Buffer; next: string; types: number[] } {
  const saltLength = rdata[4];
  const hashLength = rdata[5 + saltLength];
  const next = base32hex(rdata.subarray(6 + saltLength, 6 + saltLength + hashLength));
  return { flags: rdata[1], iterations: rdata.readUInt16BE(2), salt: rdata.subarray(5, 5 + saltLength), next, types: bitmapTypes(rdata, 6 + saltLength + hashLength) };
}
