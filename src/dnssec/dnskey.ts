/**
 * A signing key as the DNS publishes it: the DNSKEY public key field, the key tag, the DS digest,
 * and their presentation format (what `sitedns dnssec ds` prints for the parent).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { encodeName } from '../dns/encode.js';
import { dnskeyRdata, dsRdata } from '../dns/records.js';
import type { SigningKey } from './types.js';

/** RFC 4509 §2: SHA-256, the DS digest type every validator implements (RFC 8624 §3.3). */
const DIGEST_SHA256 = 2;

/**
 * The DNSKEY public key field of a private or public key: for ECDSA P-256 the point's x | y, 32
 * bytes each (RFC 6605 §4); for Ed25519 the 32-byte public key (RFC 8080 §3).
 */
export function publicKeyField(key: KeyObject, algorithm: 13 | 15): Buffer {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  if (algorithm === 13) {
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new TypeError(`not an ECDSA P-256 key (${jwk.kty} ${jwk.crv ?? ''})`);
    return Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new TypeError(`not an Ed25519 key (${jwk.kty} ${jwk.crv ?? ''})`);
  return Buffer.from(jwk.x!, 'base64url');
}

/** The fields of a DNSKEY record (any algorithm: the RFC examples include RSA keys). */
export interface DnskeyFields {
  readonly flags: number;
  readonly algorithm: number;
  readonly publicKey: Buffer;
}

/** The one buffer of a DNSKEY record's RDATA. */
export function dnskeyBytes(key: DnskeyFields): Buffer {
  return dnskeyRdata(key.flags, key.algorithm, key.publicKey)[0] as Buffer;
}

/** RFC 4034 Appendix B: the key tag of a DNSKEY RDATA (every algorithm but 1). */
export function keyTag(rdata: Buffer): number {
  let sum = 0;
  for (let i = 0; i < rdata.length; i++) sum += i & 1 ? rdata[i] : rdata[i] << 8;
  sum += (sum >>> 16) & 0xffff;
  return sum & 0xffff;
}

/** RFC 4034 §5.1.4 with RFC 4509 §2.1: SHA-256 of the owner's canonical wire name | DNSKEY RDATA. */
export function dsDigest(zone: string, key: DnskeyFields): Buffer {
  return createHash('sha256').update(encodeName(zone.toLowerCase())).update(dnskeyBytes(key)).digest();
}

/** The DS (and CDS) RDATA of a key, digest SHA-256. */
export function keyDsRdata(zone: string, key: SigningKey) {
  return dsRdata(key.keyTag, key.algorithm, DIGEST_SHA256, dsDigest(zone, key));
}

/** `zone. [TTL] IN DNSKEY flags 3 algorithm base64` (RFC 4034 §2.2); no TTL: the reader's default. */
export function dnskeyText(zone: string, key: DnskeyFields, ttl?: number): string {
  return `${zone}.${ttlText(ttl)} IN DNSKEY ${key.flags} 3 ${key.algorithm} ${key.publicKey.toString('base64')}`;
}

/** `zone. [TTL] IN DS tag algorithm 2 HEX` (RFC 4034 §5.3); the parent sets the TTL of its DS. */
export function dsText(zone: string, key: SigningKey, ttl?: number): string {
  return `${zone}.${ttlText(ttl)} IN DS ${key.keyTag} ${key.algorithm} ${DIGEST_SHA256} ${dsDigest(zone, key).toString('hex').toUpperCase()}`;
}

function ttlText(ttl: number | undefined): string {
  return ttl === undefined ? '' : ` ${ttl}`;
}
