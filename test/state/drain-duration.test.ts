/** How long a drain lasts (`--for`, the drain request's `for`): the one duration syntax, longer than 0. */
import t from 'tap';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { DEFAULT_DRAIN_MS, drain, drainDurationMs } from '../../src/state/service.js';
import { createLogger } from '../../src/util/logger.js';

const origin = { from: 'test', log: createLogger('silent') };

t.test('accepted: a duration; none given: the default', async (t) => {
  t.equal(drainDurationMs(undefined), DEFAULT_DRAIN_MS);
  t.equal(drainDurationMs('30m'), 1_800_000);
  t.equal(drainDurationMs('1h30m'), 5_400_000);
  t.equal(drainDurationMs('2d'), 172_800_000);
});

t.test('refused, with a message for the API caller', async (t) => {
  t.same(drainDurationMs('3000'), { error: '"3000" is not a duration: give it a unit (d, h, m, s, ms), e.g. 3000ms or 3000s' }, 'text without a unit');
  t.match(drainDurationMs('soon'), { error: /^"soon" is not a duration \(a number and a unit: d, h, m, s, ms/ });
  t.same(drainDurationMs('0s'), { error: '"0s" is not longer than 0' });
  t.same(drainDurationMs(0), { error: '0 is not longer than 0' });
  t.same(drainDurationMs(90_000), { error: '90000 is not a duration: give it a unit (d, h, m, s, ms), e.g. 90000ms or 90000s' }, 'a JSON number without a unit');
  t.match(drainDurationMs(-5), { error: /^-5 is not a duration/ });
});

t.test('drain() applies it: until = now + the duration; a refused one stores nothing', async (t) => {
  const store = new MemoryStateStore();
  const forced = await drain(store, 'z/a', { for: '1h30m', reason: 'r', by: 'b' }, origin, 1000);
  t.match(forced, { state: 'down', until: 1000 + 5_400_000, at: 1000 });
  t.match(await drain(store, 'z/b', { for: '90' }, origin, 1000), { error: /give it a unit/ });
  t.same([...(await store.readAll()).forced.keys()], ['z/a']);
});
