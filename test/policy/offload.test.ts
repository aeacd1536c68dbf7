/** Offload and throttling (seeds 000/001): T1/T2/T3, offload thresholds, choice, sorry, drop. */
import t from 'tap';
import { byClientHash } from '../../src/policy/offload.js';
import { selectAnswer } from '../../src/policy/select.js';
import type { ClientInfo } from '../../src/policy/types.js';
import { answerOf, env, nameOf, NOW, RESOLVER, snap, zoneOf } from '../helpers/policy.js';

const zoneWith = (choice: string) =>
  zoneOf(`sites:
  boston: { addresses: [203.0.113.10, "2001:db8:b::10"], capacity: 100 }
  chicago: { addresses: [203.0.113.20], threshold: 0.8, cost: 5 }
  geneva: { addresses: [198.51.100.30], threshold: 0.6, cost: 1 }
pool:
  name: "@"
  policy: offload
  primary: boston
  offload: [chicago, geneva]
  thresholds: { offload: 0.7, throttle: 0.9, drop: 0.97 }
  offload_choice: ${choice}
  sorry: 192.0.2.250
`);

t.test('the thresholds, by cost (geneva cheaper)', async (t) => {
  const pool = nameOf(zoneWith('cost'), '@');
  // [primary, chicago, geneva, draw, family, expected]
  type S = Record<string, object>;
  const cases: [S, number, 4 | 6, string, string][] = [
    [{ boston: {} }, 0, 4, 'boston', 'primary load unknown: primary'],
    [{ boston: { u: 0.5 } }, 0, 4, 'boston', 'below T1'],
    [{ boston: { u: 0.69 } }, 0, 4, 'boston', 'just below T1'],
    [{ boston: { u: 0.8 } }, 0.49, 4, 'geneva', 'T1..T2: share (0.8-0.7)/(0.9-0.7) = 0.5 offloaded'],
    [{ boston: { u: 0.8 } }, 0.51, 4, 'boston', '... and the rest stays on the primary'],
    [{ boston: { u: 0.75 } }, 0.3, 4, 'boston', 'less excess, smaller share (0.25)'],
    [{ boston: { u: 0.8 }, geneva: { u: 0.6 } }, 0, 4, 'chicago', 'geneva at its own threshold: the next eligible'],
    [{ boston: { u: 0.8 }, geneva: { u: 0.7 }, chicago: { u: 0.85 } }, 0, 4, 'boston', 'every offload site over its threshold: offloading stops'],
    [{ boston: { u: 0.8 }, geneva: { up: false }, chicago: { u: 0.85 } }, 0, 4, 'boston', 'down or over: stops too'],
    [{ boston: { u: 0.8 }, geneva: { utilization: 0.9, loadAt: NOW - 60_000 } }, 0, 4, 'geneva', 'a stale offload load counts as unknown: eligible'],
    [{ boston: { u: 0.95 } }, 0.7, 4, 'sorry', 'T2..T3: share (0.95-0.9)/0.07 = 0.71 throttled to the sorry address'],
    [{ boston: { u: 0.95 } }, 0.72, 4, 'geneva', '... the rest offloaded'],
    [{ boston: { u: 0.95 }, geneva: { u: 0.9 }, chicago: { u: 0.9 } }, 0.72, 4, 'boston', '... or the primary when no offload site is eligible'],
    [{ boston: { u: 0.97 } }, 0, 4, 'drop', 'at T3: dropped'],
    [{ boston: { u: 1.5 } }, 0.99, 4, 'drop', 'above T3: dropped'],
    [{ boston: { utilization: 0.99, loadAt: NOW - 60_000 } }, 0, 4, 'boston', 'a stale primary load: primary'],
    [{ boston: { up: false } }, 0, 4, 'geneva', 'primary down: an eligible offload site'],
    [{ boston: { up: false }, geneva: { u: 0.9 }, chicago: { u: 0.9 } }, 0, 4, 'geneva', 'primary down, none eligible: any up offload site (by cost)'],
    [{ boston: { u: 0.8 } }, 0.1, 6, 'boston', 'AAAA: no offload site has IPv6, the primary keeps it'],
    [{ boston: { u: 0.95 } }, 0.1, 6, 'boston', 'AAAA: no IPv6 sorry address, no IPv6 offload site: primary'],
    [{ boston: { up: false } }, 0, 6, 'boston', 'AAAA, primary down, no IPv6 offload: all_down (all: the primary\'s own address)'],
  ];
  for (const [states, draw, family, expected, why] of cases) {
    t.equal(answerOf(selectAnswer(pool, family, snap(states), RESOLVER, env([draw]))), expected, why);
  }
  const allDown = selectAnswer(pool, 4, snap({ boston: { up: false }, chicago: { up: false }, geneva: { up: false } }), RESOLVER, env());
  t.same([answerOf(allDown), allDown.allDown], ['boston,chicago,geneva', true], 'everything down: all_down');
});

t.test('the primary keeps K of the new answers above T1, and above T2 beside the sorry share', async (t) => {
  const shares = (keeps: string, u: number) => {
    const pool = nameOf(zoneOf(`sites:
  boston: { addresses: [203.0.113.10] }
  chicago: { addresses: [203.0.113.20] }
pool: { name: "@", policy: offload, primary: boston, offload: [chicago], thresholds: { offload: 0.7, throttle: 0.8, drop: 0.95 }, offload_choice: cost, sorry: 192.0.2.250${keeps} }
`), '@');
    const count: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const answer = answerOf(selectAnswer(pool, 4, snap({ boston: { u } }), RESOLVER, env([(i + 0.5) / 1000])));
      count[answer] = (count[answer] ?? 0) + 1;
    }
    return count;
  };
  // 85 %: throttle share (0.85 - 0.8) / 0.15 = 1/3; of the other 2/3, 5 % stay on the primary.
  t.same(shares('', 0.85), { sorry: 333, chicago: 634, boston: 33 });
  t.same(shares(', primary_keeps: 0.2', 0.85), { sorry: 333, chicago: 534, boston: 133 });
  t.same(shares(', primary_keeps: 0', 0.85), { sorry: 333, chicago: 667 }, 'K 0: everything not throttled is offloaded');
  // Just below T2 the offload share (0.99) is capped at 1 - K.
  t.same(shares(', primary_keeps: 0.2', 0.799), { chicago: 800, boston: 200 });
  t.same(shares(', primary_keeps: 0.2', 0.72), { chicago: 200, boston: 800 }, 'below the cap: (u - T1) / (T2 - T1)');
});

t.test('the split docs/policies.md gives: T1 0.7, T2 0.9, T3 0.97, u 0.95 is 71 % sorry, 27 % offloaded, 1.4 % primary', async (t) => {
  const pool = nameOf(zoneWith('cost'), '@');
  const count: Record<string, number> = {};
  for (let i = 0; i < 10_000; i++) {
    const answer = answerOf(selectAnswer(pool, 4, snap({ boston: { u: 0.95 } }), RESOLVER, env([(i + 0.5) / 10_000])));
    count[answer] = (count[answer] ?? 0) + 1;
  }
  t.same(count, { sorry: 7143, geneva: 2714, boston: 143 });
});

t.test('offload choice by client: stable, spread, minimal movement', async (t) => {
  const pool = nameOf(zoneWith('client'), '@');
  const busy = { boston: { u: 0.89 } }; // share 0.95
  const clients: ClientInfo[] = Array.from({ length: 400 }, (_, i) => ({ address: `10.${i >> 8}.${i & 255}.1`, ecs: null }));
  const before = clients.map((c) => answerOf(selectAnswer(pool, 4, snap(busy), c, env([0]))));
  const again = clients.map((c) => answerOf(selectAnswer(pool, 4, snap(busy), c, env([0]))));
  t.same(again, before, 'the same client gets the same offload site');
  const chicago = before.filter((a) => a === 'chicago').length;
  t.ok(chicago > 120 && chicago < 280, `both sites used (${chicago} of 400 on chicago)`);
  const withoutGeneva = clients.map((c) => answerOf(selectAnswer(pool, 4, snap({ ...busy, geneva: { u: 0.7 } }), c, env([0]))));
  t.ok(before.every((a, i) => a !== 'chicago' || withoutGeneva[i] === 'chicago'), 'geneva over its threshold moves only geneva\'s clients');
  // The resolver's /24 is the client network: neighbours stay together; ECS is used when present.
  t.equal(byClientHash(pool.pool!.offload, { address: '10.0.7.1', ecs: null }), byClientHash(pool.pool!.offload, { address: '10.0.7.200', ecs: null }));
});

t.test('offload choice by client: the ECS scope is the source prefix that decided (RFC 7871 §7.2.1)', async (t) => {
  const pool = nameOf(zoneWith('client'), '@');
  const ecs = (sourcePrefix: number) => ({ family: 1 as const, sourcePrefix, address: Buffer.from([198, 51, 100, 0]) });
  const offloaded = selectAnswer(pool, 4, snap({ boston: { u: 0.89 } }), { address: '10.0.0.1', ecs: ecs(24) }, env([0]));
  t.match(offloaded, { kind: 'sites', reason: /by client/, scope: 24 });
  t.equal(selectAnswer(pool, 4, snap({ boston: { u: 0.89 } }), { address: '10.0.0.1', ecs: ecs(20) }, env([0])).scope, 20);
  t.equal(selectAnswer(pool, 4, snap({ boston: { u: 0.89 } }), { address: '10.0.0.1', ecs: null }, env([0])).scope, undefined, 'no ECS, no scope');
  t.equal(selectAnswer(pool, 4, snap({ boston: { u: 0.1 } }), { address: '10.0.0.1', ecs: ecs(24) }, env([0])).scope, undefined, 'the primary does not depend on the client');
});

t.test('offload choice by load: least-busy among the eligible', async (t) => {
  const pool = nameOf(zoneWith('load'), '@');
  const s = snap({ boston: { u: 0.89 }, chicago: { u: 0.1 }, geneva: { u: 0.5 } });
  // mean over chicago (cap 1) and geneva (cap 1) = 0.3; ceiling 0.4: chicago 0.3, geneva 0.
  t.same([0, 0.5, 0.9].map((r) => answerOf(selectAnswer(pool, 4, s, RESOLVER, env([r])))), ['chicago', 'chicago', 'chicago']);
});

t.test('Group Names of an offload pool: least-busy within the group, no thresholds', async (t) => {
  const z = zoneOf(`sites:
  boston: { addresses: [203.0.113.10] }
  chicago: { addresses: [203.0.113.20] }
groups:
  us: [boston, chicago]
pool: { name: "@", policy: offload, primary: boston, offload: [chicago], sorry: 192.0.2.250 }
`);
  const group = nameOf(z, 'us');
  const s = snap({ boston: { u: 0.99 }, chicago: { u: 0.5 } });
  t.same([0, 0.99].map((r) => answerOf(selectAnswer(group, 4, s, RESOLVER, env([r])))), ['chicago', 'chicago'], 'boston far above the mean gets nothing');
  t.equal(answerOf(selectAnswer(nameOf(z, '@'), 4, s, RESOLVER, env([0]))), 'drop', 'while the Pool Name drops above T3');
});
