/**
 * Undrain records (state/undrained.ts) in both stores: an undrain leaves one, a write-back of a
 * drain set before it is refused, a drain set after it is written back, and records past their
 * `until` are pruned with the next undrain.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { RedisStateStore } from '../../src/state/redis-store.js';
import { MAX_DRAIN_MS } from '../../src/state/service.js';
import type { StateStore } from '../../src/state/types.js';
import { createLogger } from '../../src/util/logger.js';
import { startRedis } from '../helpers/redis.js';

const T = 1_800_000_000_000;
const drain = (at: number) => ({ state: 'down' as const, by: 'ops', reason: 'r', until: at + 60_000, at });

async function rules(t: Tap.Test, store: StateStore) {
  await store.setForced('z.test/a', drain(T));
  await store.setForced('z.test/a', null, T + 10);
  t.equal(await store.restoreForced('z.test/a', drain(T)), 'undrained', 'a drain set before the undrain is not written back');
  t.equal(await store.restoreForced('z.test/a', drain(T + 10)), 'undrained', 'nor one set at the same millisecond');
  t.notOk((await store.readAll()).forced.has('z.test/a'));
  t.equal(await store.restoreForced('z.test/a', drain(T + 20)), 'written', 'a drain set after it is');
  t.equal(await store.restoreForced('z.test/a', drain(T + 30)), 'present', 'never over one already there');
  t.equal(await store.restoreForced('z.test/b', drain(T)), 'written', 'a site never undrained');
  // b's record at T + MAX_DRAIN_MS + 1 prunes a's (until T + 10 + MAX_DRAIN_MS has passed by T + MAX_DRAIN_MS + 20).
  await store.setForced('z.test/b', null, T + MAX_DRAIN_MS + 20);
  await store.setForced('z.test/a', null, T + MAX_DRAIN_MS + 20);
  t.equal(await store.restoreForced('z.test/a', drain(T + MAX_DRAIN_MS + 19)), 'undrained', "a's new record stands");
}

t.test('memory store', async (t) => rules(t, new MemoryStateStore()));

t.test('Redis: the rules, the key and its pruning', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const store = new RedisStateStore({ url: redis.url, logger: createLogger('silent') });
  t.teardown(() => store.close());
  await store.ready(3000);
  await rules(t, store);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  await raw.hset('sitedns:undrained', 'z.test/old', JSON.stringify({ at: T, until: T + 1 }), 'z.test/bad', 'not json');
  await store.setForced('z.test/c', null, T + 100);
  const records = await raw.hgetall('sitedns:undrained');
  t.same(Object.keys(records).sort(), ['z.test/a', 'z.test/b', 'z.test/c'], 'records past their until, and malformed ones, pruned with an undrain');
  t.same(JSON.parse(records['z.test/c']), { at: T + 100, until: T + 100 + MAX_DRAIN_MS });
});
