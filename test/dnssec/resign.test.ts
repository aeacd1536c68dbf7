/** Re-signing before expiry (RFC 6781 §4.4.2): a load after the refresh time signs the zone again. */
import t from 'tap';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyError } from '../../src/dnssec/key-file.js';
import { RESIGN_RETRY_MS, ZoneStore } from '../../src/zones/zone-store.js';
import { AnswererZones, ReloadController } from '../../src/zones/reload.js';
import { prebuildTableInSlices } from '../../src/server/fast-path.js';
import { Runtime } from '../../src/state/runtime.js';
import { refreshTime } from '../../src/dnssec/sign-zone.js';
import { memoryLogger } from '../helpers/metrics.js';
import { parseZoneText } from '../../src/config/load.js';
import { tempZonesDir } from '../helpers/dns.js';
import { makeKeySet } from '../helpers/dnssec.js';

const TEXT = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');
const DAY = 86_400_000;

t.test('a zone is signed again once less than `refresh` is left, not before', async (t) => {
  const dir = tempZonesDir({ 'signed.yaml': TEXT, 'plain.yaml': TEXT.replace('zone: example.net', 'zone: example.org').replace('dnssec: true', '') });
  let now = Date.UTC(2026, 11, 1);
  const keys = makeKeySet('example.net');
  const store = new ZoneStore(dir, { keys: { keysFor: () => keys, now: () => now } });
  t.teardown(() => store.close());
  const first = await store.load();
  const zone = first.zoneSet.zones.get('example.net')!;
  t.ok(zone.signatures, 'signed');
  t.equal(first.zoneSet.zones.get('example.org')!.signatures, undefined, 'an unsigned zone stays unsigned');
  // Defaults: validity 14 days, refresh 7 days; inception an hour back.
  t.equal(zone.signatures!.refreshAt, now - 3_600_000 + 14 * DAY - 7 * DAY);
  t.equal(store.nextResignAt(), zone.signatures!.refreshAt);

  now += 6 * DAY;
  const early = await store.load();
  t.equal(early.changed, false, 'nothing due: nothing compiled');
  t.equal(early.zoneSet.zones.get('example.net'), zone);

  now += 1 * DAY;
  const due = await store.load();
  t.equal(due.changed, true);
  t.equal(due.compiledFiles, 1, 'only the signed zone is compiled again');
  const resigned = due.zoneSet.zones.get('example.net')!;
  t.not(resigned, zone);
  t.equal(resigned.signatures!.refreshAt, now - 3_600_000 + 7 * DAY, 'new signatures from now');
  t.equal(due.zoneSet.zones.get('example.org'), first.zoneSet.zones.get('example.org'), 'the unsigned zone is kept as it was');
});

t.test('a refresh within the inception skew of the validity does not re-sign at every load', async (t) => {
  const now = Date.UTC(2026, 11, 1);
  const expiration = now - 3_600_000 + 2 * 3_600_000;
  t.equal(refreshTime(now, expiration, 3_600_000), now + 1_800_000, 'validity 2h, refresh 1h: due after half of the hour left');
  t.equal(refreshTime(now, now - 3_600_000 + 14 * DAY, 7 * DAY), now - 3_600_000 + 7 * DAY, 'the defaults: when 7 days are left');
});

t.test('the reload controller keeps a re-signing load scheduled at the earliest due zone', async (t) => {
  let now = Date.UTC(2026, 11, 1);
  const keys = makeKeySet('example.net');
  const signing = { keysFor: () => keys, now: () => now };
  const dir = tempZonesDir({ 'signed.yaml': TEXT });
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir, { keys: signing }), prebuild: null }, memoryLogger().logger);
  t.teardown(() => reloads.close());
  await reloads.start();
  const zone = reloads.runtime.zones.zones.get('example.net')!;
  t.equal(reloads.resignAt, zone.signatures!.refreshAt, 'scheduled when the signatures are due');
  now = zone.signatures!.refreshAt;
  await reloads.reload('api');
  const resigned = reloads.runtime.zones.zones.get('example.net')!;
  t.not(resigned, zone, 'due: signed again by the load');
  t.equal(reloads.resignAt, resigned.signatures!.refreshAt, 'and the next one scheduled');
  t.ok(reloads.resignAt! > now + 6 * DAY);
  const plain = new ReloadController({ zoneStore: new ZoneStore(tempZonesDir({ 'plain.yaml': TEXT.replace('dnssec: true', '') })), prebuild: null }, memoryLogger().logger);
  t.teardown(() => plain.close());
  await plain.start();
  t.equal(plain.resignAt, undefined, 'no signed zone: nothing scheduled');
});

t.test('new keys (a rollover step) sign the zone again at the next load, its file unchanged', async (t) => {
  const before = makeKeySet('example.net');
  const after = makeKeySet('example.net');
  let keys = before;
  const store = new ZoneStore(tempZonesDir({ 'signed.yaml': TEXT }), { keys: { keysFor: () => keys, now: () => Date.now() } });
  t.teardown(() => store.close());
  const first = (await store.load()).zoneSet.zones.get('example.net')!;
  const tags = (zone: typeof first) => [...zone.signatures!.rrsigs.values()].flatMap((set) => set.records.map((r) => (r.rdata[0] as Buffer).readUInt16BE(16)));
  t.same([...new Set(tags(first))], [before.zoneSigning[0].keyTag]);
  const same = await store.load();
  t.equal(same.changed, false, 'the same keys: nothing signed again');
  keys = after;
  const next = await store.load();
  t.equal(next.compiledFiles, 1, 'the zone is compiled and signed again');
  const zone = next.zoneSet.zones.get('example.net')!;
  t.same([...new Set(tags(zone))], [after.zoneSigning[0].keyTag], 'every RRSIG by the new key');
  const dnskey = zone.nodes.get('example.net')!.rrsets.find((s) => s.type === 48)!;
  t.same(dnskey.records.map((r) => (r.rdata[0] as Buffer).subarray(4).toString('hex')), [after.published[0].publicKey.toString('hex')], 'the DNSKEY RRset holds the new key');
});

t.test('a kept zone (its file broken) is signed again from its last good config when due, not reloaded in a loop', async (t) => {
  let now = Date.UTC(2026, 11, 1);
  const keys = makeKeySet('example.net');
  const dir = tempZonesDir({ 'signed.yaml': TEXT });
  const store = new ZoneStore(dir, { keys: { keysFor: () => keys, now: () => now } });
  t.teardown(() => store.close());
  const zone = (await store.load()).zoneSet.zones.get('example.net')!;
  writeFileSync(join(dir, 'signed.yaml'), 'zone: [broken');
  now = zone.signatures!.refreshAt;
  const due = await store.load();
  t.equal(due.keptFiles.length, 1, 'kept');
  const resigned = due.zoneSet.zones.get('example.net')!;
  t.not(resigned, zone, 'signed again');
  t.equal(resigned.signatures!.signedAt, now);
  t.equal(due.keySets.get('example.net'), keys, 'with its last good keys');
  t.same(resigned.nodes.get('example.net')!.rrsets.find((s) => s.type === 48)!.records.map((r) => Buffer.from((r.rdata[0] as Buffer).subarray(4)).toString('hex')), [keys.published[0].publicKey.toString('hex')], 'its DNSKEY RRset from them');
  t.ok(store.nextResignAt() > now + 6 * DAY, 'the next due time is ahead, not the past one again');
  unlinkSync(join(dir, 'signed.yaml'));
  now = resigned.signatures!.refreshAt;
  const deleted = await store.load();
  t.ok(deleted.zoneSet.zones.get('example.net')!.signatures!.signedAt === now, 'a deleted file: signed again too');
});

t.test('a kept zone that cannot be signed at all: tried once a minute, the problem once, refused before its signatures expire', async (t) => {
  let now = Date.UTC(2026, 11, 1);
  const keys = makeKeySet('example.net');
  let failing = false;
  const keysFor = () => {
    if (failing) throw new KeyError('EKEY_READ', '/keys/Kexample.net+013+00001.json', 'cannot read the key file');
    return keys;
  };
  const dir = tempZonesDir({ 'signed.yaml': TEXT });
  const { logger, lines } = memoryLogger();
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir, { keys: { keysFor, now: () => now } }), prebuild: null }, logger);
  t.teardown(() => reloads.close());
  await reloads.start();
  const zone = reloads.runtime.zones.zones.get('example.net')!;
  // The keys fail now, and the last good key can no longer sign (a public key where the private one was).
  failing = true;
  (keys.zoneSigning[0] as { privateKey: KeyObject }).privateKey = createPublicKey(keys.zoneSigning[0].privateKey);
  now = zone.signatures!.refreshAt;
  const first = await reloads.reload('resign');
  t.ok(first.zones.includes('example.net'), 'still served while its signatures are valid');
  t.equal(reloads.resignAt, now + RESIGN_RETRY_MS, 'tried again a minute later, not at once');
  now += 1000;
  await reloads.reload('api');
  t.equal(reloads.resignAt, now - 1000 + RESIGN_RETRY_MS, 'a load meanwhile does not try again');
  for (let i = 0; i < 3; i++) {
    now = reloads.resignAt!;
    await reloads.reload('resign');
  }
  const resignLines = lines.filter((l) => l.code === 'EZONE_RESIGN');
  t.equal(resignLines.length, 1, 'logged once, not per try');
  t.match(resignLines[0].msg, /zone example\.net: cannot be signed again with its last good keys/);
  now = zone.signatures!.expiresAt - RESIGN_RETRY_MS;
  const refused = await reloads.reload('resign');
  t.notOk(refused.zones.includes('example.net'), 'refused before its signatures expire');
  t.match(refused.problems.at(-1), /signed\.yaml:0: dnssec: zone example\.net: refused: its signatures expire at/);
});

t.test('a timed load that throws keeps the timer set', async (t) => {
  let now = Date.UTC(2026, 11, 1);
  const keys = makeKeySet('example.net');
  let bug = false;
  const keysFor = () => {
    if (bug) throw new TypeError('a bug');
    return keys;
  };
  const { logger } = memoryLogger();
  const reloads = new ReloadController({ zoneStore: new ZoneStore(tempZonesDir({ 'signed.yaml': TEXT }), { keys: { keysFor, now: () => now } }), prebuild: null }, logger);
  t.teardown(() => reloads.close());
  await reloads.start();
  now = reloads.resignAt!;
  bug = true;
  const failed = await reloads.reload('resign');
  t.match(failed.problems, [/reload failed: a bug/]);
  t.equal(reloads.resignAt, now + RESIGN_RETRY_MS, 'the next try scheduled a minute on');
});

t.test('an answerer signs at its primary signing time, and again when the primary signs again', async (t) => {
  let now = Date.UTC(2026, 11, 1);
  const keys = makeKeySet('example.net');
  const { logger } = memoryLogger();
  const primary = new ReloadController({ zoneStore: new ZoneStore(tempZonesDir({ 'signed.yaml': TEXT }), { keepValidated: true, keys: { keysFor: () => keys, now: () => now } }), prebuild: null }, logger);
  t.teardown(() => primary.close());
  await primary.start();
  const answerer = new AnswererZones(new Runtime(), 'primary', logger, prebuildTableInSlices);
  const first = (await answerer.load(structuredClone(primary.zoneTexts()))).zoneSet.zones.get('example.net')!;
  t.equal(first.signatures!.signedAt, now, "the primary's signing time, not the thread's clock");
  t.equal(first.signatures!.refreshAt, primary.runtime.zones.zones.get('example.net')!.signatures!.refreshAt, 'due when the primary is');
  const same = await answerer.load(structuredClone(primary.zoneTexts()));
  t.equal(same.compiledFiles, 0, 'the same file and signing time: nothing signed again');
  now = primary.resignAt!;
  await primary.reload('resign');
  const again = await answerer.load(structuredClone(primary.zoneTexts()));
  t.equal(again.compiledFiles, 1, 'a new signing time counts as a changed file');
  t.equal(again.zoneSet.zones.get('example.net')!.signatures!.signedAt, now);
});

t.test('each load reads a signed zone\'s keys once, and records the set the zone was signed with', async (t) => {
  let calls = 0;
  // Every read a new key set: a second read in one load would record another set than the one that signed.
  const keysFor = () => {
    calls++;
    return makeKeySet('example.net');
  };
  const dir = tempZonesDir({ 'signed.yaml': TEXT });
  const store = new ZoneStore(dir, { keys: { keysFor, now: () => Date.now() } });
  t.teardown(() => store.close());
  const signedWith = (report: Awaited<ReturnType<typeof store.load>>) => {
    const dnskey = report.zoneSet.zones.get('example.net')!.nodes.get('example.net')!.rrsets.find((s) => s.type === 48)!;
    return dnskey.records.map((r) => Buffer.from((r.rdata[0] as Buffer).subarray(4)).toString('hex'));
  };
  const recorded = (report: Awaited<ReturnType<typeof store.load>>) => report.keySets.get('example.net')!.published.map((k) => k.publicKey.toString('hex'));
  const first = await store.load();
  t.equal(calls, 1, 'the first load: one read');
  t.same(recorded(first), signedWith(first), 'the keys recorded are the keys that signed');
  calls = 0;
  const second = await store.load();
  t.equal(calls, 1, 'a load that signs again (the keys changed): one read');
  t.same(recorded(second), signedWith(second));
  t.equal(second.compiledFiles, 1);
});

t.test('validity must be at least refresh + 2h: a clear error on the validity line', async (t) => {
  const withTimes = (times: string) => TEXT.replace('dnssec: true', `dnssec: { ${times} }`);
  const short = parseZoneText(withTimes('validity: 1h1m, refresh: 1h'), 'signed.yaml');
  t.match(short, { problems: [{ path: 'dnssec.validity', code: 'EZONE_SCHEMA', message: /validity must be at least refresh \+ 2h/ }] });
  const edge = parseZoneText(withTimes('validity: 2h59m, refresh: 1h'), 'signed.yaml');
  t.match(edge, { problems: [{ path: 'dnssec.validity' }] }, 'a minute short');
  const enough = parseZoneText(withTimes('validity: 3h, refresh: 1h'), 'signed.yaml');
  t.notOk('problems' in enough, 'refresh + 2h exactly is accepted');
  const defaults = parseZoneText(withTimes('validity: 14d'), 'signed.yaml');
  t.notOk('problems' in defaults, 'the default refresh (7d) with validity 14d');
});

t.test('a zone its primary stops serving (refused) is not kept by an answerer', async (t) => {
  const keys = makeKeySet('example.net');
  const { logger } = memoryLogger();
  const primary = new ReloadController({ zoneStore: new ZoneStore(tempZonesDir({ 'signed.yaml': TEXT, 'plain.yaml': TEXT.replace('zone: example.net', 'zone: example.org').replace('dnssec: true', '') }), { keepValidated: true, keys: { keysFor: () => keys, now: () => Date.now() } }), prebuild: null }, logger);
  t.teardown(() => primary.close());
  await primary.start();
  const answerer = new AnswererZones(new Runtime(), 'primary', logger, prebuildTableInSlices);
  const texts = structuredClone(primary.zoneTexts());
  t.same([...(await answerer.load(texts)).zoneSet.zones.keys()].sort(), ['example.net', 'example.org']);
  const withoutSigned = { ...texts, generation: texts.generation + 1, files: texts.files.filter((f) => !f.file.endsWith('signed.yaml')) };
  const report = await answerer.load(withoutSigned);
  t.same([...report.zoneSet.zones.keys()], ['example.org'], 'served as the primary serves it');
  t.same(report.keptFiles, []);
});
