/** The one duration syntax (docs/zones.md#durations): what it accepts, and what it refuses with which message. */
import t from 'tap';
import { duration, durationMs, parseDuration } from '../../src/util/duration.js';

const accepted: [string | number, number][] = [
  ['500ms', 500],
  ['1s', 1000],
  ['1.5s', 1500],
  ['0.5h', 1_800_000],
  ['2m', 120_000],
  ['1h', 3_600_000],
  ['1h30m', 5_400_000],
  ['2d', 172_800_000],
  ['1d12h', 129_600_000],
  ['1m500ms', 60_500],
  ['1h1m1s1ms', 3_661_001],
  ['1.0005s', 1001],
  ['0', 0],
  ['0ms', 0],
  [' 10s ', 10_000],
  // A YAML or JSON number: only 0 needs no unit, as in text.
  [0, 0],
];

const refused: [string | number, RegExp][] = [
  ['3000', /^"3000" is not a duration: give it a unit \(d, h, m, s, ms\), e\.g\. 3000ms or 3000s$/],
  ['1.5', /^"1\.5" is not a duration: give it a unit/],
  ['soon', /^"soon" is not a duration \(a number and a unit: d, h, m, s, ms, largest first; e\.g\. 500ms, 1\.5s, 1h30m, 2d\)$/],
  ['', /^"" is not a duration/],
  ['ms', /^"ms" is not a duration/],
  ['30m1h', /^"30m1h" is not a duration .*largest first/],
  ['1h1h', /^"1h1h" is not a duration/],
  ['1h 30m', /^"1h 30m" is not a duration/],
  ['-1s', /^"-1s" is not a duration/],
  ['1S', /^"1S" is not a duration/],
  ['.5s', /^"\.5s" is not a duration/],
  ['1us', /^"1us" is not a duration/],
  ['999999999999d', /^"999999999999d" is not a duration/],
  // A YAML or JSON number is held to the syntax of text: it needs a unit.
  [2000, /^2000 is not a duration: give it a unit \(d, h, m, s, ms\), e\.g\. 2000ms or 2000s$/],
  [1.5, /^1\.5 is not a duration: give it a unit \(d, h, m, s, ms\), e\.g\. 1\.5ms or 1\.5s$/],
  [-1, /^-1 is not a duration \(a number and a unit: d, h, m, s, ms, largest first/],
];

t.test('accepted spellings -> milliseconds', async (t) => {
  for (const [value, ms] of accepted) {
    t.equal(durationMs(value), ms, JSON.stringify(value));
    t.same(duration.safeParse(value), { success: true, data: ms }, `${JSON.stringify(value)} (zod type)`);
    if (typeof value === 'string') t.equal(parseDuration(value), ms, `${JSON.stringify(value)} (parseDuration)`);
  }
});

t.test('refused spellings -> a coded error naming the units', async (t) => {
  for (const [value, message] of refused) {
    t.throws(() => durationMs(value), { code: 'EDURATION', name: 'DurationError', message }, JSON.stringify(value));
    t.throws(() => durationMs(value), { message: /d, h, m, s, ms/ }, `${JSON.stringify(value)}: the units are listed`);
    const parsed = duration.safeParse(value);
    t.equal(parsed.success, false, `${JSON.stringify(value)} (zod type)`);
    if (!parsed.success) t.match(parsed.error.issues[0].message, message, `${JSON.stringify(value)} (zod type message)`);
    if (typeof value === 'string') t.equal(parseDuration(value), undefined, `${JSON.stringify(value)} (parseDuration)`);
  }
});
