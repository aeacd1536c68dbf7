/**
 * The reload path hands each signed zone its key set (zones/zone-store.ts, zones/reload.ts): keys
 * are created for a signed zone without any, a zone whose keys fail is refused like a broken file
 * (its last good version and the other zones keep serving), and the set is loaded again when the
 * key timing says so. The clock is injected.
 */
import t, { type Test } from 'tap';
import { readdirSync, writeFileSync, chmodSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { KeyError, readKeyFile, writeKeyFile } from '../../src/dnssec/key-file.js';
import { keyDirectory, generateKey } from '../../src/dnssec/keys.js';
import { ReloadController, AnswererZones } from '../../src/zones/reload.js';
import { prebuildTableInSlices } from '../../src/server/fast-path.js';
import { ZoneStore } from '../../src/zones/zone-store.js';
import { Runtime } from '../../src/state/runtime.js';
import { tempZonesDir } from '../helpers/dns.js';
import { memoryLogger } from '../helpers/metrics.js';

const HOUR = 3_600_000;
const zone = (name: string, dnssec: string) => `zone: ${name}
soa: { mname: ns1.${name}, rname: h.${name} }
nameservers: { ns1.${name}: [192.0.2.1] }
records:
  www: { A: [192.0.2.10] }
${dnssec}
`;

async function setup(t: Test, options: { create: boolean; files?: Record<string, string> }) {
  const dir = tempZonesDir(options.files ?? { 'signed.yaml': zone('signed.test', 'dnssec: true'), 'plain.yaml': zone('plain.test', '') });
  const keys = join(mkdtempSync(join(tmpdir(), 'sitedns-reload-keys-')), 'keys');
  const clock = { now: Date.parse('2026-06-01T00:00:00Z') };
  const { logger, lines } = memoryLogger();
  const created: string[] = [];
  const warnings: string[] = [];
  const events = { created: (_zone: string, files: readonly string[]) => created.push(...files), warning: (w: { file: string }) => warnings.push(w.file) };
  const zoneStore = new ZoneStore(dir, { keepValidated: true, keys: keyDirectory(keys, { create: options.create, now: () => clock.now, events }) });
  const reloads = new ReloadController({ zoneStore, prebuild: prebuildTableInSlices }, logger);
  t.teardown(() => reloads.close());
  return { dir, keys, clock, reloads, lines, created, warnings };
}

t.test('serve: keys are created for a signed zone without any (reported once); unsigned zones have no key set', async (t) => {
  const { keys, reloads, created } = await setup(t, { create: true });
  const outcome = await reloads.start();
  t.same(outcome.problems, []);
  t.same([...reloads.zoneStore.keySets().keys()], ['signed.test']);
  const files = readdirSync(keys);
  t.equal(files.length, 1);
  t.match(files[0], /^Ksigned\.test\+013\+\d{5}\.json$/);
  t.same(created, [join(keys, files[0])]);
  await reloads.reload('sighup');
  t.equal(readdirSync(keys).length, 1, 'the next load reads them, creates none');
  t.equal(created.length, 1);
  t.same(reloads.zoneTexts().keySets.get('signed.test')?.published.map((k) => k.keyTag), reloads.zoneStore.keySets().get('signed.test')?.published.map((k) => k.keyTag), 'answerers get the same keys');
});

t.test('a signed zone whose keys fail at the first load is refused, naming the file; the other zones serve', async (t) => {
  const { keys, reloads, lines } = await setup(t, { create: false });
  const outcome = await reloads.start();
  t.same(outcome.zones, ['plain.test']);
  t.match(outcome.problems, [new RegExp(`^${keys}:0: dnssec: zone signed\\.test: no such key directory`)]);
  t.match(lines.find((l) => l.level === 50 || l.level === 'error'), { code: 'EKEY_DIR' });
});

t.test('keys that break later: the last good version (with its keys) keeps serving, and recovers when fixed', async (t) => {
  const { keys, clock, reloads } = await setup(t, { create: true });
  await reloads.start();
  const [file] = readdirSync(keys).map((name) => join(keys, name));
  const before = reloads.runtime.zones;
  writeFileSync(file, '{ broken', { mode: 0o600 });
  clock.now += HOUR;
  const broken = await reloads.reload('sighup');
  t.match(broken.problems, [`${file}:0: dnssec: zone signed.test: not a key file (not JSON)`]);
  t.same(broken.zones.sort(), ['plain.test', 'signed.test'], 'still served');
  t.same(broken.keptFiles.length, 1);
  t.equal(reloads.runtime.zones, before, 'the same set: nothing changed for the answers');
  t.ok(reloads.zoneStore.keySets().get('signed.test'), 'with its last good keys');
  unlinkSync(file);
  const recreated = await reloads.reload('sighup');
  t.same(recreated.problems, [], 'serve creates keys again for a zone left without any');
  t.not(reloads.runtime.zones, before);
});

t.test('a key others may read: a warning naming the file, once while it lasts; the zone serves', async (t) => {
  const { keys, reloads, warnings } = await setup(t, { create: true });
  await reloads.start();
  const [file] = readdirSync(keys).map((name) => join(keys, name));
  chmodSync(file, 0o644);
  await reloads.reload('sighup');
  const outcome = await reloads.reload('sighup');
  t.same(warnings, [file]);
  t.same(outcome.problems, []);
  chmodSync(file, 0o600);
  await reloads.reload('sighup');
  chmodSync(file, 0o644);
  await reloads.reload('sighup');
  t.same(warnings, [file, file], 'again once it comes back');
});

t.test('the key set of the next timing change is loaded then: a new set, trigger keys', async (t) => {
  const { keys, clock, reloads } = await setup(t, { create: true });
  await reloads.start();
  const first = reloads.runtime.zones;
  const old = reloads.zoneStore.keySets().get('signed.test')!;
  // A second CSK published in 50 ms of the injected clock, and of the timer.
  const next = generateKey(keys, 'signed.test', 13, 'csk', { created: clock.now, publish: clock.now + 50, activate: clock.now + 50, retire: null, remove: null }).key;
  const reloaded = await reloads.reload('sighup');
  t.equal(reloads.runtime.zones, first, 'key files that change nothing yet: the same set');
  t.equal(reloads.zoneStore.keySets().get('signed.test')!.nextChangeAt, clock.now + 50);
  t.equal(reloaded.generation, first.generation);
  clock.now += 50;
  // The timer fires 50 ms after that load; the load it starts runs on the loader thread.
  for (const deadline = Date.now() + 20_000; reloads.runtime.zones === first && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal(reloads.lastOutcome?.trigger, 'keys');
  t.not(reloads.runtime.zones, first, 'a new set: the keys it is signed with changed');
  t.same(reloads.zoneStore.keySets().get('signed.test')!.published.map((k) => k.keyTag).sort(), [old.published[0].keyTag, next.keyTag].sort());
});

t.test('an answerer takes the key sets its primary loaded (copied as a thread receives them), reading no key file', async (t) => {
  const { reloads } = await setup(t, { create: true });
  await reloads.start();
  const { logger } = memoryLogger();
  const answerer = new AnswererZones(new Runtime(), 'primary', logger, prebuildTableInSlices);
  const texts = structuredClone(reloads.zoneTexts());
  const report = await answerer.load(texts);
  t.same(report.problems, []);
  t.same([...report.zoneSet.zones.keys()].sort(), ['plain.test', 'signed.test']);
  const keySet = report.keySets.get('signed.test')!;
  t.equal(keySet, texts.keySets.get('signed.test'));
  t.equal(keySet.zoneSigning[0].privateKey.asymmetricKeyType, 'ec', 'the private key crosses threads');
  const without = await new AnswererZones(new Runtime(), 'primary', logger, prebuildTableInSlices).load({ ...texts, keySets: new Map() });
  t.same([...without.zoneSet.zones.keys()], ['plain.test'], 'a signed zone without its keys is not served');
});

t.test('a key directory that cannot be made (a file in its way): only the signed zone is refused, naming the directory', async (t) => {
  const dir = tempZonesDir({ 'signed.yaml': zone('signed.test', 'dnssec: true'), 'plain.yaml': zone('plain.test', '') });
  const blocker = join(mkdtempSync(join(tmpdir(), 'sitedns-reload-keys-')), 'not-a-dir');
  writeFileSync(blocker, 'a file where the key directory should be');
  const keys = join(blocker, 'keys');
  const { logger } = memoryLogger();
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir, { keys: keyDirectory(keys, { create: true }) }), prebuild: null }, logger);
  t.teardown(() => reloads.close());
  const outcome = await reloads.start();
  t.same(outcome.zones, ['plain.test'], 'the unsigned zone serves');
  t.match(outcome.problems, [new RegExp(`^${keys}:0: dnssec: zone signed\\.test: cannot make the key directory: ENOTDIR`)]);
});

t.test('a key file that cannot be written is a KeyError naming it', async (t) => {
  const keys = join(mkdtempSync(join(tmpdir(), 'sitedns-reload-keys-')), 'keys');
  const stored = generateKey(keys, 'signed.test', 13, 'csk', { created: 0, publish: 0, activate: 0, retire: null, remove: null });
  const contents = readKeyFile(stored.key.file);
  const blocker = join(keys, 'not-a-dir');
  writeFileSync(blocker, '');
  const file = join(blocker, 'Ksigned.test+013+00001.json');
  const error = captured(() => writeKeyFile(file, contents));
  t.type(error, KeyError, 'ENOTDIR, as a KeyError');
  t.match(error, { code: 'EKEY_WRITE', file, reason: /^cannot write the key file: ENOTDIR/ });
});

function captured(run: () => void): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}
