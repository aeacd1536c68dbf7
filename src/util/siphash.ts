/**
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012), the keyed hash
 * RFC 9018 §4.4 builds interoperable DNS server cookies with.
 *
 * Written here rather than taken from npm: `siphash` keeps each 64-bit word as an object and
 * allocates new ones in every round, and `siphash24` copies the key and the data into
 * WebAssembly memory per call; a server cookie is hashed on the query path, where this version
 * allocates nothing (64-bit words as two 32-bit halves in local variables). It is checked against
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

// The state v0..v3, each as (high, low) 32-bit halves; module-level so a hash allocates nothing.
let v0h = 0, v0l = 0, v1h = 0, v1l = 0, v2h = 0, v2l = 0, v3h = 0, v3l = 0;

/** One SipRound (the paper's §2.1), on the module-level state. */
function sipRound(): void {
  let l: number;
  let t: number;
  // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
  l = (v0l + v1l) >>> 0;
  v0h = (v0h + v1h + (l < v0l ? 1 : 0)) >>> 0;
  v0l = l;
  t = v1h;
  v1h = ((v1h << 13) | (v1l >>> 19)) >>> 0;
  v1l = ((v1l << 13) | (t >>> 19)) >>> 0;
  v1h = (v1h ^ v0h) >>> 0;
  v1l = (v1l ^ v0l) >>> 0;
  t = v0h;
  v0h = v0l;
  v0l = t;
  // v2 += v3; v3 <<<= 16; v3 ^= v2
  l = (v2l + v3l) >>> 0;
  v2h = (v2h + v3h + (l < v2l ? 1 : 0)) >>> 0;
  v2l = l;
  t = v3h;
  v3h = ((v3h << 16) | (v3l >>> 16)) >>> 0;
  v3l = ((v3l << 16) | (t >>> 16)) >>> 0;
  v3h = (v3h ^ v2h) >>> 0;
  v3l = (v3l ^ v2l) >>> 0;
  // v0 += v3; v3 <<<= 21; v3 ^= v0
  l = (v0l + v3l) >>> 0;
  v0h = (v0h + v3h + (l < v0l ? 1 : 0)) >>> 0;
  v0l = l;
  t = v3h;
  v3h = ((v3h << 21) | (v3l >>> 11)) >>> 0;
  v3l = ((v3l << 21) | (t >>> 11)) >>> 0;
  v3h = (v3h ^ v0h) >>> 0;
  v3l = (v3l ^ v0l) >>> 0;
  // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
  l = (v2l + v1l) >>> 0;
  v2h = (v2h + v1h + (l < v2l ? 1 : 0)) >>> 0;
  v2l = l;
  t = v1h;
  v1h = ((v1h << 17) | (v1l >>> 15)) >>> 0;
  v1l = ((v1l << 17) | (t >>> 15)) >>> 0;
  v1h = (v1h ^ v2h) >>> 0;
  v1l = (v1l ^ v2l) >>> 0;
  t = v2h;
  v2h = v2l;
  v2l = t;
}

function absorb(mh: number, ml: number): void {
  v3h = (v3h ^ mh) >>> 0;
  v3l = (v3l ^ ml) >>> 0;
  sipRound();
  sipRound();
  v0h = (v0h ^ mh) >>> 0;
  v0l = (v0l ^ ml) >>> 0;
}

/**
 * SipHash-2-4 of data[start .. end) under `key`; the 8-byte result is written to out[at ..] in
 * the reference implementation's byte order (little-endian), as RFC 9018 puts it in the cookie.
 */
export function siphash24(key: SipKey, data: Uint8Array, start: number, end: number, out: Uint8Array, at: number): void {
  const k0l = key[0], k0h = key[1], k1l = key[2], k1h = key[3];
  v0h = (k0h ^ 0x736f6d65) >>> 0;
  v0l = (k0l ^ 0x70736575) >>> 0;
  v1h = (k1h ^ 0x646f7261) >>> 0;
  v1l = (k1l ^ 0x6e646f6d) >>> 0;
  v2h = (k0h ^ 0x6c796765) >>> 0;
  v2l = (k0l ^ 0x6e657261) >>> 0;
  v3h = (k1h ^ 0x74656462) >>> 0;
  v3l = (k1l ^ 0x79746573) >>> 0;
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
  v2l = (v2l ^ 0xff) >>> 0;
  sipRound();
  sipRound();
  sipRound();
  sipRound();
  const hh = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  const hl = (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
  for (let i = 0; i < 4; i++) {
    out[at + i] = (hl >>> (8 * i)) & 0xff;
    out[at + 4 + i] = (hh >>> (8 * i)) & 0xff;
  }
}
