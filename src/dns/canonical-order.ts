/**
 * A question's place in a signed zone's denial chain, read from its wire bytes without decoding
 * the name to text: the same order as model/signatures.ts (canonicalKey, nsec3Hash), so the
 * fast path finds the NSEC or NSEC3 record the general path puts in an NXDOMAIN.
 *
 * NSEC chains are ordered by canonicalKey (RFC 4034 §6.1): the wire labels from the root down,
 * each lower-cased and followed by a byte 0. NSEC3 chains by the base32hex of the SHA-1 of the
 * name's canonical wire form (RFC 5155 §5; RFC 9276 §3.1: no salt, no extra iterations), whose
 * text order is the order of the digest's bits.
 */
import { hash } from 'node:crypto';

/** The label starts of one question name; one instance reused per handler. */
export class QuestionLabels {
  /** Offset of each label's length byte, first label first (a name has at most 127 labels). */
  readonly starts = new Int32Array(128);
  count = 0;
}

/**
 * Reads the labels of the uncompressed name at `q[start .. end)` (scanQuery checked its shape)
 * into `labels`. A "." byte inside a label is one of its bytes, as canonicalKey reads it.
 */
export function readLabels(q: Uint8Array, start: number, end: number, labels: QuestionLabels): void {
  let count = 0;
  for (let pos = start; pos < end && q[pos] !== 0; pos += 1 + q[pos]) labels.starts[count++] = pos;
  labels.count = count;
}

/** Compares the read question with a canonicalKey as strings are compared: <0, 0 or >0. */
function compareWithKey(q: Uint8Array, labels: QuestionLabels, key: string): number {
  let k = 0;
  for (let l = labels.count - 1; l >= 0; l--) {
    const pos = labels.starts[l];
    for (let i = pos + 1, last = pos + q[pos]; i <= last; i++, k++) {
      if (k >= key.length) return 1;
      let c = q[i];
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      const d = c - key.charCodeAt(k);
      if (d !== 0) return d;
    }
    if (k >= key.length) return 1;
    const d = key.charCodeAt(k++);
    if (d !== 0) return -d;
  }
  return k < key.length ? -1 : 0;
}

/**
 * The index in an NSEC chain's `keys` (ascending canonicalKeys) of the record matching or covering
 * the read question: the last at or before it, or the last of all for a name before the first
 * (the chain wraps round). model/signatures.ts coveringIndex, on the wire.
 */
export function nsecCoveringIndex(keys: readonly string[], q: Uint8Array, labels: QuestionLabels): number {
  if (compareWithKey(q, labels, keys[0]) < 0) return keys.length - 1;
  let low = 0;
  let high = keys.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (compareWithKey(q, labels, keys[mid]) >= 0) low = mid;
    else high = mid - 1;
  }
  return low;
}

/** Lower-cased copy of the name being hashed (a name is at most 255 bytes). */
const hashInput = new Uint8Array(255);

/**
 * RFC 5155 §5 with the RFC 9276 §3.1 parameters (no extra iterations, empty salt): the SHA-1 of
 * a name's canonical (lower-case) wire form, in base32hex (RFC 4648 §7), lower case: the first
 * label of its NSEC3 owner. Base32hex keeps the hashes' byte order as text order.
 */
export function nsec3HashOfWire(wire: Uint8Array): string {
  const digest = hash('sha1', wire, 'buffer');
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of digest) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32HEX[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  // 160 bits are 32 digits of 5: nothing is left over.
  return out;
}
const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';

/** In ascending `keys`, the index of the last at or before `key`; for a key before the first, the last (the span that wraps round). */
export function spanIndex(keys: readonly string[], key: string): number {
  if (key < keys[0]) return keys.length - 1;
  let low = 0;
  let high = keys.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (keys[mid] <= key) low = mid;
    else high = mid - 1;
  }
  return low;
}

/** Bytes of one NSEC3 hash: a SHA-1 digest. */
export const NSEC3_DIGEST_BYTES = 20;

/**
 * Writes the bytes of a base32hex text (RFC 4648 §7, lower case, no padding; an NSEC3 hash:
 * 32 digits, 20 bytes) into `out` at `at`. A chain's hashes are turned to bytes once, when it is
 * built, so a query's hash is compared as bytes and no text is made per query.
 */
export function base32hexInto(text: string, out: Uint8Array, at: number): void {
  let bits = 0;
  let value = 0;
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    value = ((value << 5) | (c <= 0x39 ? c - 0x30 : c - 0x61 + 10)) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out[at++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
}

/** `digest` against the one at `at` in `digests`: <0, 0 or >0, byte by byte (base32hex keeps this order). */
function compareDigest(digest: Uint8Array, digests: Uint8Array, at: number): number {
  for (let i = 0; i < NSEC3_DIGEST_BYTES; i++) {
    const d = digest[i] - digests[at + i];
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The index in an NSEC3 chain (its `digests`, in the order of its keys) of the record matching or covering
 * the hash of the wire name at `q[start .. end)`: the last at or before it, or the last of all
 * for a hash before the first (RFC 5155 §7.1: the chain wraps round).
 */
export function nsec3CoveringIndex(digests: Uint8Array, q: Uint8Array, start: number, end: number): number {
  const length = end - start;
  for (let i = 0; i < length; i++) {
    let c = q[start + i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    hashInput[i] = c;
  }
  const digest = hash('sha1', hashInput.subarray(0, length), 'buffer');
  const count = digests.length / NSEC3_DIGEST_BYTES;
  if (compareDigest(digest, digests, 0) < 0) return count - 1;
  let low = 0;
  let high = count - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (compareDigest(digest, digests, mid * NSEC3_DIGEST_BYTES) >= 0) low = mid;
    else high = mid - 1;
  }
  return low;
}
