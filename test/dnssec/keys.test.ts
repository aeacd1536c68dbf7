/** Key files and a zone's key set (docs/dnssec.md#keys): every refusal names its file; timing decides the set. */
import t from 'tap';
import { chmodSync, mkdirSync, rmdirSync, mkdtempSync, readFileSync, statSync, writeFileSync, readdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DnssecSettings } from '../../src/model/zone-model.js';
import { generateKey, keyDirectory, keysForZone, loadZoneKeySet } from '../../src/dnssec/keys.js';
import { keyFileName } from '../../src/dnssec/key-file.js';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const HOUR = 3_600_000;
const CSK: DnssecSettings = { algorithm: 13, keys: 'csk', validityMs: 14 * 24 * HOUR, refreshMs: 7 * 24 * HOUR, denial: 'nsec' };
const SPLIT: DnssecSettings = { ...CSK, keys: 'ksk+zsk' };
const always = { created: NOW, publish: NOW, activate: NOW, retire: null, remove: null };

/** A key directory that does not exist yet, in a fresh temporary directory. */
function keyDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'sitedns-keys-')), 'keys');
}

function problemOf(load: ReturnType<typeof loadZoneKeySet>) {
  if (!('problem' in load)) throw new Error('expected a problem');
  return load.problem;
}

t.test('a key file: 0600 in a 0700 directory, named K<zone>+<algorithm>+<tag>.json, read back as written', async (t) => {
  const dir = keyDir();
  const written = generateKey(dir, 'example.com', 13, 'csk', always);
  t.equal(statSync(dir).mode & 0o777, 0o700);
  t.equal(statSync(written.key.file).mode & 0o777, 0o600);
  t.equal(written.key.file, join(dir, keyFileName('example.com', 13, written.key.keyTag)));
  t.match(written.key.file, /Kexample\.com\+013\+\d{5}\.json$/);
  const json = JSON.parse(readFileSync(written.key.file, 'utf8'));
  t.match(json, { format: 'sitedns-dnssec-key/1', zone: 'example.com', algorithm: 13, role: 'csk', keyTag: written.key.keyTag, publish: '2026-06-01T00:00:00.000Z', retire: null });
  t.match(json.privateKey, /^-----BEGIN PRIVATE KEY-----/);
  const load = loadZoneKeySet(dir, 'example.com', CSK, NOW);
  if (!('keySet' in load)) throw new Error(load.problem.message);
  t.same(load.keySet.published.map((k) => k.keyTag), [written.key.keyTag]);
  t.same(load.keySet.published[0].publicKey, written.key.publicKey);
  t.equal(load.keySet.published[0].flags, 257);
  t.same(load.warnings, []);
  t.equal(load.keySet.nextChangeAt, Infinity);
});

t.test('CSK: one key signs everything and is signalled to the parent', async (t) => {
  const dir = keyDir();
  const { key } = generateKey(dir, 'example.com', 15, 'csk', always);
  const load = loadZoneKeySet(dir, 'example.com', { ...CSK, algorithm: 15 }, NOW);
  if (!('keySet' in load)) throw new Error(load.problem.message);
  const tags = (keys: readonly { keyTag: number }[]) => keys.map((k) => k.keyTag);
  t.same(tags(load.keySet.zoneSigning), [key.keyTag]);
  t.same(tags(load.keySet.keySigning), [key.keyTag]);
  t.same(tags(load.keySet.parentSignals), [key.keyTag]);
  t.equal(load.keySet.published[0].publicKey.length, 32);
});

t.test('KSK + ZSK: the ZSK (flags 256) signs the data, the KSK (257) the DNSKEY RRset and is the only one signalled', async (t) => {
  const dir = keyDir();
  const ksk = generateKey(dir, 'example.com', 13, 'ksk', always).key;
  const zsk = generateKey(dir, 'example.com', 13, 'zsk', always).key;
  const load = loadZoneKeySet(dir, 'example.com', SPLIT, NOW);
  if (!('keySet' in load)) throw new Error(load.problem.message);
  t.same(load.keySet.zoneSigning.map((k) => k.keyTag), [zsk.keyTag]);
  t.same(load.keySet.keySigning.map((k) => k.keyTag), [ksk.keyTag]);
  t.same(load.keySet.parentSignals.map((k) => k.keyTag), [ksk.keyTag]);
  t.equal(zsk.flags, 256);
  t.equal(ksk.flags, 257);
});

t.test('timing: a key is published, signs, retires and goes at its times; nextChangeAt is the next of them', async (t) => {
  const dir = keyDir();
  const old = generateKey(dir, 'example.com', 13, 'csk', { created: NOW - 10 * HOUR, publish: NOW - 10 * HOUR, activate: NOW - 10 * HOUR, retire: NOW + 2 * HOUR, remove: NOW + 5 * HOUR }).key;
  const next = generateKey(dir, 'example.com', 13, 'csk', { created: NOW, publish: NOW + HOUR, activate: NOW + 2 * HOUR, retire: null, remove: null }).key;
  const at = (ms: number) => {
    const load = loadZoneKeySet(dir, 'example.com', CSK, ms);
    if (!('keySet' in load)) throw new Error(load.problem.message);
    const tags = (keys: readonly { keyTag: number }[]) => keys.map((k) => (k.keyTag === old.keyTag ? 'old' : 'new')).sort();
    return { published: tags(load.keySet.published), signing: tags(load.keySet.zoneSigning), signals: tags(load.keySet.parentSignals), next: load.keySet.nextChangeAt - NOW };
  };
  t.same(at(NOW), { published: ['old'], signing: ['old'], signals: ['old'], next: HOUR });
  t.same(at(NOW + HOUR), { published: ['new', 'old'], signing: ['old'], signals: ['new', 'old'], next: 2 * HOUR });
  t.same(at(NOW + 2 * HOUR), { published: ['new', 'old'], signing: ['new'], signals: ['new'], next: 5 * HOUR });
  t.same(at(NOW + 5 * HOUR), { published: ['new'], signing: ['new'], signals: ['new'], next: Infinity });
});

t.test('refusals name the file (or the directory) and carry a code', async (t) => {
  const dir = keyDir();
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_DIR', file: dir, message: /no such key directory/ });
  generateKey(dir, 'other.example', 13, 'csk', always);
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_NONE', file: dir, message: /no key file for signed zone example\.com/ });

  const good = generateKey(dir, 'example.com', 13, 'csk', always).key.file;
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', { ...CSK, algorithm: 15 }, NOW)), { code: 'EKEY_ALGORITHM', file: good, message: /algorithm 13 .*signs with 15/ });
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', SPLIT, NOW)), { code: 'EKEY_ROLE', file: good, message: /a CSK, but zone example\.com signs with keys: ksk\+zsk/ });

  const json = JSON.parse(readFileSync(good, 'utf8'));
  const foreign = join(dir, 'Kexample.com+013+00001.json');
  writeFileSync(foreign, JSON.stringify({ ...json, zone: 'example.net' }), { mode: 0o600 });
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_ZONE', file: foreign, message: /zone example\.net, not example\.com/ });
  writeFileSync(foreign, '{ not json', { mode: 0o600 });
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_CORRUPT', file: foreign, message: /not JSON/ });
  writeFileSync(foreign, JSON.stringify({ ...json, keyTag: 1 }), { mode: 0o600 });
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_CORRUPT', file: foreign, message: /key tag 1 in the file, but its key has tag/ });
  writeFileSync(foreign, JSON.stringify({ ...json, privateKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }), { mode: 0o600 });
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_CORRUPT', file: foreign, message: /private key/ });
  writeFileSync(foreign, JSON.stringify({ ...json, activate: '2020-01-01T00:00:00Z' }), { mode: 0o600 });
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_CORRUPT', file: foreign, message: /activate is before publish/ });
  writeFileSync(foreign, JSON.stringify({ ...json, role: 'boss' }), { mode: 0o600 });
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_CORRUPT', file: foreign, message: /role/ });
  copyFileSync(good, foreign);
  const unreadable = join(dir, 'Kexample.com+013+00002.json');
  mkdirSync(unreadable);
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_READ', file: unreadable, message: /cannot read the key file/ });
  rmdirSync(unreadable);
  t.ok('keySet' in loadZoneKeySet(dir, 'example.com', CSK, NOW), 'a copy of a good key loads');
});

t.test('no key signs now: refused, with the time of the next change', async (t) => {
  const dir = keyDir();
  generateKey(dir, 'example.com', 13, 'csk', { ...always, publish: NOW + HOUR, activate: NOW + HOUR });
  t.match(problemOf(loadZoneKeySet(dir, 'example.com', CSK, NOW)), { code: 'EKEY_INACTIVE', file: dir, message: /signs the zone data now \(the next key change is at 2026-06-01T01:00:00\.000Z\)/ });
  const split = keyDir() + '-split';
  generateKey(split, 'example.com', 13, 'zsk', always);
  t.match(problemOf(loadZoneKeySet(split, 'example.com', SPLIT, NOW)), { code: 'EKEY_INACTIVE', message: /signs the DNSKEY RRset now$/ });
});

t.test('a key file group or others may read: loaded, with a warning naming it', async (t) => {
  const dir = keyDir();
  const { file } = generateKey(dir, 'example.com', 13, 'csk', always).key;
  chmodSync(file, 0o640);
  const load = loadZoneKeySet(dir, 'example.com', CSK, NOW);
  t.ok('keySet' in load);
  t.match(load.warnings, [{ code: 'EKEY_MODE', file, message: /chmod 600/ }]);
});

t.test('keysForZone: creates keys for a signed zone without any only when asked (serve), never for check', async (t) => {
  const dir = keyDir();
  t.match(problemOf(keysForZone(dir, 'example.com', SPLIT, NOW)), { code: 'EKEY_DIR' });
  const made = keysForZone(dir, 'example.com', SPLIT, NOW, { create: true });
  if (!('keySet' in made)) throw new Error(made.problem.message);
  t.equal(made.created.length, 2);
  t.equal(statSync(dir).mode & 0o777, 0o700);
  t.equal(readdirSync(dir).length, 2);
  for (const file of made.created) t.equal(statSync(file).mode & 0o777, 0o600);
  const again = keysForZone(dir, 'example.com', SPLIT, NOW + HOUR, { create: true });
  if (!('keySet' in again)) throw new Error(again.problem.message);
  t.same(again.created, [], 'keys that exist are used, not replaced');
  t.same(again.keySet.published.map((k) => k.keyTag).sort(), made.keySet.published.map((k) => k.keyTag).sort());
});

t.test('only the key files of the zone are read: not temporary files, not the keys of a subdomain', async (t) => {
  const dir = keyDir();
  const { file } = generateKey(dir, 'example.com', 13, 'csk', always).key;
  writeFileSync(`${file}.123.tmp`, 'half a key', { mode: 0o600 });
  writeFileSync(join(dir, 'Ksub.example.com+013+00001.json'), 'not for example.com', { mode: 0o600 });
  writeFileSync(join(dir, 'README'), 'notes', { mode: 0o644 });
  const load = loadZoneKeySet(dir, 'example.com', CSK, NOW);
  t.ok('keySet' in load);
  t.same(load.warnings, []);
});

t.test('keyDirectory: keysFor at its clock; a problem thrown as a KeyError naming the file; creations and warnings reported', async (t) => {
  const dir = keyDir();
  const clock = { now: NOW };
  const created: string[][] = [];
  const warnings: string[] = [];
  const checkOnly = keyDirectory(dir, { now: () => clock.now });
  t.throws(() => checkOnly.keysFor('example.com', CSK), { code: 'EKEY_DIR', file: dir, message: `${dir}: no such key directory (sitedns dnssec keygen creates it)` });
  const serving = keyDirectory(dir, { create: true, now: () => clock.now, events: { created: (_zone, files) => created.push([...files]), warning: (w) => warnings.push(w.file) } });
  const keys = serving.keysFor('example.com', CSK);
  t.equal(serving.now(), NOW);
  t.equal(created.length, 1);
  t.same(keys.published.map((k) => k.file), created[0]);
  chmodSync(created[0][0], 0o640);
  serving.keysFor('example.com', CSK);
  t.same(warnings, created[0]);
  t.equal(created.length, 1, 'created once');
});
