/** least-busy: headroom weighting, unknown and stale loads, ties, the since-report correction. */
import t from 'tap';
namespace Tap {
  export type Test = import('tap').Test;
}
import { leastBusy, MARGIN_REPORTS_ONLY } from '../../src/policy/least-busy.js';
import { selectAnswer } from '../../src/policy/select.js';
import { PolicyMemory } from '../../src/policy/memory.js';
import { answerOf, env, lcg, nameOf, NOW, RESOLVER, snap, zoneOf } from '../helpers/policy.js';

const zone = zoneOf(`sites:
  a: { addresses: [192.0.2.10, "2001:db8::10"], capacity: 1000 }
  b: { addresses: [192.0.2.20], capacity: 1000 }
  c: { addresses: [192.0.2.30], capacity: 500 }
pool: { name: "@", policy: least-busy }
`);
const pool = nameOf(zone, '@');

/** Three sites of equal capacity in a least-busy pool, with more pool settings in `extra`. */
const equalSites = (extra: string) =>
  zoneOf(`sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20] }
  c: { addresses: [192.0.2.30] }
pool: { name: "@", policy: least-busy${extra} }
`);

/** Shares of 20 000 answers drawn with a deterministic uniform sequence. */
function shares(snapshot: ReturnType<typeof snap>, family: 4 | 6 = 4, name = pool) {
  const rnd = lcg(7);
  const e = { now: () => NOW, random: rnd };
  const counts: Record<string, number> = {};
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const s = leastBusy(name, name.sites, family, snapshot, RESOLVER, e)!;
    const id = answerOf(s);
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / n]));
}

/** Shares equal within 0.015 (20 000 draws), same sites. */
function near(t: Tap.Test, actual: Record<string, number>, expected: Record<string, number>, message: string) {
  const ok = Object.keys(actual).sort().join() === Object.keys(expected).sort().join() && Object.keys(expected).every((k) => Math.abs(actual[k] - expected[k]) < 0.015);
  t.ok(ok, message, { actual, expected });
}

t.test('weights: capacity x headroom below mean + margin', async (t) => {
  // Balanced at 70 %: shares follow capacity (0.4/0.4/0.2), whatever the level.
  near(t, shares(snap({ a: { u: 0.7 }, b: { u: 0.7 }, c: { u: 0.7 } })), { a: 0.4, b: 0.4, c: 0.2 }, 'balanced: by capacity');
  // Mean 0.66; ceiling 0.76: a 1000*0.16=160, b 1000*0.06=60, c 500*0.06=30 (of 250).
  near(t, shares(snap({ a: { u: 0.6 }, b: { u: 0.7 }, c: { u: 0.7 } })), { a: 0.64, b: 0.24, c: 0.12 }, 'the less busy site gets more, not all');
  // A site more than the margin above the mean gets nothing until reports show it back.
  const hot = shares(snap({ a: { u: 0.5 }, b: { u: 0.5 }, c: { u: 0.5 + 2 * MARGIN_REPORTS_ONLY + 0.2 } }));
  t.equal(hot.c, undefined, 'far above the mean: no answers');
  near(t, hot, { a: 0.5, b: 0.5 }, 'a and b share');
});

t.test('ties are shared, not herded', async (t) => {
  const s = snap({ a: { u: 0.3 }, b: { u: 0.3 }, c: { u: 0.3 } });
  const chosen = [0, 0.39, 0.41, 0.79, 0.81, 0.99].map((r) => answerOf(leastBusy(pool, pool.sites, 4, s, RESOLVER, env([r]))!));
  t.same(chosen, ['a', 'a', 'b', 'b', 'c', 'c'], 'the draw decides among equal sites, in proportion to capacity');
});

t.test('unknown and stale loads', async (t) => {
  near(t, shares(snap({})), { a: 0.4, b: 0.4, c: 0.2 }, 'no load known: by capacity');
  // c unknown stands at the mean of a and b (0.5), ceiling 0.6: a 1000x0.2, b 0, c 500x0.1.
  near(t, shares(snap({ a: { u: 0.4 }, b: { u: 0.6 } })), { a: 0.8, c: 0.2 }, 'unknown = mean of the known, not idle');
  // c reported 0 % but 6 s ago (stale after 5 s): ignored, so c is not flooded either.
  const stale = snap({ a: { u: 0.4 }, b: { u: 0.6 }, c: { utilization: 0, loadAt: NOW - 6000 } });
  near(t, shares(stale), { a: 0.8, c: 0.2 }, 'stale = unknown');
  const fresh = snap({ a: { u: 0.4 }, b: { u: 0.6 }, c: { utilization: 0, loadAt: NOW - 4000 } });
  t.ok(shares(fresh).c! > 0.3, 'a 4 s old load is still used (more than the 0.2 an unknown load gets)');
  // checkedAt stands in for loadAt; load/capacity when no utilization is given.
  const byLoad = snap({ a: { load: 400, checkedAt: NOW }, b: { load: 600, checkedAt: NOW }, c: { load: 0, checkedAt: NOW - 60_000 } });
  near(t, shares(byLoad), { a: 0.8, c: 0.2 }, 'load / capacity, checkedAt for staleness');
});

t.test('down sites and sites without the family are skipped; all down follows all_down', async (t) => {
  near(t, shares(snap({ a: { up: false, u: 0 }, b: { u: 0.5 }, c: { u: 0.5 } })), { b: 0.67, c: 0.33 }, 'shares');
  near(t, shares(snap({ a: { u: 0.9 }, b: { u: 0 } }), 6), { a: 1 }, 'AAAA: only the site with an IPv6 address');
  t.equal(leastBusy(pool, pool.sites, 4, snap({ a: { up: false }, b: { up: false }, c: { up: false } }), RESOLVER, env()), undefined);
  const all = selectAnswer(pool, 4, snap({ a: { up: false }, b: { up: false }, c: { up: false } }), RESOLVER, env());
  t.same([all.kind, all.allDown, answerOf(all)], ['sites', true, 'a,b,c'], 'pool default all_down: all');
  const v6 = selectAnswer(pool, 6, snap({ a: { up: false }, b: { u: 0 } }), RESOLVER, env());
  t.same([answerOf(v6), v6.allDown], ['a', false], 'the only IPv6 site down, others up: all_down rule, not the all-down state');
});

t.test('answers handed out since the report count when load_per_answer is set', async (t) => {
  const z = zoneOf(`sites:
  a: { addresses: [192.0.2.10], capacity: 100 }
  b: { addresses: [192.0.2.20], capacity: 100 }
pool: { name: "@", policy: least-busy, load_per_answer: 1 }
`);
  const p = nameOf(z, '@');
  const memory = new PolicyMemory();
  const s = snap({ a: { u: 0.5 }, b: { u: 0.5 } });
  const e = env([0.01], NOW + 2000, memory); // every draw lands on the first weighted site
  const picks = Array.from({ length: 12 }, () => answerOf(leastBusy(p, p.sites, 4, s, RESOLVER, e)!));
  // Each answer adds 1 point to a (capacity 100). After 10, a stands at 0.60, the mean at 0.55 and
  // the ceiling (mean + 0.05) at a: a gets nothing more until b has had one.
  t.same(picks, ['a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'b', 'a']);
  t.equal(memory.answersSince(p.sites[0], NOW, NOW + 2000), 11);
  // A new report (measured after those answers) resets the correction.
  const later = snap({ a: { utilization: 0.56, loadAt: NOW + 2500 }, b: { utilization: 0.56, loadAt: NOW + 2500 } });
  e.setNow(NOW + 2600);
  t.equal(memory.answersSince(p.sites[0], NOW + 2500, NOW + 2600), 0);
  t.equal(answerOf(leastBusy(p, p.sites, 4, later, RESOLVER, e)!), 'a', 'fresh report, no correction');
  // Without memory the correction is off (and nothing is recorded).
  const noMemory = { now: () => NOW, random: () => 0.01 };
  t.same(Array.from({ length: 3 }, () => answerOf(leastBusy(p, p.sites, 4, s, RESOLVER, noMemory)!)), ['a', 'a', 'a']);
});

t.test('answers: N lists the chosen site first, then the least utilized', async (t) => {
  const z = equalSites(', answers: 2');
  const p = nameOf(z, '@');
  const s = snap({ a: { u: 0.5 }, b: { u: 0.1 }, c: { u: 0.3 } });
  t.equal(answerOf(leastBusy(p, p.sites, 4, s, RESOLVER, env([0.99]))!), 'c,b');
  t.equal(answerOf(leastBusy(p, p.sites, 4, s, RESOLVER, env([0]))!), 'b,c');
});

t.test('AnswerLog counts answers since a time, by 250 ms buckets', async (t) => {
  const { AnswerLog } = await import('../../src/policy/memory.js');
  const log = new AnswerLog(NOW);
  for (const at of [0, 100, 300, 1000, 1100, 1200, 5000]) log.record(NOW + at);
  t.equal(log.since(NOW, NOW + 5000), 7);
  t.equal(log.since(NOW + 260, NOW + 5000), 5, 'from the bucket holding +260 (250..499)');
  t.equal(log.since(NOW + 600, NOW + 5000), 4, 'an empty bucket: from the next one that saw answers');
  t.equal(log.since(NOW + 4000, NOW + 5000), 1);
  t.equal(log.since(NOW + 5100, NOW + 5100), 1, 'the current bucket counts whole');
  t.equal(log.since(NOW + 6000, NOW + 7000), 0, 'nothing since');
  t.equal(log.since(NOW - 60_000, NOW + 40_000), 0, 'older than the ring (32 s): forgotten');
});

t.test('answers: 2 with equal or unknown loads: every site is second as often as first', async (t) => {
  const z = equalSites(', answers: 2');
  const p = nameOf(z, '@');
  for (const [label, s] of [['equal', snap({ a: { u: 0.4 }, b: { u: 0.4 }, c: { u: 0.4 } })], ['unknown', snap({})]] as const) {
    const seconds: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (const draw of [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) seconds[answerOf(leastBusy(p, p.sites, 4, s, RESOLVER, env([draw]))!).split(',')[1]]++;
    t.same(seconds, { a: 3, b: 3, c: 3 }, `${label} loads: second places shared evenly`);
  }
  // A lower load still comes second before the order that follows the drawn site.
  t.equal(answerOf(leastBusy(p, p.sites, 4, snap({ a: { u: 0.3 }, b: { u: 0.3 }, c: { u: 0.2 } }), RESOLVER, env([0]))!), 'a,c');
});

t.test('slow start: no site draws more than twice its capacity share', async (t) => {
  // a and b at 60 %, c (capacity 500 of 2500) just back at 0 %: headroom alone gives c every
  // answer; capped at 2 x 0.2, and a and b (no headroom) share the rest by capacity.
  near(t, shares(snap({ a: { u: 0.6 }, b: { u: 0.6 }, c: { u: 0 } })), { a: 0.3, b: 0.3, c: 0.4 }, 'c capped at 0.4');
  // Three equal sites at 60 / 60 / 0 (the measured case): the idle one at 2/3, not all.
  const equal = equalSites('');
  near(t, shares(snap({ a: { u: 0.6 }, b: { u: 0.6 }, c: { u: 0 } }), 4, nameOf(equal, '@')), { a: 1 / 6, b: 1 / 6, c: 2 / 3 }, 'equal capacities: 2/3 at most');
  // What a capped site loses goes to the others by their weights: to b, not to a (above the ceiling).
  near(t, shares(snap({ a: { u: 0.5 }, b: { u: 0.3 }, c: { u: 0 } })), { b: 0.6, c: 0.4 }, 'c capped, the rest to b by headroom');
  // Two sites: twice a half share is everything, so nothing changes.
  const two = zoneOf(`sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20] }
pool: { name: "@", policy: least-busy }
`);
  near(t, shares(snap({ a: { u: 0.6 }, b: { u: 0 } }), 4, nameOf(two, '@')), { b: 1 }, 'two sites: no cap below 100 %');
});

t.test('even draws: any run of answers follows the weights to within two', async (t) => {
  const { PreparedSelection } = await import('../../src/policy/prepared.js');
  const { systemEnv, withMemory } = await import('../../src/policy/types.js');
  t.equal(systemEnv.evenDraws, true, 'the answering env draws evenly');
  t.equal(withMemory(systemEnv).evenDraws, true, 'and keeps doing so with the memory the Handler adds');
  // c just back (60 / 60 / 0 %): its bound is 2 x 0.2 = 0.4 of the answers.
  const s = snap({ a: { u: 0.6 }, b: { u: 0.6 }, c: { u: 0 } });
  const run = (even: boolean) => {
    const e = { now: () => NOW, random: lcg(11), memory: new PolicyMemory(), evenDraws: even };
    return Array.from({ length: 2000 }, () => answerOf(leastBusy(pool, pool.sites, 4, s, RESOLVER, e)!));
  };
  /** The most answers c gets in any `n` consecutive answers. */
  const mostInWindow = (picks: string[], n: number) => {
    let most = 0;
    for (let i = 0; i + n <= picks.length; i++) most = Math.max(most, picks.slice(i, i + n).filter((x) => x === 'c').length);
    return most;
  };
  for (const n of [10, 20, 50]) {
    t.ok(mostInWindow(run(true), n) <= 0.4 * n + 2, `even: at most 0.4 x ${n} + 2 answers to c in any ${n} in a row`);
    t.ok(mostInWindow(run(false), n) > 0.4 * n + 2, `independent draws: more than 0.4 x ${n} + 2 in some ${n} in a row`);
  }
  // The prepared fast path draws the very same points as selectAnswer.
  const reference = { now: () => NOW, random: lcg(5), memory: new PolicyMemory(), evenDraws: true };
  const fast = { now: () => NOW, random: lcg(5), memory: new PolicyMemory(), evenDraws: true };
  const prepared = new PreparedSelection(pool, 4);
  const mismatches = Array.from({ length: 500 }, () => [answerOf(selectAnswer(pool, 4, s, RESOLVER, reference)), answerOf(prepared.select(s, RESOLVER, fast))]).filter(([x, y]) => x !== y);
  t.equal(mismatches.length, 0, 'prepared = selectAnswer, draw for draw');
  // Without a memory there is no sequence to continue: each draw is random().
  t.same(Array.from({ length: 3 }, () => answerOf(leastBusy(pool, pool.sites, 4, s, RESOLVER, { now: () => NOW, random: () => 0.01, evenDraws: true })!)), ['a', 'a', 'a']);
});

t.test('even draws: each name continues its own sequence', async (t) => {
  const z = equalSites('');
  const p = nameOf(z, '@');
  const s = snap({ a: { u: 0.5 }, b: { u: 0.5 }, c: { u: 0.5 } });
  const memory = new PolicyMemory();
  const e = { now: () => NOW, random: () => 0.1, memory, evenDraws: true };
  // Equal thirds: the points 0.1, 0.718, 0.336, 0.954, ... visit a, c, b, c, ...: never one site twice running for long.
  const picks = Array.from({ length: 30 }, () => answerOf(leastBusy(p, p.sites, 4, s, RESOLVER, e)!));
  for (const id of ['a', 'b', 'c']) t.equal(picks.filter((x) => x === id).length, 10, `${id}: 10 of 30`);
  // Another name starts its own sequence from random(), whatever the first has drawn.
  t.equal(answerOf(leastBusy(pool, pool.sites, 4, snap({ a: { u: 0.5 }, b: { u: 0.5 }, c: { u: 0.5 } }), RESOLVER, e)!), 'a');
});

t.test('even draws: A and AAAA of a name draw from two sequences', async (t) => {
  const { PreparedSelection } = await import('../../src/policy/prepared.js');
  const dualStack = (policy: string, capacities: number[]) =>
    nameOf(
      zoneOf(`sites:
${capacities.map((c, i) => `  s${i}: { addresses: [192.0.2.${10 + i}, "2001:db8::${10 + i}"], capacity: ${c} }`).join('\n')}
pool: { name: "@", policy: ${policy} }
`),
      '@',
    );
  /** A client asking A then AAAA after `earlier` dual-stack clients did the same: one site for both? */
  const sameSite = (p: ReturnType<typeof dualStack>, s: ReturnType<typeof snap>, e: Parameters<typeof selectAnswer>[4], earlier: number) => {
    let same = false;
    for (let i = 0; i <= earlier; i++) same = answerOf(selectAnswer(p, 4, s, RESOLVER, e)) === answerOf(selectAnswer(p, 6, s, RESOLVER, e));
    return same;
  };
  // Independent draws put both on one site with chance sum(share^2); the two sequences' starts
  // are independent random() values, so over the starts even draws do the same, at any position.
  const table: { case: string; policy: string; capacities: number[]; loads: number[]; shares: number[] }[] = [
    { case: 'three equal sites', policy: 'least-busy', capacities: [1, 1, 1], loads: [0.5, 0.5, 0.5], shares: [1 / 3, 1 / 3, 1 / 3] },
    { case: 'two equal sites', policy: 'least-busy', capacities: [1, 1], loads: [0.5, 0.5], shares: [1 / 2, 1 / 2] },
    { case: 'one just back at 60 / 60 / 0 %', policy: 'least-busy', capacities: [1, 1, 1], loads: [0.6, 0.6, 0], shares: [1 / 6, 1 / 6, 2 / 3] },
    { case: 'weighted 3 : 1 : 1', policy: 'weighted', capacities: [3, 1, 1], loads: [], shares: [0.6, 0.2, 0.2] },
  ];
  for (const row of table) {
    const p = dualStack(row.policy, row.capacities);
    const s = snap(Object.fromEntries(row.capacities.map((_, i) => [`s${i}`, row.loads[i] === undefined ? {} : { u: row.loads[i] }])));
    const expected = row.shares.reduce((sum, x) => sum + x * x, 0);
    const rate = (evenDraws: boolean) => {
      const random = lcg(29);
      const trials = 3000;
      let same = 0;
      for (let i = 0; i < trials; i++) if (sameSite(p, s, { now: () => NOW, random, memory: new PolicyMemory(), evenDraws }, i % 5)) same++;
      return same / trials;
    };
    const even = rate(true);
    const independent = rate(false);
    t.ok(Math.abs(even - expected) < 0.03, `${row.case}: even draws, A and AAAA on one site ${even.toFixed(3)} of the time, sum(share^2) = ${expected.toFixed(3)}`);
    t.ok(Math.abs(independent - expected) < 0.03, `${row.case}: independent draws ${independent.toFixed(3)}`);
  }
  // In one memory whose clients all ask A then AAAA in turn, the k-th A and the k-th AAAA points
  // keep the offset of the two starts: with three equal sites that offset alone sets the rate.
  const p = dualStack('least-busy', [1, 1, 1]);
  const s = snap({ s0: { u: 0.5 }, s1: { u: 0.5 }, s2: { u: 0.5 } });
  const lockstep = (starts: number[]) => {
    const e = env(starts);
    const picks = Array.from({ length: 100 }, () => sameSite(p, s, { ...e, evenDraws: true }, 0));
    return picks.filter(Boolean).length;
  };
  t.equal(lockstep([0.1, 0.5]), 0, 'starts 0.4 apart (more than a third): never one site');
  t.ok(Math.abs(lockstep([0.1, 0.2]) - 70) <= 2, 'starts 0.1 apart: one site 1 - 3 x 0.1 of the time');
  // The prepared fast path keeps the two sequences as selectAnswer does, draw for draw.
  const reference = { now: () => NOW, random: lcg(5), memory: new PolicyMemory(), evenDraws: true };
  const fast = { now: () => NOW, random: lcg(5), memory: new PolicyMemory(), evenDraws: true };
  const prepared = { 4: new PreparedSelection(p, 4), 6: new PreparedSelection(p, 6) };
  const families = Array.from({ length: 600 }, (_, i) => ((i * 7) % 3 === 0 ? 6 : 4) as 4 | 6);
  const mismatches = families.filter((f) => answerOf(selectAnswer(p, f, s, RESOLVER, reference)) !== answerOf(prepared[f].select(s, RESOLVER, fast)));
  t.equal(mismatches.length, 0, 'prepared = selectAnswer with A and AAAA interleaved');
});
