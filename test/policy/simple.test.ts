/** first, round-robin, weighted, random; Site Name failover; all_down per name. */
import t from 'tap';
import { failover } from '../../src/policy/failover.js';
import { selectAnswer } from '../../src/policy/select.js';
import { first, random, roundRobin, weighted } from '../../src/policy/simple.js';
import { answerOf, env, nameOf, RESOLVER, snap, zoneOf } from '../helpers/policy.js';

const zoneFor = (policy: string, extra = '') =>
  zoneOf(`sites:
  a: { addresses: [192.0.2.10], capacity: 3 }
  b: { addresses: [192.0.2.20, "2001:db8::20"], capacity: 1 }
  c: { addresses: [192.0.2.30], capacity: 1 }
groups:
  g: [b, c, a]
pool: { name: "@", policy: ${policy}${extra} }
`);

t.test('first: the first usable site in order', async (t) => {
  const p = nameOf(zoneFor('first'), '@');
  const cases: [Record<string, object>, 4 | 6, string][] = [
    [{}, 4, 'a'],
    [{ a: { up: false } }, 4, 'b'],
    [{ a: { up: false }, b: { up: false } }, 4, 'c'],
    [{}, 6, 'b'],
    [{ a: { up: false }, b: { up: false }, c: { up: false } }, 4, 'a,b,c'], // all_down: all (pool default)
  ];
  for (const [states, family, expected] of cases) {
    t.equal(answerOf(selectAnswer(p, family, snap(states), RESOLVER, env())), expected, `${JSON.stringify(states)} A${family === 6 ? 'AAA' : ''}`);
  }
  // Loads do not matter to first.
  t.equal(answerOf(first(p, p.sites, 4, snap({ a: { u: 5 }, b: { u: 0 } }), RESOLVER, env())!), 'a');
});

t.test('round-robin: each usable site in turn, position in PolicyMemory', async (t) => {
  const p = nameOf(zoneFor('round-robin'), '@');
  const e = env();
  const seq = (s: ReturnType<typeof snap>, n: number) => Array.from({ length: n }, () => answerOf(roundRobin(p, p.sites, 4, s, RESOLVER, e)!));
  t.same(seq(snap({}), 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  t.same(seq(snap({ b: { up: false } }), 4), ['a', 'c', 'a', 'c'], 'down sites skipped');
  const noMemory = env([0], undefined, null);
  t.same(Array.from({ length: 3 }, () => answerOf(roundRobin(p, p.sites, 4, snap({}), RESOLVER, noMemory)!)), ['a', 'a', 'a'], 'without memory: always the first');
  // A Group Name of the same pool has its own position.
  const g = nameOf(zoneFor('round-robin'), 'g');
  const e2 = env();
  t.same(Array.from({ length: 4 }, () => answerOf(selectAnswer(g, 4, snap({}), RESOLVER, e2))), ['b', 'c', 'a', 'b'], 'group: group order');
  t.same(Array.from({ length: 3 }, () => answerOf(selectAnswer(g, 6, snap({}), RESOLVER, e2))), ['b', 'b', 'b'], 'AAAA: the only IPv6 site');
});

t.test('weighted: in proportion to capacity; random: uniform', async (t) => {
  const p = nameOf(zoneFor('weighted'), '@');
  // Weights 3:1:1 -> a on [0, 0.6), b on [0.6, 0.8), c on [0.8, 1).
  t.same([0, 0.59, 0.61, 0.79, 0.81].map((r) => answerOf(weighted(p, p.sites, 4, snap({}), RESOLVER, env([r]))!)), ['a', 'a', 'b', 'b', 'c']);
  t.same([0, 0.34, 0.34, 0.67].map((r) => answerOf(random(p, p.sites, 4, snap({}), RESOLVER, env([r]))!)), ['a', 'b', 'b', 'c']);
  t.same([0, 0.5, 0.99].map((r) => answerOf(weighted(p, p.sites, 4, snap({ a: { up: false } }), RESOLVER, env([r]))!)), ['b', 'c', 'c'], 'down skipped');
  t.equal(weighted(p, p.sites, 4, snap({ a: { up: false }, b: { up: false }, c: { up: false } }), RESOLVER, env()), undefined);
});

t.test('Site Name failover truth table, and all_down per name', async (t) => {
  const z = zoneOf(`sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20, "2001:db8::20"] }
  c: { addresses: [192.0.2.30], all_down: servfail }
  d: { addresses: [192.0.2.40], all_down: nodata }
groups:
  g: [a, b, c]
  h: [d]
pool: { name: "@", sorry: 192.0.2.250, all_down: sorry }
`);
  const site = (id: string) => nameOf(z, id);
  const cases: [string, Record<string, object>, 4 | 6, string, boolean?][] = [
    ['a', {}, 4, 'a'],
    ['a', { a: { up: false } }, 4, 'b'],
    ['b', { b: { up: false } }, 4, 'c'],
    ['c', { c: { up: false } }, 4, 'a', false], // wraps
    ['a', { a: { up: false }, b: { up: false }, c: { up: false } }, 4, 'a', true], // all down: first (the site itself)
    ['a', { a: { up: false } }, 6, 'b'],
    ['a', {}, 6, 'nodata', false], // a is up but has no IPv6 address: its own site, so NODATA (seed 004, App. A)
    ['b', { b: { up: false } }, 6, 'b', false], // down, no later site has IPv6: the all_down rule for the family (first: itself)
    ['c', { a: { up: false }, b: { up: false }, c: { up: false } }, 4, 'servfail', true],
    ['d', { d: { up: false } }, 4, 'nodata', true],
    ['@', { a: { up: false }, b: { up: false }, c: { up: false }, d: { up: false } }, 4, 'sorry', true],
  ];
  for (const [id, states, family, expected, allDown] of cases) {
    const s = id === '@' ? selectAnswer(nameOf(z, '@'), family, snap(states), RESOLVER, env()) : failover(site(id), family, snap(states), RESOLVER, env());
    t.equal(answerOf(s), expected, `${id} ${JSON.stringify(states)} A${family === 6 ? 'AAA' : ''} -> ${expected}`);
    if (allDown !== undefined) t.equal(s.allDown === true, allDown, `  all-down state: ${allDown}`);
  }
  // all_down: first on a group name, all on the pool.
  const z2 = zoneOf(`sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20] }
groups:
  g: { sites: [b, a], all_down: first }
pool: { name: "@", all_down: all }
`);
  const down = snap({ a: { up: false }, b: { up: false } });
  t.equal(answerOf(selectAnswer(nameOf(z2, 'g'), 4, down, RESOLVER, env())), 'b', 'group all_down first: first in group order');
  t.equal(answerOf(selectAnswer(nameOf(z2, '@'), 4, down, RESOLVER, env())), 'a,b', 'pool all_down all: every address');
});

t.test('weighted with even draws: every 5 answers in a row give a 3, b and c 1 each, give or take one', async (t) => {
  const { PolicyMemory } = await import('../../src/policy/memory.js');
  const p = nameOf(zoneFor('weighted'), '@');
  const picks = (evenDraws: boolean) => {
    let x = 0.3;
    const e = { now: () => 0, random: () => (x = (x * 9301 + 49297) % 233280 / 233280), memory: new PolicyMemory(), evenDraws };
    return Array.from({ length: 500 }, () => answerOf(weighted(p, p.sites, 4, snap({}), RESOLVER, e)!));
  };
  /** The farthest any site strays from its share (capacity 3 : 1 : 1) over 5 answers in a row. */
  const worst = (xs: string[]) => {
    let most = 0;
    for (let i = 0; i + 5 <= xs.length; i++) {
      const run = xs.slice(i, i + 5);
      for (const [id, share] of [['a', 3], ['b', 1], ['c', 1]] as const) most = Math.max(most, Math.abs(run.filter((x) => x === id).length - share));
    }
    return most;
  };
  t.ok(worst(picks(true)) <= 1, 'even draws: at most one off in any 5');
  t.ok(worst(picks(false)) >= 2, 'independent draws: two or more off in some 5');
});

t.test('answers: 2: weighted and random start the rest after the drawn site', async (t) => {
  for (const policy of ['weighted', 'random']) {
    const p = nameOf(zoneOf(`sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20] }
  c: { addresses: [192.0.2.30] }
pool: { name: "@", policy: ${policy}, answers: 2 }
`), '@');
    const pick = policy === 'weighted' ? weighted : random;
    const answers = [0.1, 0.5, 0.9].map((draw) => answerOf(pick(p, p.sites, 4, snap({}), RESOLVER, env([draw]))!));
    t.same(answers, ['a,b', 'b,c', 'c,a'], `${policy}: each site second once in three`);
  }
});
