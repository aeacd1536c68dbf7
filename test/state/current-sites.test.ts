/**
 * Hysteresis current sites shared through the store (policy/shared-current-sites.ts): which previous
 * site the rule starts from (the store's record, else the nameserver's own), and what is written
 * back; then followers over one store publishing and adopting them, a move by time alone, a
 * reload adding a hysteresis pool, the messages that carry them to the UDP threads, and the
 * record in Redis.
 */
import t from 'tap';
import { shareCurrentSites } from '../../src/policy/shared-current-sites.js';
import { applyStateMessage, deltaMessage, stateMessage } from '../../src/state/messages.js';
import { deltaOf, makeSnapshot, recordDelta } from '../../src/state/snapshot.js';
import { StateFollower } from '../../src/state/follower.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { Runtime } from '../../src/state/runtime.js';
import type { CurrentSite, ProbeView } from '../../src/state/types.js';
import { eventually } from '../helpers/backends.js';
import { redisStoreAndRaw } from '../helpers/redis.js';
import { createLogger } from '../../src/util/logger.js';
import { compileText } from '../helpers/dns.js';
import { NOW, snap } from '../helpers/policy.js';

const zoneText = (pool: string) => `zone: t.test
soa: { mname: ns1.t.test, rname: h.t.test }
nameservers: { ns1.t.test: [192.0.2.53] }
sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20] }
  c: { addresses: [192.0.2.30] }
${pool}`;
const HYSTERESIS = 'pool: { name: "@", policy: least-busy, hysteresis: { stay_below: 0.5, differential: 0.2 } }\n';
const zones = compileText(zoneText(HYSTERESIS));
const records = (entries: Record<string, string>) => new Map<string, CurrentSite>(Object.entries(entries).map(([k, site]) => [k, { site }]));
const own = (entries: Record<string, string>) => new Map(Object.entries(entries));

t.test('what a nameserver answers and writes', async (t) => {
  const low = snap({ a: { u: 0.3 }, b: { u: 0.1 }, c: { u: 0.2 } }).sites;
  const rows: [string, Map<string, CurrentSite>, Map<string, string>, ReadonlyMap<string, object>, string, string | undefined][] = [
    ['no record, none of its own: first pick, written', records({}), own({}), low, 'b', 'b'],
    ['no record (an empty store), its own site still a stay: kept, written back', records({}), own({ 't.test': 'a' }), low, 'a', 'a'],
    ['a record that is a valid stay: adopted instead of its own first pick, nothing written', records({ 't.test': 'a' }), own({}), low, 'a', undefined],
    ['the record wins over its own last decision', records({ 't.test': 'c' }), own({ 't.test': 'a' }), low, 'c', undefined],
    ['a move from the record: written', records({ 't.test': 'a' }), own({ 't.test': 'a' }), snap({ a: { u: 0.9 }, b: { u: 0.1 } }).sites, 'b', 'b'],
    ['the record down: picked anew, written', records({ 't.test': 'a' }), own({ 't.test': 'a' }), snap({ a: { up: false }, b: { u: 0.2 }, c: { u: 0.1 } }).sites, 'c', 'c'],
    ['a record naming no candidate, its own site kept: not rewritten (no tug of war)', records({ 't.test': 'gone' }), own({ 't.test': 'b' }), low, 'b', undefined],
    ['a record naming no candidate, nothing of its own: its first pick written', records({ 't.test': 'gone' }), own({}), low, 'b', 'b'],
  ];
  for (const [why, stored, mine, states, answer, written] of rows) {
    const { current, writes } = shareCurrentSites(zones, stored, mine, states as never, NOW);
    t.same({ answer: current.get('t.test'), written: writes.get('t.test') }, { answer, written }, why);
  }
  const twice = [0, 1].map(() => shareCurrentSites(zones, records({ 't.test': 'a' }), own({ 't.test': 'a' }), snap({ a: { u: 0.8 }, b: { u: 0.3 }, c: { u: 0.3 } }).sites, NOW));
  t.same([...twice[0].writes], [...twice[1].writes], 'two nameservers computing the same move write the same value');
  t.same(shareCurrentSites(compileText(zoneText('pool: { name: "@", policy: least-busy }\n')), records({}), own({}), low, NOW).current.size, 0, 'no hysteresis pool: no current site');
});

const logger = createLogger('silent');
const NEVER = 1_000_000_000;
const view = (utilization: number, at: number): ProbeView => ({ up: true, utilization, load: utilization, checkedAt: at, loadAt: at, since: at - 10_000, reason: 'HTTP 200' });

t.test('followers over one store: the first decides, a later one adopts, both move together', async (t) => {
  let T = NOW;
  const store = new MemoryStateStore();
  const follower = (text: string) => {
    const runtime = new Runtime(compileText(text));
    const f = new StateFollower({ store, runtime, logger, currentSites: shareCurrentSites, resyncMs: NEVER, tickMs: NEVER, now: () => T });
    t.teardown(() => f.stop());
    return { runtime, follower: f };
  };
  await store.heartbeat({ id: 'p', heartbeatAt: T, startedAt: T }, true);
  const loads = async (a: number, b: number, c: number) => {
    for (const [id, u] of Object.entries({ a, b, c })) await store.writeView('p', `t.test/${id}`, view(u, T));
    await new Promise((r) => setTimeout(r, 80)); // past the load batch
  };
  await loads(0.3, 0.1, 0.2);
  const one = follower(zoneText(HYSTERESIS));
  await one.follower.start(100);
  t.same([...one.runtime.state.currentSites], [['t.test', 'b']], 'first pick: the least utilized, published with the snapshot');
  t.same((await store.readAll()).current.get('t.test'), { site: 'b' }, 'and written to the store');

  await loads(0.1, 0.4, 0.3);
  const two = follower(zoneText(HYSTERESIS));
  await two.follower.start(100);
  t.equal(two.runtime.state.currentSites.get('t.test'), 'b', 'a nameserver started later adopts the stored site (its own first pick would be a)');
  t.equal(one.runtime.state.currentSites.get('t.test'), 'b', 'the first stays on it (below stay_below)');

  await loads(0.1, 0.9, 0.3);
  t.same([one, two].map((n) => n.runtime.state.currentSites.get('t.test')), ['a', 'a'], 'both move to the least utilized');
  t.same((await store.readAll()).current.get('t.test'), { site: 'a' }, 'the move is stored');

  await loads(0.9, 0.9, 0.9);
  t.same([one, two].map((n) => n.runtime.state.currentSites.get('t.test')), ['a', 'a'], 'all busy alike: both stay');
  T += 1000;
  await store.writeView('p', 't.test/b', view(0.2, T));
  await new Promise((r) => setTimeout(r, 80));
  t.same([one, two].map((n) => n.runtime.state.currentSites.get('t.test')), ['b', 'b'], 'one site lower by the differential: both move to it');
});

t.test('self-probing: the current site is decided from its own verdicts, answered here and not written', async (t) => {
  let T = 1_800_000_000_000;
  const store = new MemoryStateStore();
  const runtime = new Runtime(zones);
  let emit: ((key: string, v: ProbeView | null) => void) | undefined;
  const selfProber = { start: (onView: typeof emit) => (emit = onView), stop: () => (emit = undefined) };
  const follower = new StateFollower({ store, runtime, logger, currentSites: shareCurrentSites, staleAfterMs: 5000, resyncMs: NEVER, tickMs: NEVER, now: () => T, selfProber });
  t.teardown(() => follower.stop());
  await store.heartbeat({ id: 'p', heartbeatAt: T, startedAt: T }, true);
  for (const [site, u] of [['a', 0.3], ['b', 0.1], ['c', 0.2]] as const) await store.writeView('p', `t.test/${site}`, view(u, T));
  await follower.start(100);
  t.equal(runtime.state.currentSites.get('t.test'), 'b');
  t.equal((await store.readAll()).current.get('t.test')?.site, 'b', 'the first pick written');
  T += 5001; // the prober is gone
  follower.recompute();
  t.equal(follower.selfProbingActive, true);
  emit!('t.test/b', { up: false, checkedAt: T, since: T, reason: 'connection refused', decisive: true });
  await new Promise((r) => setImmediate(r));
  t.equal(runtime.state.currentSites.get('t.test'), 'a', 'b dead by its own probes: moved here (the loads stale with the prober gone: the first site up)');
  t.equal((await store.readAll()).current.get('t.test')?.site, 'b', 'the store keeps its record: other nameservers do not adopt it');
  T += 1000;
  follower.recompute();
  t.equal(runtime.state.currentSites.get('t.test'), 'a', 'and it stays');
  t.equal((await store.readAll()).current.get('t.test')?.site, 'b');
});

t.test('a tick moves the current site when time alone decides; a reload adds a list', async (t) => {
  let T = NOW;
  const store = new MemoryStateStore();
  const runtime = new Runtime(compileText(zoneText('pool: { name: "@", policy: least-busy }\n')));
  const f = new StateFollower({ store, runtime, logger, currentSites: shareCurrentSites, resyncMs: NEVER, tickMs: 20, now: () => T });
  t.teardown(() => f.stop());
  await store.heartbeat({ id: 'p', heartbeatAt: T, startedAt: T }, true);
  // a down until T + 1 s by a drain: the first pick is b; the drain's expiry is time alone.
  await store.setForced('t.test/a', { state: 'down', by: 'ops', reason: 'x', until: T + 1000, at: T });
  await store.writeView('p', 't.test/b', view(0.2, T));
  await f.start(100);
  t.equal(runtime.state.currentSites.size, 0, 'no hysteresis pool: no current site');
  runtime.publishZones(compileText(zoneText(HYSTERESIS)));
  t.same([...runtime.state.currentSites], [['t.test', 'b']], 'a reload adding hysteresis decides its current site at once');
  await store.writeView('p', 't.test/b', view(0.9, T));
  await store.writeView('p', 't.test/a', view(0, T));
  await store.heartbeat({ id: 'p', heartbeatAt: T + 1500, startedAt: T });
  await new Promise((r) => setTimeout(r, 80));
  t.equal(runtime.state.currentSites.get('t.test'), 'b', 'a drained: still b');
  T += 1500; // the drain has expired: no notice, only time
  await new Promise((r) => setTimeout(r, 100));
  t.equal(runtime.state.currentSites.get('t.test'), 'a', 'the tick moved it to a, back and lower by the differential');
});

t.test('the UDP threads\' state and delta messages carry the current sites', async (t) => {
  const first = makeSnapshot(snap({ a: { u: 0.9 } }).sites, true, NOW, new Map([['t.test', 'a']]));
  const received = applyStateMessage(null, structuredClone(stateMessage(first)))!;
  t.same([...received.currentSites], [['t.test', 'a']], 'a whole state');
  // A move decided by time alone: no site changed, only the current site.
  const moved = makeSnapshot(first.sites, true, NOW + 250, new Map([['t.test', 'b']]));
  recordDelta(moved, { from: first.version, changed: new Set() });
  const message = structuredClone(deltaMessage(moved, deltaOf(moved)!));
  t.same(message.sites, [], 'the delta names no site');
  t.same([...applyStateMessage(received, message)!.currentSites], [['t.test', 'b']], 'and still moves the thread to b');
});

t.test('in Redis: the documented key, format and notice; a malformed record is skipped', async (t) => {
  const { store, raw, notices } = await redisStoreAndRaw(t);
  await store.setCurrent('www.t.test/east', { site: 'b' });
  t.same(JSON.parse((await raw.hget('sd:current', 'www.t.test/east'))!), { site: 'b' });
  await eventually('the notice', () => notices.length === 1);
  t.same(notices[0], { t: 'current', key: 'www.t.test/east', current: { site: 'b' } });
  await raw.hset('sd:current', 'www.t.test', '{"site": 3}');
  const all = await store.readAll();
  t.same([...all.current], [['www.t.test/east', { site: 'b' }]], 'read back; the malformed one skipped');
});
