/**
 * Prepared selection: which names it prepares, and that it gives exactly what selectAnswer
 * gives (the same Selection, from the same draw) over random snapshots, clocks and draws,
 * including loads turning stale while a snapshot stays and a clock that moves back.
 */
import t from 'tap';
import type { DynamicName } from '../../src/model/zone-model.js';
import { PolicyMemory } from '../../src/policy/memory.js';
import { PreparedSelection, preparedKind } from '../../src/policy/prepared.js';
import { selectAnswer } from '../../src/policy/select.js';
import type { Family, PolicyEnv } from '../../src/policy/types.js';
import { makeSnapshot, type SiteState, type StateSnapshot } from '../../src/state/snapshot.js';
import { lcg, nameOf, NOW, RESOLVER, zoneOf } from '../helpers/policy.js';

const SITES = `sites:
  a: { addresses: [192.0.2.10, "2001:db8::10"], capacity: 1000 }
  b: { addresses: [192.0.2.20], capacity: 1000 }
  c: { addresses: [192.0.2.30, "2001:db8::30"], capacity: 500, probe: { tcp: "192.0.2.30:443", interval: 2s } }
  d: { addresses: ["2001:db8::40"], capacity: 250 }
groups:
  east: [a, b]
  west: [c, d, a]
`;

const zones = {
  leastBusy: zoneOf(`${SITES}pool: { name: "@", policy: least-busy }\n`),
  first: zoneOf(`${SITES}pool: { name: "@", policy: first, all_down: sorry, sorry: 192.0.2.99 }\n`),
  perAnswer: zoneOf(`${SITES}pool: { name: "@", policy: least-busy, load_per_answer: 1 }\n`),
  answers: zoneOf(`${SITES}pool: { name: "@", policy: least-busy, answers: 2 }\n`),
  hysteresis: zoneOf(`${SITES}pool: { name: "@", policy: least-busy, hysteresis: {} }\n`),
  topology: zoneOf(`${SITES}pool: { name: "@", policy: least-busy, topology: { east: [192.0.2.0/24] } }\n`),
  roundRobin: zoneOf(`${SITES}pool: { name: "@", policy: round-robin }\n`),
  offload: zoneOf(`${SITES}pool: { name: "@", policy: offload, primary: a, offload: [b, c] }\n`),
  noPool: zoneOf(SITES),
};

t.test('which names are prepared', async (t) => {
  const kinds = (zone: (typeof zones)[keyof typeof zones]) => Object.fromEntries(zone.dynamicNames.map((d) => [d.name.split('.')[0], preparedKind(d)]));
  t.same(kinds(zones.leastBusy), { t: 'least-busy', a: 'fixed', b: 'fixed', c: 'fixed', d: 'fixed', east: 'least-busy', west: 'least-busy' });
  t.equal(preparedKind(nameOf(zones.first, '@')), 'fixed');
  t.equal(preparedKind(nameOf(zones.offload, '@')), 'per-query', 'offload pools follow thresholds per query');
  t.equal(preparedKind(nameOf(zones.offload, 'east')), 'least-busy', "an offload pool's groups balance by load");
  for (const z of ['perAnswer', 'answers', 'hysteresis', 'topology', 'roundRobin'] as const) t.equal(preparedKind(nameOf(zones[z], '@')), 'per-query', z);
  t.equal(preparedKind(nameOf(zones.topology, 'east')), 'least-busy', 'topology does not apply to Group Names');
});

/** A random snapshot of the four sites: up or down, with or without a (timestamped) load. */
function randomSnapshot(rnd: () => number, now: number): StateSnapshot {
  const sites = new Map<string, SiteState>();
  for (const id of ['a', 'b', 'c', 'd']) {
    const r = rnd();
    if (r < 0.1) continue; // never probed: up, no load
    const state: { -readonly [K in keyof SiteState]: SiteState[K] } = { up: rnd() > 0.25 };
    const l = rnd();
    if (l < 0.6) state.utilization = rnd() * 1.2;
    else if (l < 0.8) state.load = rnd() * 1200;
    else if (l < 0.85) state.utilization = Number.NaN;
    const at = rnd();
    // Around the staleness edges (5 s; 6 s for c): some fresh, some stale, some about to turn.
    if (at < 0.45) state.loadAt = now - Math.floor(rnd() * 8000);
    else if (at < 0.7) state.checkedAt = now - Math.floor(rnd() * 8000);
    sites.set(`t.test/${id}`, state);
  }
  return makeSnapshot(sites, true, now);
}

t.test('prepared.select() is selectAnswer(), draw for draw', async (t) => {
  const rnd = lcg(20261123);
  const names: DynamicName[] = Object.values(zones).flatMap((z) => z.dynamicNames);
  const prepared = new Map<string, PreparedSelection>();
  const preparedOf = (name: DynamicName, family: Family) => {
    const key = `${name.name}/${family}/${names.indexOf(name)}`;
    let p = prepared.get(key);
    if (p === undefined) prepared.set(key, (p = new PreparedSelection(name, family)));
    return p;
  };
  // Two envs fed the same clock and draws; separate memories that see the same calls.
  let now = NOW;
  let draw = 0;
  const envOf = (memory: PolicyMemory): PolicyEnv => ({ now: () => now, random: () => draw, memory });
  const reference = envOf(new PolicyMemory());
  const fast = envOf(new PolicyMemory());
  let compared = 0;
  let mismatches = 0;
  const kinds = new Set<string>();
  for (let round = 0; round < 400; round++) {
    const snapshot = randomSnapshot(rnd, now);
    // Several queries per snapshot while the clock runs on (loads turn stale) or moves back.
    for (let step = 0; step < 12; step++) {
      const jump = rnd();
      now += jump < 0.1 ? -Math.floor(rnd() * 3000) : Math.floor(rnd() * 1500);
      for (const name of names) {
        for (const family of [4, 6] as const) {
          draw = rnd();
          const expected = selectAnswer(name, family, snapshot, RESOLVER, reference);
          const actual = preparedOf(name, family).select(snapshot, RESOLVER, fast);
          compared++;
          kinds.add(`${preparedKind(name)}:${expected.kind}${expected.allDown ? ':all-down' : ''}`);
          if (expected.kind === 'sites' && actual.kind === 'sites' && expected.sites.length === 1 && expected.sites[0] === actual.sites[0] && expected.reason === actual.reason) continue;
          if (JSON.stringify(strip(expected)) !== JSON.stringify(strip(actual))) {
            mismatches++;
            if (mismatches <= 5) t.fail(`${name.name} family ${family} at +${now - NOW} ms`, { expected: strip(expected), actual: strip(actual), snapshot: [...snapshot.sites] });
          }
        }
      }
    }
  }
  t.equal(mismatches, 0, `${compared} selections compared`);
  t.ok(compared > 100_000);
  // The random cases reached every outcome worth checking.
  for (const k of ['fixed:sites', 'fixed:sorry', 'fixed:sites:all-down', 'least-busy:sites', 'least-busy:sites:all-down', 'per-query:sites']) t.ok(kinds.has(k), k);
});

/** A Selection with its sites as ids (comparable as JSON). */
function strip(s: ReturnType<typeof selectAnswer>): unknown {
  return s.kind === 'sites' ? { ...s, sites: s.sites.map((x) => x.id) } : s;
}

t.test('a snapshot is prepared once; the clock is read only while loads carry timestamps', async (t) => {
  const pool = nameOf(zones.leastBusy, '@');
  let clockReads = 0;
  let now = NOW;
  const e: PolicyEnv = { now: () => (clockReads++, now), random: () => 0.5 };
  const untimed = makeSnapshot(new Map([['t.test/a', { up: true, utilization: 0.5 }]]), true, NOW);
  const p = new PreparedSelection(pool, 4);
  for (let i = 0; i < 100; i++) p.select(untimed, RESOLVER, e);
  t.equal(clockReads, 1, 'loads without timestamps: the clock is read when preparing only');

  const timed = makeSnapshot(new Map([['t.test/a', { up: true, utilization: 0.9, loadAt: NOW }], ['t.test/b', { up: true, utilization: 0.1, loadAt: NOW }]]), true, NOW);
  clockReads = 0;
  t.equal(p.select(timed, RESOLVER, { ...e, random: () => 0.99 }).reason, 'least busy');
  // a at 0.9, b at 0.1, c unknown (at the mean): b takes most, a none.
  const pick = () => (p.select(timed, RESOLVER, { ...e, random: () => 0.01 }) as { sites: { id: string }[] }).sites[0].id;
  t.equal(pick(), 'b');
  now = NOW + 5001; // both loads stale: split by capacity, a first
  t.equal(pick(), 'a');
  now = NOW + 100; // the clock moved back: fresh again
  t.equal(pick(), 'b');
  t.equal(clockReads, 4, 'one clock read per query while a load carries a timestamp');
});

t.test('a snapshot that makes the policy throw throws on every query', async (t) => {
  const broken = { sites: null as any, version: 1, takenAt: 0, fresh: true };
  for (const name of [nameOf(zones.leastBusy, '@'), nameOf(zones.leastBusy, 'a')]) {
    const p = new PreparedSelection(name, 4);
    const e: PolicyEnv = { now: () => NOW, random: () => 0.5 };
    t.throws(() => p.select(broken, RESOLVER, e));
    t.throws(() => p.select(broken, RESOLVER, e), 'again, not half a plan');
    const good = makeSnapshot(new Map(), true, NOW);
    t.equal(p.select(good, RESOLVER, e).kind, 'sites', 'and a good snapshot after it answers');
  }
});
