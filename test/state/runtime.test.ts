/** Runtime (src/state/runtime.ts): one assignment per swap, any number of subscribers, unsubscribe. */
import t from 'tap';
import { makeZoneSet } from '../../src/config/compile.js';
import { NO_ZONES, Runtime } from '../../src/state/runtime.js';
import { EMPTY_SNAPSHOT, makeSnapshot, type StateSnapshot } from '../../src/state/snapshot.js';
import type { ZoneSet } from '../../src/model/zone-model.js';

const snapshot = (n: number) => makeSnapshot(new Map([['z.test/a', { up: n % 2 === 0 }]]), true, n);

t.test('two state subscribers both see every swap, after it took effect; unsubscribe stops one', async (t) => {
  const runtime = new Runtime();
  t.equal(runtime.zones, NO_ZONES, 'no zones before the first publish');
  t.equal(runtime.state, EMPTY_SNAPSHOT);
  const first: StateSnapshot[] = [];
  const second: StateSnapshot[] = [];
  const stopFirst = runtime.subscribeState((s) => {
    t.equal(runtime.state, s, 'the first subscriber sees the swap in effect');
    first.push(s);
  });
  runtime.subscribeState((s) => {
    t.equal(runtime.state, s, 'the second one too');
    second.push(s);
  });
  const [a, b, c] = [snapshot(1), snapshot(2), snapshot(3)];
  runtime.publishState(a);
  runtime.publishState(b);
  t.same(first, [a, b], 'the first subscriber got every swap');
  t.same(second, [a, b], 'and so did the second: neither replaces the other');
  stopFirst();
  runtime.publishState(c);
  t.same(first, [a, b], 'unsubscribed: nothing more');
  t.same(second, [a, b, c], 'the other still follows');
  t.equal(runtime.state, c);
});

t.test('zone subscribers: every set, in order, also when a subscriber publishes; a throwing one does not stop the others', async (t) => {
  const runtime = new Runtime();
  const sets: ZoneSet[] = [makeZoneSet([]), makeZoneSet([]), makeZoneSet([])];
  const seenA: number[] = [];
  const seenB: number[] = [];
  runtime.subscribeZones((zones) => {
    seenA.push(zones.generation);
    // A subscriber that publishes during a delivery: its set reaches everyone after this one.
    if (zones === sets[0]) runtime.publishZones(sets[1]);
  });
  runtime.subscribeZones(() => {
    throw new Error('a broken subscriber');
  });
  runtime.subscribeZones((zones) => seenB.push(zones.generation));
  t.throws(() => runtime.publishZones(sets[0]), /a broken subscriber/, 'the publisher learns of the failure');
  t.same(seenA, [sets[0].generation, sets[1].generation]);
  t.same(seenB, [sets[0].generation, sets[1].generation], 'the subscriber after the broken one got both, in order');
  t.equal(runtime.zones, sets[1], 'the latest set is served');
});

t.test('the same function subscribed twice is two subscriptions; each unsubscribe ends its own', async (t) => {
  const runtime = new Runtime();
  let calls = 0;
  const listener = () => void calls++;
  const one = runtime.subscribeState(listener);
  runtime.subscribeState(listener);
  runtime.publishState(snapshot(1));
  t.equal(calls, 2);
  one();
  one(); // a second call changes nothing
  runtime.publishState(snapshot(2));
  t.equal(calls, 3);
});

t.test('the fields are plain data properties (the handler reads them per query)', async (t) => {
  const runtime = new Runtime();
  runtime.publishState(snapshot(1));
  runtime.publishZones(makeZoneSet([]));
  for (const field of ['zones', 'state']) {
    const descriptor = Object.getOwnPropertyDescriptor(runtime, field);
    t.ok(descriptor !== undefined && 'value' in descriptor && descriptor.get === undefined, `${field}: a value, no accessor`);
  }
});
