import t from 'tap';
import { canonicalKey, nsec3Hash } from '../../src/model/signatures.js';
import { NSEC3_DIGEST_BYTES, QuestionLabels, base32hexInto, nsec3CoveringIndex, nsecCoveringIndex, readLabels } from '../../src/dns/canonical-order.js';

/** The last key at or before `key`, or the last of all before the first (model/signatures.ts coveringIndex). */
function expectedIndex(keys: string[], key: string): number {
  if (key < keys[0]) return keys.length - 1;
  let i = 0;
  while (i + 1 < keys.length && keys[i + 1] <= key) i++;
  return i;
}

let state = 7;
const random = (): number => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
/** A label of random bytes, upper case, 0x00 and high bytes included ("." and "\\" left to the test below). */
function label(): string {
  let text = '';
  for (let n = 1 + Math.floor(random() * 6); n > 0; n--) {
    const c = [() => 0x61 + Math.floor(random() * 4), () => 0x41 + Math.floor(random() * 4), () => Math.floor(random() * 256)][Math.floor(random() * 3)]();
    text += c === 0x2e || c === 0x5c ? 'x' : String.fromCharCode(c);
  }
  return text;
}
const wire = (labels: string[]): Buffer => Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
const lower = (l: string): string => l.replace(/[A-Z]/g, (c) => c.toLowerCase());

t.test('a wire name finds the record the text order finds (NSEC and NSEC3)', async (t) => {
  const owners = Array.from({ length: 60 }, () => [...Array.from({ length: Math.floor(random() * 3) }, () => lower(label())), 'example', 'net']);
  const nsecKeys = [...new Set(owners.map((o) => canonicalKey(o.join('.'))))].sort();
  const nsec3Keys = [...new Set(owners.map((o) => nsec3Hash(o.join('.'))))].sort();
  // The chain's hashes as bytes, the way a signed zone's chain holds them (dnssec/sign-zone.ts).
  const nsec3Digests = new Uint8Array(nsec3Keys.length * NSEC3_DIGEST_BYTES);
  nsec3Keys.forEach((key, i) => base32hexInto(key, nsec3Digests, i * NSEC3_DIGEST_BYTES));
  const labels = new QuestionLabels();
  let differ = 0;
  for (let n = 0; n < 3000; n++) {
    const asked = [...Array.from({ length: 1 + Math.floor(random() * 3) }, label), 'Example', 'NET'];
    const q = Buffer.concat([Buffer.alloc(12), wire(asked)]);
    readLabels(q, 12, q.length, labels);
    const text = asked.map(lower).join('.');
    if (nsecCoveringIndex(nsecKeys, q, labels) !== expectedIndex(nsecKeys, canonicalKey(text))) differ++;
    if (nsec3CoveringIndex(nsec3Digests, q, 12, q.length) !== expectedIndex(nsec3Keys, nsec3Hash(text))) differ++;
  }
  t.equal(differ, 0, '3000 names, both orders');
});

t.test('a label holding "." is one label: ordered by its bytes', async (t) => {
  const labels = new QuestionLabels();
  const keys = ['example.net', 'a.example.net', 'zz.example.net'].map(canonicalKey).sort();
  const q = Buffer.concat([Buffer.alloc(12), wire(['zz.a', 'example', 'net'])]);
  readLabels(q, 12, q.length, labels);
  t.same([...labels.starts.subarray(0, labels.count)], [12, 17, 25], 'three labels');
  // "zz.a" sorts after "zz": the last record covers it, not the apex's (where "a", "zz" would put it).
  t.equal(nsecCoveringIndex(keys, q, labels), 2);
  t.equal(expectedIndex(keys, canonicalKey('zz\\.a.example.net')), 2, 'as canonicalKey orders the escaped text');
});
