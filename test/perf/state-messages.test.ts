/**
 * The state messages the main thread posts to the UDP threads (src/state/messages.ts):
 * a whole snapshot and a delta survive the MessagePort's structured clone, and a delta applies
 * only to the snapshot it starts from.
 */
import t from 'tap';
import { makeSnapshot } from '../../src/state/snapshot.js';
import { applyDeltaMessage, applyStateMessage, deltaMessage, snapshotFromMessage, stateMessage } from '../../src/state/messages.js';

t.test('a whole snapshot survives the message unchanged', async (t) => {
  const snapshot = makeSnapshot(new Map([['app.example.com/boston', { up: false, reason: 'probe: timeout', checkedAt: 5 }], ['app.example.com/chicago', { up: true, load: 3, utilization: 0.03 }]]), true, 1234);
  const back = snapshotFromMessage(structuredClone(stateMessage(snapshot)));
  t.same([...back.sites], [...snapshot.sites]);
  t.equal(back.version, snapshot.version);
  t.equal(back.takenAt, 1234);
  t.equal(back.fresh, true);
  t.ok(Object.isFrozen(back));
});

t.test('a delta applied to the snapshot it starts from gives the new snapshot', async (t) => {
  const before = makeSnapshot(new Map([['z/a', { up: true, load: 1 }], ['z/b', { up: false, reason: 'refused' }], ['z/c', { up: true }]]), true, 10);
  const after = makeSnapshot(new Map([['z/a', { up: true, load: 2 }], ['z/b', { up: false, reason: 'refused' }], ['z/d', { up: true, reason: 'new' }]]), false, 20);
  const posted = structuredClone(deltaMessage(after, { from: before.version, changed: new Set(['z/a', 'z/c', 'z/d']) }));
  t.same(posted.removed, ['z/c']);
  t.same(posted.sites.map(([k]) => k), ['z/a', 'z/d'], 'only the changed sites travel');
  const held = snapshotFromMessage(structuredClone(stateMessage(before)));
  const applied = applyDeltaMessage(held, posted)!;
  t.same(new Map(applied.sites), new Map(after.sites));
  t.same([applied.version, applied.takenAt, applied.fresh], [after.version, 20, false]);
  t.ok(Object.isFrozen(applied));
  t.same([...held.sites.keys()], ['z/a', 'z/b', 'z/c'], 'the held snapshot is left as it was');
  t.equal(applyDeltaMessage(applied, posted), null, 'a delta from another version does not apply');
  t.equal(applyStateMessage(null, posted), null, 'nor to a receiver that holds no snapshot (it asks for the whole state)');
  t.same(new Map(applyStateMessage(null, stateMessage(after))!.sites), new Map(after.sites), 'a whole state applies to any receiver');
});
