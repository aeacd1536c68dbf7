/** How several probers' views, forced states and staleness combine (src/state/combine.ts). */
import t from 'tap';
import { combine } from '../../src/state/combine.js';
import { emptyContents, type ProbeView, type StoreContents } from '../../src/state/types.js';

const NOW = 1_000_000;
const view = (up: boolean, extra: Partial<ProbeView> = {}): ProbeView => ({ up, checkedAt: NOW - 100, since: NOW - 1000, reason: up ? 'HTTP 200' : 'connection refused', ...extra });

function contents(probers: Record<string, { age: number; views: Record<string, ProbeView> }>): StoreContents {
  const c = emptyContents();
  for (const [id, p] of Object.entries(probers)) {
    c.probers.set(id, { id, heartbeatAt: NOW - p.age, startedAt: 0 });
    c.views.set(id, new Map(Object.entries(p.views)));
  }
  return c;
}

const K = 'z.test/a';
const opts = { staleAfterMs: 3000 };

t.test('majority of live probers', async (t) => {
  const rows: [string, boolean[], boolean][] = [
    ['one prober up', [true], true],
    ['one prober down', [false], false],
    ['two of three down: down', [false, false, true], false],
    ['one of three down: up', [false, true, true], true],
    ['a tie keeps the site up', [false, true], true],
    ['all four down', [false, false, false, false], false],
  ];
  for (const [name, votes, up] of rows) {
    const c = contents(Object.fromEntries(votes.map((v, i) => [`p${i}`, { age: 100, views: { [K]: view(v) } }])));
    t.equal(combine(c, NOW, opts).sites.get(K)!.up, up, name);
  }
});

t.test('decisive failures: half of the voters suffice; timeouts need a strict majority', async (t) => {
  const timeout = (up: boolean) => view(up, up ? {} : { reason: 'timeout after 500ms' });
  const refused = () => view(false, { decisive: true });
  const rows: [string, ProbeView[], boolean][] = [
    ['one of two refused: down (one faulty prober cannot hold a dead site up)', [refused(), view(true)], false],
    ['one of two timed out: a tie keeps it up', [timeout(false), view(true)], true],
    ['two of four refused: down', [refused(), refused(), view(true), view(true)], false],
    ['one of four refused, one timed out: up', [refused(), timeout(false), view(true), view(true)], true],
    ['one of three refused: up (less than half)', [refused(), view(true), view(true)], true],
  ];
  for (const [name, views, up] of rows) {
    const c = contents(Object.fromEntries(views.map((v, i) => [`p${i}`, { age: 100, views: { [K]: v } }])));
    const site = combine(c, NOW, opts).sites.get(K)!;
    t.equal(site.up, up, name);
    if (!up && name.startsWith('one of two')) t.equal(site.reason, '1/2 probers, decisive: connection refused');
  }
});

t.test('the vote table of docs/state.md, row by row, with timeouts and decisive failures', async (t) => {
  const up = () => view(true);
  const timedOut = () => view(false, { reason: 'timeout after 500ms' });
  const refused = () => view(false, { decisive: true });
  const rows: [string, ProbeView[], boolean][] = [
    ['1 prober: it says down (timeout)', [timedOut()], false],
    ['2 probers: both timed out: down', [timedOut(), timedOut()], false],
    ['3 probers: two timed out: down', [timedOut(), timedOut(), up()], false],
    ['3 probers: one refused, one timed out: down (two say down)', [refused(), timedOut(), up()], false],
    ['3 probers: one timed out: up', [timedOut(), up(), up()], true],
    ['4 probers: three timed out: down', [timedOut(), timedOut(), timedOut(), up()], false],
    ['4 probers: two timed out: a tie keeps it up', [timedOut(), timedOut(), up(), up()], true],
    ['4 probers: two refused: down', [refused(), refused(), up(), up()], false],
    ['4 probers: one refused, two timed out: down (three say down)', [refused(), timedOut(), timedOut(), up()], false],
  ];
  for (const [name, views, expected] of rows) {
    const c = contents(Object.fromEntries(views.map((v, i) => [`p${i}`, { age: 100, views: { [K]: v } }])));
    t.equal(combine(c, NOW, opts).sites.get(K)!.up, expected, name);
  }
});

t.test('an even number of live probers is warned about', async (t) => {
  const { quorumWarning } = await import('../../src/state/combine.js');
  t.equal(quorumWarning(0), undefined);
  t.equal(quorumWarning(1), undefined);
  t.equal(quorumWarning(3), undefined);
  t.match(quorumWarning(2), /^2 live probers, an even number: .* run an odd number$/);
  const { statusFromContents } = await import('../../src/state/status.js');
  const two = contents({ p0: { age: 100, views: { [K]: view(true) } }, p1: { age: 100, views: { [K]: view(true) } } });
  t.same(statusFromContents(two, NOW, 'redis').warnings, [quorumWarning(2)]);
  const three = contents({ p0: { age: 100, views: {} }, p1: { age: 100, views: {} }, p2: { age: 100, views: {} } });
  t.same(statusFromContents(three, NOW, 'redis').warnings, []);
});

t.test('a dead prober does not vote (neither freezes nor flips)', async (t) => {
  const c = contents({ dead: { age: 10_000, views: { [K]: view(false) } }, live: { age: 100, views: { [K]: view(true) } } });
  const r = combine(c, NOW, opts);
  t.same(r.liveProbers, ['live']);
  t.equal(r.sites.get(K)!.up, true);
  t.equal(r.stale, false);
});

t.test('no live prober: the last live views are kept (fail static)', async (t) => {
  const c = contents({ old: { age: 60_000, views: { [K]: view(true) } }, last: { age: 10_000, views: { [K]: view(false) } } });
  const r = combine(c, NOW, opts);
  t.equal(r.stale, true);
  t.equal(r.sites.get(K)!.up, false, 'the most recently live prober\'s view, not the long-dead one\'s');
});

t.test('livenessAt freezes the voters while the store is unreachable', async (t) => {
  const c = contents({ a: { age: 4000, views: { [K]: view(false) } }, b: { age: 4000, views: { [K]: view(false) } }, c: { age: 100, views: { [K]: view(true) } } });
  t.equal(combine(c, NOW, opts).sites.get(K)!.up, true, 'now: only c is live');
  t.equal(combine(c, NOW, { ...opts, livenessAt: NOW - 2000 }).sites.get(K)!.up, false, 'judged 2 s ago: all three vote');
});

t.test('load is the median, rtt the lowest, checkedAt the latest', async (t) => {
  const c = contents({
    a: { age: 0, views: { [K]: view(true, { load: 10, utilization: 0.1, rttMs: 5, checkedAt: NOW - 50 }) } },
    b: { age: 0, views: { [K]: view(true, { load: 30, utilization: 0.3, rttMs: 2, checkedAt: NOW - 10 }) } },
    c: { age: 0, views: { [K]: view(true, { load: 20, utilization: 0.2, rttMs: 9, checkedAt: NOW - 90 }) } },
  });
  const s = combine(c, NOW, opts).sites.get(K)!;
  t.equal(s.load, 20);
  t.equal(s.utilization, 0.2);
  t.equal(s.rttMs, 2);
  t.equal(s.checkedAt, NOW - 10);
});

t.test('a drain overrides the vote until it expires', async (t) => {
  const c = contents({ a: { age: 0, views: { [K]: view(true, { load: 5 }) } } });
  c.forced.set(K, { state: 'down', by: 'ops', reason: 'kernel upgrade', until: NOW + 1000, at: NOW - 10 });
  let s = combine(c, NOW, opts).sites.get(K)!;
  t.equal(s.up, false);
  t.equal(s.load, 5, 'load still shown');
  t.match(s.reason, /drained by ops: kernel upgrade/);
  t.same(s.forced, { state: 'down', by: 'ops', reason: 'kernel upgrade', until: NOW + 1000 });
  s = combine(c, NOW + 1000, opts).sites.get(K)!;
  t.equal(s.up, true, 'expired: the probes decide again');
  t.equal(s.forced, undefined);
  c.forced.set('z.test/unprobed', { state: 'up', by: 'ops', reason: 'probe is wrong', until: NOW + 5, at: NOW });
  t.equal(combine(c, NOW, opts).sites.get('z.test/unprobed')!.up, true, 'a forced state needs no view');
});

t.test('changedSites: which site states differ, field by field', async (t) => {
  const { changedSites } = await import('../../src/state/follower.js');
  const a = new Map([['z/a', { up: true, load: 1, checkedAt: 5 }], ['z/b', { up: false, reason: 'refused' }]]);
  t.equal(changedSites(a, new Map([['z/a', { up: true, load: 1, checkedAt: 5 }], ['z/b', { up: false, reason: 'refused' }]])), null, 'equal copies: nothing');
  t.same(changedSites(a, new Map([['z/a', { up: true, load: 2, checkedAt: 5 }], ['z/b', { up: false, reason: 'refused' }]])), new Set(['z/a']));
  t.same(changedSites(a, new Map([['z/a', { up: true, load: 1, checkedAt: 5 }], ['z/b', { up: false, reason: 'refused', forced: { state: 'down', by: 'x', reason: 'y', until: 9 } }]])), new Set(['z/b']), 'a drain is a change');
  t.equal(changedSites(a, new Map([['z/a', { up: true, load: 1, checkedAt: 5 }]])), 'all', 'a site gone');
  t.equal(changedSites(a, new Map([['z/a', { up: true, load: 1, checkedAt: 5 }], ['z/c', { up: false, reason: 'refused' }]])), 'all', 'another site');
});
