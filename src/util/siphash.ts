/**
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012), the keyed hash
 * RFC 9018 §4.4 builds interoperable DNS server cookies with.
 *
 * Written here rather than taken from npm: `siphash` keeps each 64-bit word as an object and
 * allocates new ones in every round, and `siphash24` copies the key and the data into
 * WebAssembly memory per call; a server cookie is hashed on the query path, where this version
 * allocates nothing (64-bit words as two 32-bit halves in one module-level Uint32Array). It is checked against
 * the reference implementation's vectors and RFC 9018 Appendix A (test/util/siphash.test.ts).
 */

/** A 16-byte key as four little-endian 32-bit words (k0 low, k0 high, k1 low, k1 high). */
export type SipKey = Uint32Array;

export function sipKey(key: Uint8Array): SipKey {
  if (key.length !== 16) throw new RangeError('a SipHash key is 16 bytes');
  const words = new Uint32Array(4);
  for (let i = 0; i < 4; i++) words[i] = readLE32(key, i * 4);
  return words;
}

function readLE32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/**
 * The state v0..v3 as (high, low) 32-bit halves: v[2i] high, v[2i + 1] low. Module-level, so a
 * hash allocates nothing; a Uint32Array wraps every sum to 32 bits.
 */
const v = new Uint32Array(8);

/** vA += vB; vB = (vB <<< r) ^ vA, on 64-bit words (0 < r < 32). */
function addRotateXor(a: number, b: number, r: number): void {
  const al = v[2 * a + 1];
  const bh = v[2 * b];
  const bl = v[2 * b + 1];
  const low = (al + bl) >>> 0;
  v[2 * a] = v[2 * a] + bh + (low < al ? 1 : 0);
  v[2 * a + 1] = low;
  v[2 * b] = ((bh << r) | (bl >>> (32 - r))) ^ v[2 * a];
  v[2 * b + 1] = ((bl << r) | (bh >>> (32 - r))) ^ low;
}

/** vI <<<= 32. */
function swapHalves(i: number): void {
  const high = v[2 * i];
  v[2 * i] = v[2 * i + 1];
  v[2 * i + 1] = high;
}

/** One SipRound (the paper's §2.1). */
function sipRound(): void {
  addRotateXor(0, 1, 13);
  swapHalves(0);
  addRotateXor(2, 3, 16);
  addRotateXor(0, 3, 21);
  addRotateXor(2, 1, 17);
  swapHalves(2);
}

function absorb(mh: number, ml: number): void {
  v[6] ^= mh;
  v[7] ^= ml;
  sipRound();
  sipRound();
  v[0] ^= mh;
  v[1] ^= ml;
}

/**
 * SipHash-2-4 of data[start .. end) under `key`; the 8-byte result is written to out[at ..] in
 * the reference implementation's byte order (little-endian), as RFC 9018 puts it in the cookie.
 */
export function siphash24(key: SipKey, data: Uint8Array, start: number, end: number, out: Uint8Array, at: number): void {
  const k0l = key[0], k0h = key[1], k1l = key[2], k1h = key[3];
  v[0] = k0h ^ 0x736f6d65;
  v[1] = k0l ^ 0x70736575;
  v[2] = k1h ^ 0x646f7261;
  v[3] = k1l ^ 0x6e646f6d;
  v[4] = k0h ^ 0x6c796765;
  v[5] = k0l ^ 0x6e657261;
  v[6] = k1h ^ 0x74656462;
  v[7] = k1l ^ 0x79746573;
  const length = end - start;
  const whole = start + (length & ~7);
  let pos = start;
  for (; pos < whole; pos += 8) absorb(readLE32(data, pos + 4), readLE32(data, pos));
  // The last word: the remaining bytes, then the length's low byte as the top byte.
  let ml = 0;
  let mh = (length & 0xff) << 24;
  const rest = end - pos;
  for (let i = 0; i < rest; i++) {
    if (i < 4) ml |= data[pos + i] << (8 * i);
    else mh |= data[pos + i] << (8 * (i - 4));
  }
  absorb(mh >>> 0, ml >>> 0);
  v[5] ^= 0xff;
  sipRound();
  sipRound();
  sipRound();
  sipRound();
  const hh = (v[0] ^ v[2] ^ v[4] ^ v[6]) >>> 0;
  const hl = (v[1] ^ v[3] ^ v[5] ^ v[7]) >>> 0;
  for (let i = 0; i < 4; i++) {
    out[at + i] = (hl >>> (8 * i)) & 0xff;
    out[at + 4 + i] = (hh >>> (8 * i)) & 0xff;
  }
}
