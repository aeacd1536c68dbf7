/** One rule for a load, whatever its source: probe, push API, `sitedns report`, a value read back from Redis. */
import t from 'tap';
import { loadValue } from '../../src/state/load-value.js';
import { parseLoad } from '../../src/state/service.js';
import { decode, encode, forcedSchema, probeViewSchema, reportSchema } from '../../src/state/keys.js';

t.test('loadValue: finite numbers >= 0, as numbers or numeric strings', async (t) => {
  for (const [value, expected] of [
    [0, 0], [0.42, 0.42], ['7', 7], [' 3 ', 3], [1e6, 1e6],
    [-50, undefined], ['-0.5', undefined], [Infinity, undefined], [NaN, undefined], ['', undefined],
    ['abc', undefined], [null, undefined], [undefined, undefined], [true, undefined], [{}, undefined],
  ] as const) t.equal(loadValue(value), expected, JSON.stringify(value) ?? String(value));
});

t.test('the push API body follows the same rule and says it', async (t) => {
  t.equal(parseLoad({ load: 0.5 }), 0.5);
  t.same(parseLoad({ load: -50 }), { error: 'body must be {"load": <a number >= 0>}' });
  t.same(parseLoad(null), { error: 'body must be {"load": <a number >= 0>}' });
});

t.test('a negative load stored in Redis is not taken', async (t) => {
  t.equal(decode(reportSchema, encode({ load: -50, at: 1 })), undefined);
  t.same(decode(reportSchema, encode({ load: 50, at: 1 })), { load: 50, at: 1 });
  const view = { up: true, checkedAt: 1, since: 1, reason: 'HTTP 200' };
  t.same(decode(probeViewSchema, encode({ ...view, load: -1 })), view, 'the view keeps its verdict, without the load');
  t.same(decode(probeViewSchema, encode({ ...view, load: 1 })), { ...view, load: 1 });
});

t.test('a drain stored in Redis that ends past the last date is not taken', async (t) => {
  const forced = { state: 'down', by: 'ops', reason: 'r', at: 1 } as const;
  t.equal(decode(forcedSchema, encode({ ...forced, until: 1e300 })), undefined, 'explain and status could not write its end');
  t.equal(decode(forcedSchema, encode({ ...forced, until: 8.64e15 + 1 })), undefined);
  t.same(decode(forcedSchema, encode({ ...forced, until: 8.64e15 })), { ...forced, until: 8.64e15 });
});
