/**
 * Work in slices (src/util/slices.ts): the event loop gets turns between slices of about SLICE_MS
 * (timers, I/O and other work run meanwhile), the result is the same as running the steps at
 * once, and a validated config crosses threads as JSON chunks and comes back equal
 * (config/changed-files.ts packConfig / unpackConfigSteps).
 */
import t from 'tap';
import { packConfig, unpackConfigSteps } from '../../src/config/changed-files.js';
import type { ZoneFile } from '../../src/config/schema.js';
import { runAtOnce, runInSlices, SLICE_MS, type SliceStats, type Steps } from '../../src/util/slices.js';

/** `count` steps of about 1 ms of computing each; returns how many ran. */
function* busySteps(count: number): Steps<number> {
  for (let i = 0; i < count; i++) {
    const until = performance.now() + 1;
    while (performance.now() < until);
    yield;
  }
  return count;
}

t.test('the event loop turns between slices', async (t) => {
  let turns = 0;
  const timer = setInterval(() => turns++, 1);
  const stats: SliceStats = { slices: 0, longestMs: 0 };
  const done = await runInSlices(busySteps(60), stats);
  clearInterval(timer);
  t.equal(done, 60, 'every step ran, and the result is the generator\'s');
  t.ok(stats.slices >= 60 / (SLICE_MS + 2), `in slices: ${stats.slices}`);
  t.ok(turns >= 3, `a 1 ms timer ran meanwhile: ${turns} times`);
});

t.test('at once: every step, and the result', async (t) => {
  t.equal(runAtOnce(busySteps(5)), 5);
});

t.test('a packed config unpacks to the same config, in steps', async (t) => {
  const records: Record<string, unknown> = {};
  for (let i = 0; i < 2500; i++) records[`h${i}`] = { A: [`10.0.${i >> 8}.${i & 255}`] };
  // A name JSON.parse keeps as an own property; assigned plainly it would set the prototype.
  Object.defineProperty(records, '__proto__', { value: { TXT: 'x' }, enumerable: true, writable: true, configurable: true });
  records['1'] = { A: ['192.0.2.1'] };
  const config = { zone: 'p.test', ttl: 300, soa: { mname: 'ns1.p.test', rname: 'h.p.test' }, nameservers: {}, records } as unknown as ZoneFile;
  const packed = packConfig(config);
  t.equal(packed.length, 1 + 3, 'the config without records, then 1,000 records a chunk');
  const steps = unpackConfigSteps(packed);
  let pauses = 0;
  let next = steps.next();
  for (; !next.done; next = steps.next()) pauses++;
  t.equal(pauses, 3, 'a pause before each chunk');
  const unpacked = next.value;
  t.same(Object.keys(unpacked.records), Object.keys(records), 'the same names, in the same order');
  t.same(unpacked, config);
  t.ok(Object.hasOwn(unpacked.records, '__proto__'), '"__proto__" is a record name');
  t.equal(Object.getPrototypeOf(unpacked.records), Object.prototype);
});
