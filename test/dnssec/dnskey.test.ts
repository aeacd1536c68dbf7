/** DNSKEY RDATA, key tags and DS digests against the RFC examples (RFC 4509 §2.3, RFC 6605 §6.1, RFC 8080 §6). */
import t from 'tap';
import { createPrivateKey } from 'node:crypto';
import { dnskeyRdata, dsRdata } from '../../src/dns/records.js';
import { dnskeyBytes, dnskeyText, dsDigest, dsText, keyDsRdata, keyTag, publicKeyField } from '../../src/dnssec/dnskey.js';
import type { SigningKey } from '../../src/dnssec/types.js';

const b64 = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'base64');

t.test('RFC 4509 §2.3: key tag 60485 and its SHA-256 DS digest', async (t) => {
  const key = {
    flags: 256,
    algorithm: 5,
    publicKey: b64(`AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvx
      egXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==`),
  };
  t.equal(keyTag(dnskeyBytes(key)), 60485);
  t.equal(dsDigest('dskey.example.com', key).toString('hex').toUpperCase(), 'D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A');
  t.equal(dsDigest('DSKEY.Example.COM', key).toString('hex').toUpperCase(), 'D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A', 'the owner name is hashed in canonical (lower) case');
});

// RFC 6605 §6.1: the example KSK, its private key and its DS.
const P256_PUBLIC = b64('GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==');
const P256_PRIVATE = b64('GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=');

t.test('RFC 6605 §6.1: ECDSA P-256 public key field (x | y), key tag 55648 and DS', async (t) => {
  const privateKey = createPrivateKey({
    format: 'jwk',
    key: { kty: 'EC', crv: 'P-256', d: P256_PRIVATE.toString('base64url'), x: P256_PUBLIC.subarray(0, 32).toString('base64url'), y: P256_PUBLIC.subarray(32).toString('base64url') },
  });
  const publicKey = publicKeyField(privateKey, 13);
  t.equal(publicKey.length, 64);
  t.same(publicKey, P256_PUBLIC);
  const key: SigningKey = { keyTag: keyTag(dnskeyBytes({ flags: 257, algorithm: 13, publicKey })), algorithm: 13, flags: 257, publicKey, privateKey, file: 'example' };
  t.equal(key.keyTag, 55648);
  t.equal(dsDigest('example.net', key).toString('hex'), 'b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17');
  t.equal(dsText('example.net', key, 3600), 'example.net. 3600 IN DS 55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17');
  t.equal(dnskeyText('example.net', key, 3600), `example.net. 3600 IN DNSKEY 257 3 13 ${P256_PUBLIC.toString('base64')}`);
  t.throws(() => publicKeyField(privateKey, 15), /not an Ed25519 key/);
});

t.test('RFC 8080 §6: Ed25519 public key field (32 bytes), key tag 3613 and DS', async (t) => {
  // The example's private key is the 32-byte seed; PKCS#8 wraps it after a fixed 16-byte prefix (RFC 8410 §7).
  const seed = b64('ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=');
  const privateKey = createPrivateKey({ format: 'der', type: 'pkcs8', key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]) });
  const publicKey = publicKeyField(privateKey, 15);
  t.same(publicKey, b64('l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4='));
  const key: SigningKey = { keyTag: keyTag(dnskeyBytes({ flags: 257, algorithm: 15, publicKey })), algorithm: 15, flags: 257, publicKey, privateKey, file: 'example' };
  t.equal(key.keyTag, 3613);
  t.equal(dsDigest('example.com', key).toString('hex'), '3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b');
  t.throws(() => publicKeyField(privateKey, 13), /not an ECDSA P-256 key/);
});

t.test('DNSKEY/CDNSKEY and DS/CDS RDATA: the fixed fields, then the key or digest (RFC 4034 §2.1, §5.1; RFC 7344 §3)', async (t) => {
  const publicKey = Buffer.alloc(32, 7);
  t.same([...(dnskeyRdata(257, 15, publicKey)[0] as Buffer)], [1, 1, 3, 15, ...publicKey]);
  t.same([...(dnskeyRdata(256, 13, publicKey)[0] as Buffer)], [1, 0, 3, 13, ...publicKey]);
  const digest = Buffer.alloc(32, 9);
  t.same([...(dsRdata(55648, 13, 2, digest)[0] as Buffer)], [0xd9, 0x60, 13, 2, ...digest]);
  const key = { keyTag: 3613, algorithm: 15, flags: 257, publicKey, privateKey: undefined as never, file: 'x' } as const;
  t.same(keyDsRdata('example.com', key)[0], Buffer.concat([Buffer.from([0x0e, 0x1d, 15, 2]), dsDigest('example.com', key)]));
});
