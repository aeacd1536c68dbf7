/**
 * SHA-1 (FIPS 180-4 §6.1) of a short message, allocating nothing: the NSEC3 hash of a name
 * (RFC 5155 §5), which a DO=1 NXDOMAIN of an NSEC3 zone takes once per query. node:crypto's
 * one-shot hash costs microseconds per call here (a call into C++ and a new Buffer for each
 * digest), several times this. Checked against node:crypto (test/util/sha1.test.ts).
 */

/** Longest message hashed: a wire name (255 bytes) pads to five 64-byte blocks. */
const MAX_MESSAGE = 255;
const padded = new Uint8Array(5 * 64);
const w = new Int32Array(80);

/**
 * Writes the SHA-1 of `message[start .. start + length)` (length at most 255) into `digest` as
 * five big-endian 32-bit words.
 */
export function sha1Words(message: Uint8Array, start: number, length: number, digest: Uint32Array): void {
  if (length > MAX_MESSAGE) throw new RangeError('sha1Words hashes at most 255 bytes');
  // Padding (§5.1.1): the message, a 1 bit, zeros, the length in bits as 64 bits.
  const blocks = (length + 9 + 63) >> 6;
  const end = blocks * 64;
  for (let i = 0; i < length; i++) padded[i] = message[start + i];
  padded[length] = 0x80;
  padded.fill(0, length + 1, end);
  const bits = length * 8;
  padded[end - 2] = bits >>> 8;
  padded[end - 1] = bits & 0xff;
  let h0 = 0x67452301;
  let h1 = 0xefcdab89 | 0;
  let h2 = 0x98badcfe | 0;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0 | 0;
  for (let block = 0; block < end; block += 64) {
    for (let t = 0; t < 16; t++) {
      const at = block + t * 4;
      w[t] = (padded[at] << 24) | (padded[at + 1] << 16) | (padded[at + 2] << 8) | padded[at + 3];
    }
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16];
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let t = 0; t < 80; t++) {
      let f: number;
      let k: number;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc | 0;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6 | 0;
      }
      const temp = (((a << 5) | (a >>> 27)) + f + e + k + w[t]) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = temp;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  digest[0] = h0;
  digest[1] = h1;
  digest[2] = h2;
  digest[3] = h3;
  digest[4] = h4;
}
