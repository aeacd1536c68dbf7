/**
 * The follower's incremental recompute against the full one: random notices over a few
 * hundred sites and several probers, at random times; after every recompute the snapshot must
 * hold exactly what a full `combine()` of the same contents at the same moment gives.
 */
import t from 'tap';
import { isDeepStrictEqual } from 'node:util';
import { siteUp } from '../../src/metrics/definitions.js';
import { Runtime } from '../../src/state/runtime.js';
import { combine } from '../../src/state/combine.js';
import { StateFollower } from '../../src/state/follower.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { stateOf, type SiteState } from '../../src/state/snapshot.js';
import type { ProbeView } from '../../src/state/types.js';
import { createLogger } from '../../src/util/logger.js';
import { compileText } from '../helpers/dns.js';

const logger = createLogger('silent');
const STALE_AFTER_MS = 5000;
const NEVER = 1_000_000_000; // the follower's own tick and re-read timers stay out of the way

/** mulberry32: a seeded generator, so a failure can be replayed (SEED=...). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const IN_ZONE = 40;
const zoneText = `zone: z.test\nsoa: { mname: ns1.z.test, rname: h.z.test }\nnameservers: { ns1.z.test: [192.0.2.1] }\nsites:\n${Array.from({ length: IN_ZONE }, (_, i) => `  s${i}: { addresses: [192.0.2.${i + 10}] }`).join('\n')}\n`;
// Keys as combine() sees them: whatever string a notice carries. Sites of the served zone (the
// gauges follow those), sites of zones not served here, and odd keys (upper case, extra slashes).
const KEYS = [
  ...Array.from({ length: IN_ZONE }, (_, i) => `z.test/s${i}`),
  ...Array.from({ length: 250 }, (_, i) => `y${i % 7}.test/k${i}`),
  'Z.TEST/S1',
  'a/b/c',
  'z.test/',
  'nozone',
];
const PROBERS = ['p0', 'p1', 'p2', 'p3', 'p4'];

t.test('incremental recomputes equal a full combine() of the same contents at the same time', async (t) => {
  const seed = Number(process.env.SEED ?? 0x5eed8);
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  let T = 1_800_000_000_000;
  const store = new MemoryStateStore();
  const runtime = new Runtime(compileText(zoneText));
  const follower = new StateFollower({ store, runtime, logger, staleAfterMs: STALE_AFTER_MS, resyncMs: NEVER, tickMs: NEVER, now: () => T });
  t.teardown(() => follower.stop());
  t.equal(await follower.start(100), 'store');

  const randomView = (): ProbeView => {
    const v: { -readonly [K in keyof ProbeView]: ProbeView[K] } = { up: random() < 0.7, checkedAt: T - Math.floor(random() * 1000), since: T - 5000, reason: pick(['HTTP 200', 'connection refused', 'timeout', 'HTTP 503']) };
    if (random() < 0.8) v.load = Math.round(random() * 1000) / 10;
    if (random() < 0.7) v.utilization = Math.round(random() * 100) / 100;
    if (random() < 0.6) v.rttMs = Math.round(random() * 50) / 10;
    if (random() < 0.5) v.loadAt = T - Math.floor(random() * 2000);
    return v;
  };

  // Compares every site of the current snapshot with a full combine(); returns the keys that differ.
  const mismatches = (): string[] => {
    const full = combine(follower.snapshotContents(), T, { staleAfterMs: STALE_AFTER_MS, livenessAt: T }).sites;
    const have = runtime.state.sites;
    const bad: string[] = [];
    for (const [key, state] of full) if (!isDeepStrictEqual(have.get(key), state)) bad.push(key);
    for (const key of have.keys()) if (!full.has(key)) bad.push(key);
    return bad;
  };
  const detail = (key: string) => ({ key, snapshot: runtime.state.sites.get(key), full: combine(follower.snapshotContents(), T, { staleAfterMs: STALE_AFTER_MS, livenessAt: T }).sites.get(key) });

  let touched = new Set<string>();
  let touchedChecked = 0;
  let batchChecks = 0;
  let tickChecks = 0;
  let incrementalChecks = 0;
  let immutableChecks = 0;
  const failures: string[] = [];
  for (const p of PROBERS) await store.heartbeat({ id: p, heartbeatAt: T, startedAt: T }, true);

  for (let step = 0; step < 4000 && failures.length === 0; step++) {
    // Mostly small steps (notices of one batch), sometimes long ones (probers go stale, drains expire).
    T += random() < 0.97 ? Math.floor(random() * 200) : 1000 + Math.floor(random() * 6000);
    const r = random();
    if (r < 0.72) {
      const key = pick(KEYS);
      await store.writeView(pick(PROBERS), key, random() < 0.05 ? null : randomView());
      touched.add(key);
    } else if (r < 0.77) {
      await store.heartbeat({ id: pick(PROBERS), heartbeatAt: T - Math.floor(random() * 3000), startedAt: 0 }, true); // announced: a notice
    } else if (r < 0.85) {
      await store.heartbeat({ id: pick(PROBERS), heartbeatAt: T, startedAt: 0 }); // silent: the follower sees it on its next re-read
    } else if (r < 0.89) {
      const key = pick(KEYS);
      await store.setForced(key, random() < 0.3 ? null : { state: random() < 0.7 ? 'down' : 'up', by: 'ops', reason: 'test', until: T + Math.floor(random() * 3000), at: T });
    } else if (r < 0.92) {
      await store.report(pick(KEYS), { load: random() * 100, at: T });
    } else if (r < 0.93) {
      await store.removeProber(pick(PROBERS));
    } else if (r < 0.95) {
      await follower.resync();
      const bad = mismatches();
      if (bad.length > 0) failures.push(`step ${step}, after a re-read: ${JSON.stringify(detail(bad[0]))}`);
    } else if (r < 0.97) {
      // The follower's own urgent recompute (end of the event-loop turn), at the same clock.
      await new Promise((resolve) => setImmediate(resolve));
    }

    const c = random();
    if (c < 0.3) {
      const before = runtime.state;
      const beforeEntries = [...before.sites].map(([k, s]): [string, SiteState] => [k, structuredClone(s)]);
      const incremental = follower.recomputes.incremental;
      follower.recompute(T, 'changes');
      batchChecks++;
      if (follower.recomputes.incremental > incremental) incrementalChecks++;
      const full = combine(follower.snapshotContents(), T, { staleAfterMs: STALE_AFTER_MS, livenessAt: T }).sites;
      // First the sites this batch touched (what the incremental path re-combined) ...
      for (const key of touched) {
        touchedChecked++;
        if (!isDeepStrictEqual(runtime.state.sites.get(key), full.get(key))) failures.push(`step ${step}, touched ${JSON.stringify(detail(key))}`);
      }
      // ... then every other one (carried over: must still be what a full combine gives).
      const bad = mismatches();
      if (bad.length > 0) failures.push(`step ${step}, after a batch recompute: ${bad.length} sites differ, e.g. ${JSON.stringify(detail(bad[0]))}`);
      // The snapshot that was replaced is left as it was (a new map, not an edit in place).
      if (runtime.state !== before) {
        immutableChecks++;
        if (!isDeepStrictEqual([...before.sites], beforeEntries)) failures.push(`step ${step}: the previous snapshot changed`);
      }
      touched = new Set();
    } else if (c < 0.4) {
      // What the tick does: nothing touched since the last recompute, only time moved.
      follower.recompute(T, 'changes');
      tickChecks++;
      const bad = mismatches();
      if (bad.length > 0) failures.push(`step ${step}, after a tick: ${bad.length} sites differ, e.g. ${JSON.stringify(detail(bad[0]))}`);
      touched = new Set();
    } else if (c < 0.45) {
      follower.recompute(T); // a full one (re-read, outage)
      tickChecks++;
      const bad = mismatches();
      if (bad.length > 0) failures.push(`step ${step}, after a tick: ${bad.length} sites differ, e.g. ${JSON.stringify(detail(bad[0]))}`);
      touched = new Set();
    }
  }
  t.same(failures, [], `seed ${seed}: no difference`);
  t.comment(`seed ${seed}: ${batchChecks} batch recomputes (${incrementalChecks} incremental), ${tickChecks} ticks, ${touchedChecked} touched sites compared; follower ran ${follower.recomputes.incremental} incremental and ${follower.recomputes.full} full recomputes`);
  t.ok(incrementalChecks > 300, 'the incremental path ran');
  t.ok(batchChecks - incrementalChecks > 50, 'and batches fell back to full ones (voters, drains, re-reads)');
  t.ok(immutableChecks > 100, 'replaced snapshots were compared');
  t.ok(touchedChecked > 500, 'touched sites were compared');

  // The gauges were set for the sites the recomputes changed (incremental ones included).
  const values = (await siteUp.get()).values;
  for (let i = 0; i < IN_ZONE; i++) {
    const gauge = values.find((v) => v.labels.zone === 'z.test' && v.labels.site === `s${i}`)?.value;
    if (gauge !== undefined) t.equal(gauge, stateOf(runtime.state, `z.test/s${i}`).up ? 1 : 0, `sitedns_site_up of s${i}`);
  }
});

t.test('a batch recompute falls back to a full one when the voters change or a drain expires', async (t) => {
  let T = 1_800_000_000_000;
  const store = new MemoryStateStore();
  const runtime = new Runtime(compileText(zoneText));
  const follower = new StateFollower({ store, runtime, logger, staleAfterMs: STALE_AFTER_MS, resyncMs: NEVER, tickMs: NEVER, now: () => T });
  t.teardown(() => follower.stop());
  await follower.start(100);
  const view = (up: boolean): ProbeView => ({ up, checkedAt: T, since: T, reason: up ? 'HTTP 200' : 'connection refused' });
  await store.heartbeat({ id: 'a', heartbeatAt: T, startedAt: T }, true);
  await store.heartbeat({ id: 'b', heartbeatAt: T - 4000, startedAt: T }, true);
  await store.writeView('a', 'z.test/s1', view(true));
  await store.writeView('b', 'z.test/s1', view(true));
  await store.writeView('a', 'z.test/s2', view(false));
  await store.writeView('b', 'z.test/s2', view(false));
  await store.setForced('z.test/s3', { state: 'down', by: 'ops', reason: 'r', until: T + 1150, at: T });
  follower.recompute(T, 'changes');
  const counts = () => ({ ...follower.recomputes });
  let before = counts();

  T += 100;
  await store.writeView('a', 'z.test/s1', { ...view(true), checkedAt: T });
  follower.recompute(T, 'changes');
  t.same(counts(), { ...before, incremental: before.incremental + 1 }, 'a view notice alone: incremental');
  t.equal(runtime.state.sites.get('z.test/s1')!.checkedAt, T);

  before = counts();
  T += 1000; // b's heartbeat is now 5.1 s old: b no longer votes, so every site may change
  await store.writeView('a', 'z.test/s1', { ...view(true), checkedAt: T });
  follower.recompute(T, 'changes');
  t.same(counts(), { ...before, full: before.full + 1 }, 'voters changed: full');
  t.equal(runtime.state.sites.get('z.test/s2')!.reason, 'connection refused', 'an untouched site re-combined without b');

  before = counts();
  T += 100; // past the drain's expiry
  await store.writeView('a', 'z.test/s1', { ...view(true), checkedAt: T });
  t.equal(runtime.state.sites.get('z.test/s3')!.up, false, 'still drained');
  follower.recompute(T, 'changes');
  t.same(counts(), { ...before, full: before.full + 1 }, 'a drain expired: full');
  t.equal(runtime.state.sites.get('z.test/s3'), undefined, 'the expired drain is gone');

  before = counts();
  await store.setForced('z.test/s4', { state: 'up', by: 'ops', reason: 'r', until: T + 60_000, at: T });
  follower.recompute(T, 'changes');
  t.same(counts(), { ...before, full: before.full + 1 }, 'a forced-state notice: full');
  before = counts();
  await store.report('z.test/s1', { load: 3, at: T });
  await store.writeView('a', 'z.test/s1', { ...view(true), checkedAt: T + 1 });
  follower.recompute(T, 'changes');
  t.same(counts(), { ...before, incremental: before.incremental + 1 }, 'a report does not force a full one');
});

t.test('the tick (its own timer) recomputes in full only when time changed the voters or a drain', async (t) => {
  let T = 1_800_000_000_000;
  const store = new MemoryStateStore();
  const runtime = new Runtime(compileText(zoneText));
  const follower = new StateFollower({ store, runtime, logger, staleAfterMs: STALE_AFTER_MS, resyncMs: NEVER, tickMs: 10, now: () => T });
  t.teardown(() => follower.stop());
  await follower.start(100);
  await store.heartbeat({ id: 'a', heartbeatAt: T, startedAt: T }, true);
  await store.writeView('a', 'z.test/s1', { up: true, checkedAt: T, since: T, reason: 'HTTP 200' });
  await store.setForced('z.test/s2', { state: 'down', by: 'ops', reason: 'r', until: T + 1000, at: T });
  const ticks = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 12));
  };
  await ticks(3); // the notices' own recomputes and one full tick settle
  let before = { ...follower.recomputes };
  await ticks(10);
  t.equal(follower.recomputes.full, before.full, 'quiet ticks: no full recompute');
  t.ok(follower.recomputes.incremental > before.incremental + 5, `quiet ticks ran the incremental path (${follower.recomputes.incremental - before.incremental})`);

  before = { ...follower.recomputes };
  T += 1500; // the drain expired
  await ticks(3);
  t.ok(follower.recomputes.full > before.full, 'a tick after the drain expired: full');
  t.equal(runtime.state.sites.get('z.test/s2'), undefined, 'and the drain is gone');

  before = { ...follower.recomputes };
  T += STALE_AFTER_MS; // prober a is silent: the voters change (fail static)
  await ticks(3);
  t.ok(follower.recomputes.full > before.full, 'a tick after the prober went stale: full');
  t.equal(runtime.state.fresh, false, 'answering from the last known state');
});
