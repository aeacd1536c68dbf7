import t from 'tap';
import { createHash } from 'node:crypto';
import { sha1Words } from '../../src/util/sha1.js';

const hex = (words: Uint32Array): string => [...words].map((w) => w.toString(16).padStart(8, '0')).join('');
const digest = new Uint32Array(5);

t.test('FIPS 180-4 examples', async (t) => {
  for (const [text, expected] of [
    ['', 'da39a3ee5e6b4b0d3255bfef95601890afd80709'],
    ['abc', 'a9993e364706816aba3e25717850c26c9cd0d89d'],
    ['abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', '84983e441c3bd26ebaae4aa1f95129e5e54670f1'],
  ]) {
    sha1Words(Buffer.from(text, 'latin1'), 0, text.length, digest);
    t.equal(hex(digest), expected, JSON.stringify(text));
  }
});

t.test('every length up to 255 and an offset: the same digest as node:crypto', async (t) => {
  const bytes = Buffer.alloc(300);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) & 0xff;
  let differ = 0;
  for (let length = 0; length <= 255; length++) {
    const start = length % 13;
    sha1Words(bytes, start, length, digest);
    if (hex(digest) !== createHash('sha1').update(bytes.subarray(start, start + length)).digest('hex')) differ++;
  }
  t.equal(differ, 0, '256 lengths, across the one- to five-block paddings');
  t.throws(() => sha1Words(bytes, 0, 256, digest), RangeError, 'longer than a name: refused');
});
