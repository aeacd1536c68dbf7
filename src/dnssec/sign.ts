/**
 * RRSIG records (RFC 4034 §3) over an RRset: the canonical form and order of RFC 4034 §6, signed
 * with ECDSA P-256 SHA-256 (RFC 6605 §4: r | s, 64 bytes) or Ed25519 (RFC 8080 §4). Pure apart
 * from the signature itself; callers choose the key and the validity window.
 */
import { sign } from 'node:crypto';
import type { Rdata, WireRecord } from '../dns/records.js';
import { DNSSEC_TYPE } from '../dns/constants.js';
import { encodeName } from '../dns/encode.js';
import type { SigningKey } from './types.js';


/**
 * Signatures start an hour in the past so that a validator whose clock runs a little behind
 * accepts them at once (RFC 6781 §4.4.2.2: inception before the signing time, for clock skew).
 */
export const INCEPTION_SKEW_MS = 3_600_000;

/** A signature's validity: RRSIG inception and expiration, seconds since the epoch. */
export interface SignatureWindow {
  readonly inception: number;
  readonly expiration: number;
}

export function signatureWindow(nowMs: number, validityMs: number): SignatureWindow {
  const inception = Math.floor((nowMs - INCEPTION_SKEW_MS) / 1000);
  return { inception, expiration: inception + Math.floor(validityMs / 1000) };
}

/** RFC 4034 §3.1.3: labels of the owner without the root and without a leading `*` label. */
export function labelCount(owner: string): number {
  if (owner.length === 0) return 0;
  let n = 1;
  for (let i = 0; i < owner.length; i++) if (owner.charCodeAt(i) === 0x2e) n++;
  return owner === '*' || owner.startsWith('*.') ? n - 1 : n;
}

/**
 * RFC 4034 §6.2: RDATA in canonical form: names uncompressed and lower case (every type with a
 * name in its RDATA that zones here hold is in §6.2's list; compiled names are lower case).
 */
export function canonicalRdata(rdata: Rdata): Buffer {
  if (rdata.length === 1 && Buffer.isBuffer(rdata[0])) return rdata[0];
  return Buffer.concat(rdata.map((part) => (Buffer.isBuffer(part) ? part : encodeName(part.name.toLowerCase()))));
}

/** What an RRset signature covers: owner, type, TTL and the RDATA of its records. */
export interface SignedSet {
  readonly owner: string;
  readonly type: number;
  readonly ttl: number;
  readonly rdatas: readonly Rdata[];
}

/**
 * The RRSIG record of `set` made with `key` for zone `signer`. `originalTtl` is the TTL the
 * signature vouches for (RFC 4034 §3.1.4: the RRset's TTL as in the zone). The records are
 * signed in canonical order, duplicates once (RFC 4034 §6.3): the signature holds for the set
 * in any order, so one signature serves every order an answer writes it in.
 */
export function signRRset(set: SignedSet, key: SigningKey, signer: string, window: SignatureWindow, originalTtl: number = set.ttl, signature: SignatureSource = signNow): WireRecord {
  const fixed = Buffer.allocUnsafe(18);
  fixed.writeUInt16BE(set.type, 0);
  fixed[2] = key.algorithm;
  fixed[3] = labelCount(set.owner);
  fixed.writeUInt32BE(originalTtl >>> 0, 4);
  // RFC 4034 §3.1.5: serial number arithmetic (RFC 1982) on 32 bits.
  fixed.writeUInt32BE(window.expiration >>> 0, 8);
  fixed.writeUInt32BE(window.inception >>> 0, 12);
  fixed.writeUInt16BE(key.keyTag, 16);
  const signed = signature(key, () => Buffer.concat([fixed, encodeName(signer), canonicalRRset(set, originalTtl)]));
  return Object.freeze({ owner: set.owner, type: DNSSEC_TYPE.RRSIG, ttl: set.ttl, rdata: Object.freeze([fixed, { name: signer, compress: false }, signed]) });
}

/**
 * Where the signature field of an RRSIG comes from: `data` (RFC 4034 §3.1.8.1, what is signed)
 * signed with `key` now, or a signature made of the same data before (dnssec/signature-bytes.ts,
 * which never asks for `data`).
 */
export type SignatureSource = (key: SigningKey, data: () => Buffer) => Buffer;

/** The signature made now with the key: RFC 6605 §4 (r | s) or RFC 8080 §4, 64 bytes either way. */
export const signNow: SignatureSource = (key, data) =>
  key.algorithm === 13 ? sign('sha256', data(), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }) : sign(null, data(), key.privateKey);

/** RFC 4034 §3.1.8.1: every RR of the set as `owner | type | class | TTL | RDLENGTH | RDATA`, in canonical order. */
function canonicalRRset(set: SignedSet, originalTtl: number): Buffer {
  const owner = encodeName(set.owner.toLowerCase());
  const rdatas = set.rdatas.map(canonicalRdata).sort(Buffer.compare);
  const parts: Buffer[] = [];
  let previous: Buffer | null = null;
  for (const rdata of rdatas) {
    if (previous !== null && previous.equals(rdata)) continue;
    previous = rdata;
    const head = Buffer.allocUnsafe(10);
    head.writeUInt16BE(set.type, 0);
    head.writeUInt16BE(1, 2); // class IN
    head.writeUInt32BE(originalTtl >>> 0, 4);
    head.writeUInt16BE(rdata.length, 8);
    parts.push(owner, head, rdata);
  }
  return Buffer.concat(parts);
}
