/**
 * Signing keys for the DNSSEC benches, made with node:crypto (one CSK per zone, ECDSA P-256),
 * as a key source (src/dnssec/keys.ts KeySource) for the zone store, serve-app and the compiler.
 */
import { generateKeyPairSync } from 'node:crypto';

function keyTag(rdata) {
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i] : rdata[i] << 8;
  ac += (ac >> 16) & 0xffff;
  return ac & 0xffff;
}

function makeKey() {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = pair.publicKey.export({ format: 'jwk' });
  const publicKey = Buffer.concat([Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  const tag = keyTag(Buffer.concat([Buffer.from([1, 1, 3, 13]), publicKey]));
  return { keyTag: tag, algorithm: 13, flags: 257, publicKey, privateKey: pair.privateKey, file: 'bench' };
}

/** A key source giving every zone one CSK (made once per zone). */
export function benchSigning() {
  const keys = new Map();
  return {
    keysFor(zone) {
      let set = keys.get(zone);
      if (set === undefined) {
        const csk = makeKey();
        keys.set(zone, (set = { zone, published: [csk], zoneSigning: [csk], keySigning: [csk], parentSignals: [csk], nextChangeAt: Infinity }));
      }
      return set;
    },
    now: () => Date.now(),
  };
}
