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

/** Lower-cased copy of the name being hashed (a name is at most 255 bytes) and its digest. */
const hashInput = new Uint8Array(255);
const digest = new Uint32Array(5);

/** The SHA-1 of the wire name at `q[start .. end)`, lower-cased, into `digest` (RFC 5155 §5 with no salt and no extra iterations). */
function nsec3Digest(q: Uint8Array, start: number, end: number): void {
  const length = end - start;
  for (let i = 0; i < length; i++) {
    let c = q[start + i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    hashInput[i] = c;
  }
  const sha1 = hash('sha1', hashInput.subarray(0, length), 'buffer');
  for (let i = 0; i < 5; i++) digest[i] = sha1.readUInt32BE(4 * i);
}

/** Compares `digest` with a base32hex hash text (RFC 4648 §7, lower case): <0, 0 or >0. */
function compareWithHash(key: string): number {
  for (let k = 0; k < 32; k++) {
    // Bits 5k .. 5k+4 of the 160-bit digest, in five big-endian words.
    const bit = 5 * k;
    const word = bit >> 5;
    const at = bit & 31;
    const value = (at <= 27 ? digest[word] >>> (27 - at) : (digest[word] << (at - 27)) | (digest[word + 1] >>> (59 - at))) & 31;
    const c = key.charCodeAt(k);
    const d = value - (c <= 0x39 ? c - 0x30 : c - 0x61 + 10);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The index in an NSEC3 chain's `keys` (ascending base32hex hashes) of the record matching or
 * covering the hash of the wire name at `q[start .. end)`: the last at or before it, or the last
 * of all for a hash before the first (RFC 5155 §7.1: the chain wraps round).
 */
export function nsec3CoveringIndex(keys: readonly string[], q: Uint8Array, start: number, end: number): number {
  nsec3Digest(q, start, end);
  if (compareWithHash(keys[0]) < 0) return keys.length - 1;
  let low = 0;
  let high = keys.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (compareWithHash(keys[mid]) >= 0) low = mid;
    else high = mid - 1;
  }
  return low;
}
