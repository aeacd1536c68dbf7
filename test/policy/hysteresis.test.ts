/** Hysteresis (seed 002): stay below the first level; move only for the differential. */
import t from 'tap';
import { makeZoneSet } from '../../src/config/compile.js';
import { decideCurrentSites, hysteresisLists, nextCurrentSite } from '../../src/policy/hysteresis.js';
import { selectAnswer } from '../../src/policy/select.js';
import { makeSnapshot, type StateSnapshot } from '../../src/state/snapshot.js';
import { answerOf, env, nameOf, NOW, RESOLVER, snap, withCurrentSites, zoneOf } from '../helpers/policy.js';

const zone = zoneOf(`sites:
  a: { addresses: [192.0.2.10, "2001:db8::10"] }
  b: { addresses: [192.0.2.20] }
  c: { addresses: [192.0.2.30] }
pool: { name: "@", policy: least-busy, hysteresis: { stay_below: 0.5, differential: 0.2 } }
`);
const pool = nameOf(zone, '@');

t.test('stays, then moves only for the differential (each snapshot decided from the last)', async (t) => {
  const e = env([0]);
  const steps: [Record<string, object>, 4 | 6, string, string][] = [
    [{ a: { u: 0.1 }, b: { u: 0.1 }, c: { u: 0.1 } }, 4, 'a', 'first pick: the least utilized (tie: first listed)'],
    [{ a: { u: 0.45 }, b: { u: 0.0 }, c: { u: 0.0 } }, 4, 'a', 'below the first level: stay, however idle the others'],
    [{ a: { u: 0.6 }, b: { u: 0.45 }, c: { u: 0.5 } }, 4, 'a', 'above it, but no site lower by 0.2: stay'],
    [{ a: { u: 0.7 }, b: { u: 0.55 }, c: { u: 0.5 } }, 4, 'c', 'c lower by exactly 0.2: move to the least loaded'],
    [{ a: { u: 0.0 }, b: { u: 0.0 }, c: { u: 0.49 } }, 4, 'c', 'the new current site stays below the first level'],
    [{ a: { u: 0.0 }, b: { u: 0.0 }, c: { u: 0.9 }, }, 4, 'a', 'moves again: to the least loaded (tie a/b: first)'],
    [{ a: { u: 0.9 }, b: { u: 0.75 } }, 4, 'a', 'only unknown or too-close peers: stay (c unknown)'],
    [{ a: { utilization: 0.9, loadAt: NOW - 60_000 }, b: { u: 0 } }, 4, 'a', 'stale load of the current site: stay'],
    [{ a: { up: false }, b: { u: 0.3 }, c: { u: 0.3 } }, 4, 'b', 'current down: picked anew'],
    [{ a: { u: 0 }, b: { u: 0.3 }, c: { u: 0.3 } }, 6, 'a', 'AAAA: b has no IPv6, the base policy answers'],
    [{ a: { u: 0 }, b: { u: 0.3 }, c: { u: 0.3 } }, 4, 'b', '... without changing the current site'],
  ];
  let previous: StateSnapshot | undefined;
  for (const [states, family, expected, why] of steps) {
    const snapshot = withCurrentSites(zone, snap(states), previous);
    previous = snapshot;
    t.equal(answerOf(selectAnswer(pool, family, snapshot, RESOLVER, e)), expected, why);
  }
});

t.test('without a published current site hysteresis cannot hold a site: the base policy answers', async (t) => {
  const e = env([0.99], NOW, null);
  t.equal(answerOf(selectAnswer(pool, 4, snap({ a: { u: 0.1 }, b: { u: 0.1 }, c: { u: 0.1 } }), RESOLVER, e)), 'c');
});

t.test('a published current site that is down in the snapshot answered is not answered', async (t) => {
  const down = makeSnapshot(snap({ a: { up: false }, b: { u: 0.1 }, c: { u: 0.1 } }).sites, true, NOW, new Map([['t.test', 'a']]));
  t.equal(answerOf(selectAnswer(pool, 4, down, RESOLVER, env([0.99]))), 'c', 'the base policy answers (its draw: c)');
});

t.test('the stay-or-move rule, one decision at a time', async (t) => {
  const [list] = hysteresisLists(makeZoneSet([zone]));
  const site = (id: string) => zone.sites.find((s) => s.id === id)!;
  const drained = { up: false, reason: 'drained by ops: upgrade', forced: { state: 'down' as const, by: 'ops', reason: 'upgrade', until: NOW + 60_000 } };
  const rows: [string, string | undefined, Record<string, object>, string | undefined][] = [
    ['stay below stay_below', 'a', { a: { u: 0.49 }, b: { u: 0 }, c: { u: 0 } }, 'a'],
    ['at stay_below, nobody lower by the differential: stay', 'a', { a: { u: 0.5 }, b: { u: 0.31 }, c: { u: 0.45 } }, 'a'],
    ['lower by the differential: move', 'a', { a: { u: 0.5 }, b: { u: 0.3 }, c: { u: 0.45 } }, 'b'],
    ['move to the least utilized, not the first lower enough', 'a', { a: { u: 0.9 }, b: { u: 0.6 }, c: { u: 0.2 } }, 'c'],
    ['move, tie between two: the first listed', 'c', { a: { u: 0.9 }, b: { u: 0.1 }, c: { u: 0.9 } }, 'b'],
    ['unknown load of the current site: stay', 'b', { a: { u: 0 }, c: { u: 0 } }, 'b'],
    ['stale load of the current site: stay', 'b', { a: { u: 0 }, b: { utilization: 0.99, loadAt: NOW - 60_000 }, c: { u: 0 } }, 'b'],
    ['the only lower site has a stale load: stay', 'a', { a: { u: 0.9 }, b: { utilization: 0, loadAt: NOW - 60_000 }, c: { u: 0.8 } }, 'a'],
    ['a lower site that is down is no target', 'a', { a: { u: 0.9 }, b: { up: false, utilization: 0 }, c: { u: 0.8 } }, 'a'],
    ['current down: the least utilized up site', 'a', { a: { up: false }, b: { u: 0.4 }, c: { u: 0.3 } }, 'c'],
    ['current drained: the same', 'a', { a: drained, b: { u: 0.3 }, c: { u: 0.3 } }, 'b'],
    ['current no longer a candidate: picked anew', 'gone', { a: { u: 0.3 }, b: { u: 0.2 }, c: { u: 0.3 } }, 'b'],
    ['first pick: the least utilized', undefined, { a: { u: 0.3 }, b: { u: 0.2 }, c: { u: 0.1 } }, 'c'],
    ['first pick: measured loads before unknown ones', undefined, { b: { u: 0.7 } }, 'b'],
    ['first pick, every load unknown: the first up site listed', undefined, { a: { up: false } }, 'b'],
    ['nothing up: no current site', 'a', { a: { up: false }, b: { up: false }, c: { up: false } }, undefined],
  ];
  for (const [why, previous, states, expected] of rows) {
    const before = previous === undefined ? undefined : (zone.sites.find((s) => s.id === previous) ?? { ...site('a'), id: previous });
    t.equal(nextCurrentSite(list, before, snap(states).sites, NOW)?.id, expected, why);
  }
});

t.test('one current site per candidate list: the pool and each of its groups', async (t) => {
  const topo = zoneOf(`sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20] }
  c: { addresses: [192.0.2.30] }
  d: { addresses: [192.0.2.40] }
groups:
  east: [a, b]
  west: [c, d]
pool: { name: "@", policy: least-busy, hysteresis: {}, topology: { east: [192.0.2.0/24], west: [198.51.100.0/24] } }
`);
  const zones = makeZoneSet([topo]);
  t.same(hysteresisLists(zones).map((l) => l.key), ['t.test', 't.test/east', 't.test/west'], 'keys: the pool name, then pool/group');
  const states = snap({ a: { u: 0.3 }, b: { u: 0.2 }, c: { u: 0.1 }, d: { u: 0.4 } });
  const decided = decideCurrentSites(zones, new Map(), states.sites, NOW);
  t.same([...decided], [['t.test', 'c'], ['t.test/east', 'b'], ['t.test/west', 'c']]);
  const snapshot = makeSnapshot(states.sites, true, NOW, decided);
  const e = env([0.99]);
  t.equal(answerOf(selectAnswer(nameOf(topo, '@'), 4, snapshot, RESOLVER, e)), 'b', 'an east client gets east\'s current site');
  t.equal(answerOf(selectAnswer(nameOf(topo, '@'), 4, snapshot, { address: '198.51.100.7', ecs: null }, e)), 'c', 'a west client west\'s');
  t.equal(answerOf(selectAnswer(nameOf(topo, 'east'), 4, snapshot, RESOLVER, e)), 'b', 'the Group Name shares its group\'s current site');
});

t.test('deterministic: equal inputs give equal decisions', async (t) => {
  const zones = makeZoneSet([zone]);
  const states = snap({ a: { u: 0.2 }, b: { u: 0.2 }, c: { u: 0.2 } }).sites;
  const runs = Array.from({ length: 5 }, () => [...decideCurrentSites(zones, new Map(), states, NOW)]);
  t.same(runs, Array(5).fill([['t.test', 'a']]), 'a three-way tie: the first listed, every time');
  const moved = decideCurrentSites(zones, new Map([['t.test', 'a']]), snap({ a: { u: 0.9 }, b: { u: 0.1 }, c: { u: 0.1 } }).sites, NOW);
  t.same([...moved], [['t.test', 'b']], 'a move with a tie goes to the first listed too');
});
