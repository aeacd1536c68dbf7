/** The Redis store against a real redis-server: documented keys and formats, notices, validation. */
import t from 'tap';
import { RedisStateStore } from '../../src/state/redis-store.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { StateFollower } from '../../src/state/follower.js';
import { siteState, siteUp } from '../../src/metrics/definitions.js';
import { Runtime } from '../../src/state/runtime.js';
import { stateOf } from '../../src/state/snapshot.js';
import type { StateStore } from '../../src/state/types.js';
import { createLogger } from '../../src/util/logger.js';
import { compileText } from '../helpers/dns.js';
import { eventually } from '../helpers/backends.js';
import { redisStoreAndRaw, startRedis } from '../helpers/redis.js';

const logger = createLogger('silent');
const view = { up: false, load: 3, utilization: 0.03, rttMs: 1.5, checkedAt: 1000, loadAt: 1000, since: 900, reason: 'connection refused' };

t.test('keys and formats are the documented ones', async (t) => {
  const { store, raw, notices } = await redisStoreAndRaw(t);

  await store.heartbeat({ id: 'p1', heartbeatAt: 5, startedAt: 1 }, true);
  await store.writeView('p1', 'z.test/a', view);
  await store.setForced('z.test/a', { state: 'down', by: 'ops', reason: 'r', until: 99, at: 9 });
  await store.report('z.test/a', { load: 0.5, at: 7 });

  t.same(JSON.parse((await raw.hget('sd:probers', 'p1'))!), { id: 'p1', heartbeatAt: 5, startedAt: 1 });
  t.same(JSON.parse((await raw.hget('sd:views:p1', 'z.test/a'))!), view);
  t.same(JSON.parse((await raw.hget('sd:forced', 'z.test/a'))!), { state: 'down', by: 'ops', reason: 'r', until: 99, at: 9 });
  t.same(JSON.parse((await raw.hget('sd:reports', 'z.test/a'))!), { load: 0.5, at: 7 });

  await eventually('four notices', () => notices.length === 4);
  t.same(notices.map((n) => n.t), ['prober', 'view', 'forced', 'report']);
  t.same((notices[1] as any).view, view, 'a notice carries the new value');

  const all = await store.readAll();
  t.same(all.views.get('p1')!.get('z.test/a'), view);
  t.equal(all.forced.get('z.test/a')!.by, 'ops');

  await raw.hset('sd:views:p1', 'z.test/b', '{"up": "yes"}');
  await raw.hset('sd:forced', 'z.test/c', 'not json');
  const again = await store.readAll();
  t.notOk(again.views.get('p1')!.has('z.test/b'), 'a malformed view is skipped');
  t.notOk(again.forced.has('z.test/c'), 'a malformed drain is skipped');

  await store.removeProber('p1');
  t.equal(await raw.exists('sd:views:p1'), 0, 'a leaving prober takes its views along');
  t.equal(await raw.hexists('sd:probers', 'p1'), 0);
});

async function followerOver(store: StateStore, t: Tap.Test) {
  const runtime = new Runtime(compileText('zone: z.test\nsoa: { mname: ns1.z.test, rname: h.z.test }\nnameservers: { ns1.z.test: [192.0.2.1] }\nsites: { a: { addresses: [192.0.2.10] } }\n'));
  const follower = new StateFollower({ store, runtime, logger, staleAfterMs: 60_000, resyncMs: 100, tickMs: 50 });
  t.teardown(() => follower.stop());
  return { runtime, follower };
}

t.test('a follower swaps the snapshot on notices and keeps it while Redis is away', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const store = new RedisStateStore({ url: redis.url, logger });
  t.teardown(() => store.close());
  const { runtime, follower } = await followerOver(store, t);
  t.equal(await follower.start(3000), 'store');
  const before = runtime.state;
  await store.heartbeat({ id: 'p', heartbeatAt: Date.now(), startedAt: 0 }, true);
  await store.writeView('p', 'z.test/a', { ...view, checkedAt: Date.now() });
  await eventually('a is down in the snapshot', () => stateOf(runtime.state, 'z.test/a').up === false);
  t.not(runtime.state, before, 'a new snapshot object');
  t.equal(runtime.state.fresh, true);
  await redis.kill();
  await eventually('the follower notices', () => !follower.connected);
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'last known state kept');
  await redis.start();
  await eventually('reconnected', () => follower.connected);
  // The restarted Redis is empty: the views from before the outage are carried over until the
  // prober rewrites them, so nothing flips for lack of data.
  await follower.resync();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'carried over after the restart');
  await store.writeView('p', 'z.test/a', { ...view, up: true, reason: 'HTTP 200', checkedAt: Date.now() });
  await eventually('the rewritten view applies', () => stateOf(runtime.state, 'z.test/a').up === true);
});

t.test('the memory store behaves the same for a follower', async (t) => {
  const store = new MemoryStateStore();
  const { runtime, follower } = await followerOver(store, t);
  await follower.start(100);
  // Verdicts of one event-loop turn join one recompute at its end (setImmediate), before the
  // loop reads more input: a query, or the next admin request, sees the change.
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  await store.heartbeat({ id: 'p', heartbeatAt: Date.now(), startedAt: 0 }, true);
  await store.writeView('p', 'z.test/a', view);
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'applied by the end of the turn');
  await store.setForced('z.test/a', { state: 'up', by: 'ops', reason: 'probe wrong', until: Date.now() + 60_000, at: Date.now() });
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/a').up, true, 'forced up');
  await store.setForced('z.test/a', null);
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false);
  // The gauges follow: they are set for the sites a recompute changed (follower.ts swap()).
  const gauge = async () => (await siteUp.get()).values.find((v) => v.labels.zone === 'z.test' && v.labels.site === 'a')?.value;
  t.equal(await gauge(), 0, 'sitedns_site_up 0 while down');
  await store.setForced('z.test/a', { state: 'up', by: 'ops', reason: 'probe wrong', until: Date.now() + 60_000, at: Date.now() });
  await turn();
  t.equal(await gauge(), 1, 'and 1 once forced up');
  // sitedns_site_state tells the states apart: one series per state, 1 for the site's.
  const states = async () => Object.fromEntries((await siteState.get()).values.filter((v) => v.labels.zone === 'z.test' && v.labels.site === 'a').map((v) => [v.labels.state, v.value]));
  t.same(await states(), { up: 0, down: 0, drained: 0, 'forced-up': 1, unknown: 0 }, 'sitedns_site_state: forced-up');
  await store.setForced('z.test/a', { state: 'down', by: 'ops', reason: 'maintenance', until: Date.now() + 60_000, at: Date.now() });
  await turn();
  t.equal(await gauge(), 0, 'sitedns_site_up 0 while drained, as while down');
  t.same(await states(), { up: 0, down: 0, drained: 1, 'forced-up': 0, unknown: 0 }, 'sitedns_site_state: drained, not down');
  await store.setForced('z.test/a', null);
  await turn();
  t.same(await states(), { up: 0, down: 1, drained: 0, 'forced-up': 0, unknown: 0 }, 'sitedns_site_state: down once undrained');
});
