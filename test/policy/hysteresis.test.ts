/** Hysteresis (seed 002): stay below the first level; move only for the differential. */
import t from 'tap';
import { selectAnswer } from '../../src/policy/select.js';
import { answerOf, env, nameOf, NOW, RESOLVER, snap, zoneOf } from '../helpers/policy.js';

const zone = zoneOf(`sites:
  a: { addresses: [192.0.2.10, "2001:db8::10"] }
  b: { addresses: [192.0.2.20] }
  c: { addresses: [192.0.2.30] }
pool: { name: "@", policy: least-busy, hysteresis: { stay_below: 0.5, differential: 0.2 } }
`);
const pool = nameOf(zone, '@');

t.test('stays, then moves only for the differential (one memory through the table)', async (t) => {
  const e = env([0]); // the first weighted site when the base policy decides
  const steps: [Record<string, object>, 4 | 6, string, string][] = [
    [{ a: { u: 0.1 }, b: { u: 0.1 }, c: { u: 0.1 } }, 4, 'a', 'first choice by least-busy'],
    [{ a: { u: 0.45 }, b: { u: 0.0 }, c: { u: 0.0 } }, 4, 'a', 'below the first level: stay, however idle the others'],
    [{ a: { u: 0.6 }, b: { u: 0.45 }, c: { u: 0.5 } }, 4, 'a', 'above it, but no site lower by 0.2: stay'],
    [{ a: { u: 0.7 }, b: { u: 0.55 }, c: { u: 0.5 } }, 4, 'c', 'c lower by exactly 0.2: move to the least loaded'],
    [{ a: { u: 0.0 }, b: { u: 0.0 }, c: { u: 0.49 } }, 4, 'c', 'the new current site stays below the first level'],
    [{ a: { u: 0.0 }, b: { u: 0.0 }, c: { u: 0.9 }, }, 4, 'a', 'moves again: to the least loaded (tie a/b: first)'],
    [{ a: { u: 0.9 }, b: { u: 0.75 } }, 4, 'a', 'only unknown or too-close peers: stay (c unknown)'],
    [{ a: { utilization: 0.9, loadAt: NOW - 60_000 }, b: { u: 0 } }, 4, 'a', 'stale load of the current site: stay'],
    [{ a: { up: false }, b: { u: 0.3 }, c: { u: 0.3 } }, 4, 'b', 'current down: the base policy chooses anew'],
    [{ a: { u: 0 }, b: { u: 0.3 }, c: { u: 0.3 } }, 6, 'a', 'AAAA: b has no IPv6, the base policy answers'],
    [{ a: { u: 0 }, b: { u: 0.3 }, c: { u: 0.3 } }, 4, 'b', '... without changing the current site'],
  ];
  for (const [states, family, expected, why] of steps) {
    t.equal(answerOf(selectAnswer(pool, family, snap(states), RESOLVER, e)), expected, why);
  }
});

t.test('without memory hysteresis cannot hold a site: the base policy answers', async (t) => {
  const e = env([0.99], NOW, null);
  t.equal(answerOf(selectAnswer(pool, 4, snap({ a: { u: 0.1 }, b: { u: 0.1 }, c: { u: 0.1 } }), RESOLVER, e)), 'c');
});
