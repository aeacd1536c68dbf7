/** Table tests of the one anti-flap state machine (src/probe/debounce.ts). */
import t from 'tap';
import { debounceConfig, flapHoldMs, initialHealth, step, type HealthStatus, type ProbeResult } from '../../src/probe/debounce.js';

const OK: ProbeResult = { ok: true, decisive: false, reason: 'HTTP 200' };
const REFUSED: ProbeResult = { ok: false, decisive: true, reason: 'connection refused' };
const STATUS: ProbeResult = { ok: false, decisive: true, reason: 'HTTP 503' };
const TIMEOUT: ProbeResult = { ok: false, decisive: false, reason: 'timeout after 500ms' };
const RESET: ProbeResult = { ok: false, decisive: false, reason: 'connection reset' };

type Row = {
  name: string;
  start?: HealthStatus;
  inputs: (ProbeResult | [ProbeResult, 'push'])[];
  /** Status after each input. */
  expect: HealthStatus[];
  /** Whether each next probe is a rapid re-check. */
  recheck?: boolean[];
  cfg?: { rise?: number; fall?: number; softFall?: number };
};

const rows: Row[] = [
  { name: 'first success: up at once', inputs: [OK], expect: ['up'], recheck: [false] },
  { name: 'first failure re-checks rapidly; two refused: down', inputs: [REFUSED, REFUSED], expect: ['unknown', 'down'], recheck: [true, false] },
  { name: 'up: one refused re-checks, a success clears it', start: 'up', inputs: [REFUSED, OK], expect: ['up', 'up'], recheck: [true, false] },
  { name: 'up: refused twice (fall 2) goes down', start: 'up', inputs: [REFUSED, REFUSED], expect: ['up', 'down'], recheck: [true, false] },
  { name: 'up: a bad status is decisive too', start: 'up', inputs: [STATUS, STATUS], expect: ['up', 'down'] },
  { name: 'up: fall 1 goes down on the first refused', start: 'up', cfg: { fall: 1 }, inputs: [REFUSED], expect: ['down'] },
  {
    name: 'up: timeouts are not decisive (soft fall = 3 x fall = 6)',
    start: 'up',
    inputs: [TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT],
    expect: ['up', 'up', 'up', 'up', 'up', 'down'],
    recheck: [true, true, true, true, true, false],
  },
  { name: 'up: a success between timeouts resets the streak', start: 'up', inputs: [TIMEOUT, TIMEOUT, TIMEOUT, OK, TIMEOUT, TIMEOUT, TIMEOUT], expect: ['up', 'up', 'up', 'up', 'up', 'up', 'up'] },
  { name: 'up: resets count like timeouts', start: 'up', inputs: [RESET, RESET, RESET, RESET, RESET, RESET], expect: ['up', 'up', 'up', 'up', 'up', 'down'] },
  { name: 'up: soft then decisive failures: down at the fall-th decisive one', start: 'up', inputs: [TIMEOUT, REFUSED, TIMEOUT, REFUSED], expect: ['up', 'up', 'up', 'down'] },
  {
    name: 'up: timeouts excused while pushed reports are fresh (seed 002 second signal)',
    start: 'up',
    inputs: [[TIMEOUT, 'push'], [TIMEOUT, 'push'], [TIMEOUT, 'push'], [TIMEOUT, 'push'], [TIMEOUT, 'push'], [TIMEOUT, 'push'], [TIMEOUT, 'push']],
    expect: ['up', 'up', 'up', 'up', 'up', 'up', 'up'],
    recheck: [false, false, false, false, false, false, false],
  },
  { name: 'up: fresh pushed reports do not excuse a refused connection', start: 'up', inputs: [[REFUSED, 'push'], [REFUSED, 'push']], expect: ['up', 'down'] },
  { name: 'down: rise 2 needs two successes, re-checked rapidly', start: 'down', inputs: [OK, OK], expect: ['down', 'up'], recheck: [true, false] },
  { name: 'down: a failure while rising starts over', start: 'down', inputs: [OK, REFUSED, OK, OK], expect: ['down', 'down', 'down', 'up'] },
  { name: 'down: rise 3', start: 'down', cfg: { rise: 3 }, inputs: [OK, OK, OK], expect: ['down', 'down', 'up'] },
  { name: 'down stays down on failures, at the normal interval', start: 'down', inputs: [REFUSED, TIMEOUT], expect: ['down', 'down'], recheck: [false, false] },
  { name: 'unknown: six timeouts make it down', inputs: [TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT], expect: ['unknown', 'unknown', 'unknown', 'unknown', 'unknown', 'down'] },
  { name: 'explicit soft fall', start: 'up', cfg: { softFall: 2 }, inputs: [TIMEOUT, TIMEOUT], expect: ['up', 'down'] },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const cfg = debounceConfig({ intervalMs: 1000, ...row.cfg });
    let state = initialHealth(0);
    if (row.start && row.start !== 'unknown') state = { ...state, status: row.start };
    const statuses: HealthStatus[] = [];
    const rechecks: boolean[] = [];
    let now = 0;
    for (const input of row.inputs) {
      const [result, push] = Array.isArray(input) ? [input[0], true] : [input, false];
      now += 100;
      const out = step(state, { result, now, pushAlive: push }, cfg);
      t.equal(out.changed, out.state.status !== state.status, 'changed says whether the status changed');
      t.equal(out.nextInMs, out.recheck ? cfg.recheckMs : cfg.intervalMs, 'next delay: re-check or interval');
      state = out.state;
      statuses.push(state.status);
      rechecks.push(out.recheck);
    }
    t.same(statuses, row.expect, 'statuses');
    if (row.recheck) t.same(rechecks, row.recheck, 're-checks');
  });
}

t.test('defaults: rise 2, fall 2, soft fall 6, re-check 100 ms at a 1 s interval, flap half-life 10 s', async (t) => {
  t.same(debounceConfig({ intervalMs: 1000 }), { rise: 2, fall: 2, softFall: 6, intervalMs: 1000, recheckMs: 100, flapHalfLifeMs: 10_000 });
  t.equal(debounceConfig({ intervalMs: 200 }).recheckMs, 50, 're-check at most a quarter interval');
  t.equal(debounceConfig({ intervalMs: 1000, fall: 1 }).softFall, 3);
});

t.test('since moves only when the status changes', async (t) => {
  const cfg = debounceConfig({ intervalMs: 1000 });
  let s = step(initialHealth(0), { result: OK, now: 10, pushAlive: false }, cfg).state;
  t.equal(s.since, 10);
  s = step(s, { result: REFUSED, now: 20, pushAlive: false }, cfg).state;
  t.equal(s.since, 10);
  s = step(s, { result: REFUSED, now: 30, pushAlive: false }, cfg).state;
  t.equal(s.status, 'down');
  t.equal(s.since, 30);
  t.equal(s.reason, 'connection refused');
});

t.test('flap damping: down as fast, back later after repeated falls, the penalty decays', async (t) => {
  const cfg = debounceConfig({ intervalMs: 1000 });
  let state = { ...initialHealth(0), status: 'up' as HealthStatus };
  let now = 0;
  const feed = (result: ProbeResult, after = 100) => {
    now += after;
    const out = step(state, { result, now, pushAlive: false }, cfg);
    state = out.state;
    return out;
  };
  // First fall: down after fall (2) refusals, back after rise (2) successes, as without damping.
  feed(REFUSED);
  t.equal(feed(REFUSED).state.status, 'down', 'first fall: down at the fall-th refusal');
  t.equal(state.penalty, 1);
  feed(OK);
  t.equal(feed(OK).state.status, 'up', 'one fall: no hold');
  // Second fall 0.5 s later: down as fast, but held after rise.
  feed(REFUSED, 500);
  t.equal(feed(REFUSED).state.status, 'down', 'second fall: still down at once');
  t.ok(state.penalty > 1.9 && state.penalty < 2, `penalty ${state.penalty}: 1 decayed a little, plus 1`);
  feed(OK);
  const held = feed(OK);
  t.equal(held.state.status, 'down', 'rise met, but held down');
  t.match(held.state.reason, /^held down: flapping \(penalty 1\.9\d, back in about 10 s\): HTTP 200$/);
  t.same([held.recheck, held.nextInMs], [false, 1000], 'held: probed at the normal interval, not re-checked');
  // Still held 5 s later; free once the penalty has decayed to 1 (about one half-life after the fall).
  t.equal(feed(OK, 5000).state.status, 'down');
  t.equal(feed(OK, 5000).state.status, 'up', 'back after about a half-life');
  // Many falls in a row: the penalty stops at 8, so a hold lasts at most three half-lives.
  for (let i = 0; i < 20; i++) {
    state = { ...state, status: 'up', okStreak: 0 };
    feed(REFUSED, 10);
    feed(REFUSED, 10);
  }
  t.equal(state.penalty, 8);
  t.equal(flapHoldMs(state, state.penaltyAt, cfg), 30_000);
});

t.test('flap damping off with a half-life of 0; an unknown site is never held', async (t) => {
  const off = debounceConfig({ intervalMs: 1000, flapHalfLifeMs: 0 });
  const s = { ...initialHealth(0), status: 'down' as HealthStatus, penalty: 5, penaltyAt: 0 };
  t.equal(step(step(s, { result: OK, now: 1, pushAlive: false }, off).state, { result: OK, now: 2, pushAlive: false }, off).state.status, 'up');
  const on = debounceConfig({ intervalMs: 1000 });
  t.equal(step({ ...initialHealth(0), penalty: 5 }, { result: OK, now: 1, pushAlive: false }, on).state.status, 'up', 'unknown: one success is up');
});

/**
 * A site that falls `falls` times in quick succession (two refusals each, `gapMs` apart), then
 * meets rise: its reason right after, and how long after the last fall it is back up.
 */
function holdAfterFalls(falls: number, gapMs: number): { heldReason: string; heldMs: number } {
  const cfg = debounceConfig({ intervalMs: 1000 });
  let state = { ...initialHealth(0), status: 'up' as HealthStatus };
  let now = 0;
  const feed = (result: ProbeResult, after = 100) => {
    now += after;
    state = step(state, { result, now, pushAlive: false }, cfg).state;
  };
  for (let fall = 0; fall < falls; fall++) {
    state = { ...state, status: 'up', okStreak: 0, decisive: 0, counted: 0 };
    feed(REFUSED, gapMs);
    feed(REFUSED, gapMs);
  }
  const fellAt = now;
  feed(OK);
  feed(OK);
  const heldReason = state.status === 'down' ? state.reason : 'not held';
  while (state.status === 'down' && now < fellAt + 120_000) feed(OK, 500);
  return { heldReason, heldMs: now - fellAt };
}

t.test('flap damping: three quick falls hold a site that meets rise for about 15 s', async (t) => {
  const { heldReason, heldMs } = holdAfterFalls(3, 100);
  t.match(heldReason, /^held down: flapping/, 'rise met, held');
  // Penalty about 2.9 at the third fall: held until it decays to 1, 10 s x log2(2.9) = 15.4 s.
  t.ok(heldMs >= 14_500 && heldMs <= 16_500, `back after ${heldMs} ms`);
});

t.test('flap damping: a site that fell 8 or more times is held 30 s at most (the table in docs/state.md)', async (t) => {
  const { heldReason, heldMs } = holdAfterFalls(12, 10);
  t.match(heldReason, /^held down: flapping \(penalty 7\.8\d, back in about 30 s\)/, 'rise met, held: the penalty at its cap, 200 ms decayed');
  t.ok(heldMs >= 29_500 && heldMs <= 31_000, `back after ${heldMs} ms, three half-lives`);
});
