/**
 * Signing on the loader thread (config/load-worker.ts): a reload or a re-signing signs each
 * changed signed zone there, with the keys this thread reads once per load, and this thread adopts
 * the signatures (dnssec/signature-bytes.ts): its compile makes none, keeps answering between
 * slices, and serves RRSIGs that validate. The first load, before anything is served, signs here.
 */
import t from 'tap';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeySource } from '../../src/dnssec/keys.js';
import type { ZoneKeySet } from '../../src/dnssec/types.js';
import type { ZoneSet } from '../../src/model/zone-model.js';
import { rrsetKey } from '../../src/model/signatures.js';
import { Handler } from '../../src/server/handler.js';
import { ReloadController } from '../../src/zones/reload.js';
import { ZoneStore } from '../../src/zones/zone-store.js';
import { Runtime } from '../../src/state/runtime.js';
import { query, tempZonesDir } from '../helpers/dns.js';
import { memoryLogger } from '../helpers/metrics.js';
import { answerProblems, makeKeySet, parseMessage } from '../helpers/dnssec.js';
import { stallTimer } from '../../bench/reload/stall-timer.mjs';

const TEXT = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');
/** Static names of the larger zone: a few thousand RRSIGs, a few hundred ms of signing. */
const NAMES = 3000;

function largeZone(): string {
  const records = Array.from({ length: NAMES }, (_, i) => `  host${i}: { A: [198.51.100.${i % 250}] }`).join('\n');
  return `zone: large.example\nsoa: { mname: ns1.large.example, rname: hostmaster.large.example }\nnameservers: { ns1.large.example: [192.0.2.53] }\nrecords:\n${records}\ndnssec: true\n`;
}

/** A key source that counts its reads: one key set per zone, at a clock the test moves. */
function countingKeys(clock: { now: number }): KeySource & { reads: number } {
  const sets = new Map<string, ZoneKeySet>();
  const source = {
    reads: 0,
    now: () => clock.now,
    keysFor(zone: string): ZoneKeySet {
      source.reads++;
      let set = sets.get(zone);
      if (set === undefined) sets.set(zone, (set = makeKeySet(zone)));
      return set;
    },
  };
  return source;
}

/** The signed fixture in a zone store whose keys run on `clock`, loaded once (on this thread). */
async function loadedSignedZone(t: Tap.Test): Promise<{ dir: string; clock: { now: number }; store: ZoneStore; first: Awaited<ReturnType<ZoneStore['load']>> }> {
  const dir = tempZonesDir({ 'signed.yaml': TEXT });
  const clock = { now: Date.UTC(2026, 11, 1) };
  const store = new ZoneStore(dir, { keys: countingKeys(clock) });
  t.teardown(() => store.close());
  return { dir, clock, store, first: await store.load() };
}

function validationProblems(zones: ZoneSet): string[] {
  const handler = new Handler(new Runtime(zones), undefined, {}, { prebuilt: false });
  const ask = (name: string, type: string) => parseMessage(handler.handle(query(name, type, { edns: { do: true } }), { transport: 'tcp', clientAddress: '192.0.2.1' })!);
  const large = zones.zones.has('large.example') ? answerProblems(ask, 'large.example', [['host7.large.example', 'A'], ['nope.large.example', 'A']]) : [];
  return [...answerProblems(ask, 'example.net', [['example.net', 'SOA'], ['mx.example.net', 'A'], ['nope.example.net', 'A'], ['pool.example.net', 'A']]), ...large];
}

/** The signature field of the SOA RRSIG of `origin`. */
const soaSignature = (zones: ZoneSet, origin: string) => zones.zones.get(origin)!.signatures!.rrsigs.get(rrsetKey(origin, 6))!.records[0].rdata[2] as Buffer;

t.test('a reload signs changed zones in the loader thread; this thread adopts their signatures', async (t) => {
  const dir = tempZonesDir({ 'signed.yaml': TEXT, 'large.yaml': largeZone() });
  const clock = { now: Date.UTC(2026, 11, 1) };
  const keys = countingKeys(clock);
  const store = new ZoneStore(dir, { keys });
  t.teardown(() => store.close());

  const first = await store.load();
  t.same(first.signing, { here: 2, adopted: 0 }, 'the first load, before anything is served, signs on this thread');
  t.same(validationProblems(first.zoneSet), []);

  clock.now += 60_000;
  for (const file of ['signed.yaml', 'large.yaml']) appendFileSync(join(dir, file), '# edited\n');
  const reads = keys.reads;
  const stalls = stallTimer();
  const reloaded = await store.load();
  const gap = stalls.stop();
  t.same(reloaded.signing, { here: 0, adopted: 2 }, 'both changed zones signed in the loader thread, none here');
  t.same(reloaded.problems, []);
  t.equal(keys.reads - reads, 2, "each zone's keys read once in the load, by this thread, for the loader thread's signing");
  // Where signing ran is shown by the counts above; the gap bound only catches a load that blocks
  // this thread outright, with room for a busy 2-core CI machine (measured here: 36-115 ms).
  t.ok(gap < 1000, `this thread's event loop kept turning (longest gap ${gap.toFixed(1)} ms)`);
  for (const origin of ['example.net', 'large.example']) {
    const signatures = reloaded.zoneSet.zones.get(origin)!.signatures!;
    t.equal(signatures.signedAt, clock.now, `${origin}: signed at the load's signing time`);
    t.ok(soaSignature(reloaded.zoneSet, origin).buffer instanceof SharedArrayBuffer, `${origin}: its RRSIGs are views of the memory the loader thread signed into`);
    t.notSame(soaSignature(reloaded.zoneSet, origin), soaSignature(first.zoneSet, origin), `${origin}: new signatures`);
  }
  t.same(validationProblems(reloaded.zoneSet), [], 'the adopted signatures validate');
});

t.test('a zone due for re-signing is signed in the loader thread too', async (t) => {
  const { clock, store, first } = await loadedSignedZone(t);
  clock.now = store.nextResignAt();
  const resigned = await store.load();
  t.same(resigned.signing, { here: 0, adopted: 1 }, 'signed there, adopted here');
  t.equal(resigned.zoneSet.zones.get('example.net')!.signatures!.signedAt, clock.now);
  t.ok(resigned.zoneSet.zones.get('example.net')!.signatures!.refreshAt > first.zoneSet.zones.get('example.net')!.signatures!.refreshAt, 'due again later');
  t.same(validationProblems(resigned.zoneSet), [], 'and validate');
});

t.test('a kept zone (its file now broken) due for re-signing is signed on this thread', async (t) => {
  const { dir, clock, store } = await loadedSignedZone(t);
  appendFileSync(join(dir, 'signed.yaml'), 'not: [valid\n');
  clock.now = store.nextResignAt();
  const kept = await store.load();
  t.same(kept.keptFiles, [join(dir, 'signed.yaml')]);
  t.same(kept.signing, { here: 1, adopted: 0 }, 'from its last good config, here');
  t.equal(kept.zoneSet.zones.get('example.net')!.signatures!.signedAt, clock.now);
});

t.test('a zone due for re-signing when the loader thread dies is signed on this thread', async (t) => {
  const { clock, store } = await loadedSignedZone(t);
  clock.now = store.nextResignAt();
  const pending = store.load();
  await new Promise((resolve) => setImmediate(resolve)); // the request is with the thread now
  await store.loader.close(); // the thread is gone while the load waits for it, as if it had crashed
  const failed = await pending;
  t.same(failed.problems.map((p) => p.code), ['EZONE_LOADER'], 'the loader failure is the one problem');
  t.same(failed.signing, { here: 1, adopted: 0 }, 'the due zone is signed here instead');
  t.equal(failed.zoneSet.zones.get('example.net')!.signatures!.signedAt, clock.now);
  t.same(validationProblems(failed.zoneSet), [], 'and validates');
});

t.test('the reload log line says where the signed zones were signed', async (t) => {
  const dir = tempZonesDir({ 'signed.yaml': TEXT });
  const clock = { now: Date.UTC(2026, 11, 1) };
  const { logger, lines } = memoryLogger('info');
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir, { keys: countingKeys(clock) }), prebuild: null }, logger);
  t.teardown(() => reloads.close());
  await reloads.start();
  t.match(lines.find((l) => l.msg === 'zones loaded'), { signing: { here: 1, adopted: 0 } }, 'the first load signs here');
  clock.now += 60_000;
  appendFileSync(join(dir, 'signed.yaml'), '# edited\n');
  await reloads.reload('api');
  t.match(lines.find((l) => l.msg === 'zones reloaded'), { signing: { here: 0, adopted: 1 } }, 'a reload adopts what the loader thread signed');
  await reloads.reload('api');
  t.equal(lines.filter((l) => l.msg === 'zones reloaded').at(-1).signing, undefined, 'nothing compiled: no signing field');
});
