/**
 * The status page's history (admin/answer-history.ts): answers per site between two readings of
 * the counters, state changes from the snapshots a runtime publishes, and memory bounded by the
 * window and MAX_CHANGES.
 */
import t from 'tap';
import { AnswerHistory, MAX_CHANGES, type AnswerCount } from '../../src/admin/answer-history.js';
import { Runtime } from '../../src/state/runtime.js';
import { makeSnapshot, type SiteState } from '../../src/state/snapshot.js';
import { compileText, fixedEnv } from '../helpers/dns.js';

const ZONE = `zone: h.test
soa: { mname: ns1.h.test, rname: x.h.test }
nameservers: { ns1.h.test: [192.0.2.1] }
sites:
  one: { addresses: [192.0.2.10] }
  two: { addresses: [192.0.2.20] }
pool: { name: "@", policy: least-busy }
`;

function setup(intervalMs = 1_000, windowMs = 3_000) {
  const env = fixedEnv(1_700_000_000_000);
  const runtime = new Runtime(compileText(ZONE));
  let counts: AnswerCount[] = [];
  const history = new AnswerHistory({ runtime, counts: async () => counts, intervalMs, windowMs, now: env.now });
  return { env, runtime, history, setCounts: (c: AnswerCount[]) => (counts = c) };
}

const up = (reason = 'HTTP 200'): SiteState => ({ up: true, reason });
const down = (reason = 'connection refused'): SiteState => ({ up: false, reason });

t.test('a sample is the answers per site since the last reading, over every name', async (t) => {
  const { env, history, setCounts } = setup();
  setCounts([{ name: 'h.test', site: 'one', value: 10 }]);
  await history.sample();
  t.same(history.view().samples, [], 'the first reading is only the baseline');

  env.setNow(env.now() + 1_000);
  setCounts([
    { name: 'h.test', site: 'one', value: 16 },
    { name: 'h.test', site: 'two', value: 3 },
    { name: 'one.h.test', site: 'one', value: 4 },
    { name: 'not.served.test', site: 'one', value: 99 },
  ]);
  await history.sample();
  t.same(history.view().samples, [{ at: env.now(), answers: { 'h.test/one': 10, 'h.test/two': 3 } }]);
});

t.test('samples are kept for the window only, in a ring of window / interval', async (t) => {
  const { env, history, setCounts } = setup(1_000, 3_000);
  for (let i = 0; i <= 10; i++) {
    env.setNow(1_700_000_000_000 + i * 1_000);
    setCounts([{ name: 'h.test', site: 'one', value: i * i }]);
    await history.sample();
  }
  const { samples } = history.view();
  t.same(samples.map((s) => s.answers['h.test/one']), [15, 17, 19], 'the last three intervals, oldest first');
  env.setNow(env.now() + 2_500);
  t.same(history.view().samples.map((s) => s.at), [env.now() - 2_500], 'older than the window: gone');
});

t.test('state changes come from the published snapshots, read through the site view', async (t) => {
  const { env, runtime, history } = setup(1_000, 60_000);
  history.start();
  t.teardown(() => history.stop());
  t.same(history.view().changes, [], 'the state at start is no change');

  runtime.publishState(makeSnapshot(new Map([['h.test/one', up()], ['h.test/two', up()]]), true));
  env.setNow(env.now() + 500);
  runtime.publishState(makeSnapshot(new Map([['h.test/one', down()], ['h.test/two', up()]]), true));
  env.setNow(env.now() + 500);
  const forced = { state: 'down' as const, by: 'ops', reason: 'upgrade', until: env.now() + 60_000 };
  runtime.publishState(makeSnapshot(new Map([['h.test/one', down()], ['h.test/two', { up: false, reason: 'drained by ops: upgrade', forced }]]), true));

  const start = 1_700_000_000_000;
  t.same(history.view().changes, [
    { at: start, site: 'h.test/one', from: 'unknown', to: 'up', reason: 'HTTP 200' },
    { at: start, site: 'h.test/two', from: 'unknown', to: 'up', reason: 'HTTP 200' },
    { at: start + 500, site: 'h.test/one', from: 'up', to: 'down', reason: 'connection refused' },
    { at: start + 1_000, site: 'h.test/two', from: 'up', to: 'drained', reason: 'drained by ops: upgrade' },
  ]);

  history.stop();
  runtime.publishState(makeSnapshot(new Map([['h.test/one', up()], ['h.test/two', up()]]), true));
  t.equal(history.view().changes.length, 4, 'stopped: no longer follows');
});

t.test('at most MAX_CHANGES changes are kept, the newest', async (t) => {
  const { env, runtime, history } = setup(1_000, 3_600_000);
  history.start();
  t.teardown(() => history.stop());
  for (let i = 0; i < MAX_CHANGES + 50; i++) {
    env.setNow(env.now() + 1);
    runtime.publishState(makeSnapshot(new Map([['h.test/one', i % 2 === 0 ? down() : up()]]), true));
  }
  const { changes } = history.view();
  t.equal(changes.length, MAX_CHANGES);
  t.equal(changes.at(-1)!.at, env.now(), 'the newest is kept');
});
