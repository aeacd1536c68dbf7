/**
 * Reuseport steering (policy/udp-steering.ts): the decision as a truth table, and the control
 * that runs it on the threads' shared counters and attaches each new mode's program.
 */
import t from 'tap';
import { countReceive, INITIAL_STEERING, nextSteering, startSteering, steeringCounters, steeringProgram, STEERING, type SteeringMode, type SteeringState } from '../../src/policy/udp-steering.js';

const quiet = { datagrams: 100, receives: 50, busy: false }; // 2 per receive: keeping up
const behind = { datagrams: 64 * 10, receives: 10, busy: false }; // full batches
const single = (since: number, holdMs = 1000): SteeringState => ({ mode: 'single', since, holdMs });
const spread = (since: number, holdMs = 1000): SteeringState => ({ mode: 'spread', since, holdMs });

t.test('truth table', async (t) => {
  const rows: [string, SteeringState, { now: number; datagrams: number; receives: number; busy: boolean }, SteeringState][] = [
    ['single keeps up: stays', single(0), { now: 5000, ...quiet }, single(0)],
    ['single behind after a long stint: spread, base hold', single(0, 8000), { now: 5000, ...behind }, spread(5000, 1000)],
    ['single behind at start: spread, base hold', INITIAL_STEERING, { now: 50, ...behind }, spread(50, 1000)],
    ['single behind soon after it came back: the hold doubles', single(5000, 1000), { now: 5400, ...behind }, spread(5400, 2000)],
    ['the doubled hold stops at maxHoldMs', single(5000, 32_000), { now: 5400, ...behind }, spread(5400, 32_000)],
    ['average batch at the threshold counts as behind', single(0), { now: 5000, datagrams: 32 * 4, receives: 4, busy: false }, spread(5000)],
    ['just below the threshold: keeps up', single(0), { now: 5000, datagrams: 32 * 4 - 1, receives: 4, busy: false }, single(0)],
    ['one burst in too few receives: keeps up', single(0), { now: 5000, datagrams: 64 * 3, receives: 3, busy: false }, single(0)],
    ['no traffic: stays', single(0), { now: 5000, datagrams: 0, receives: 0, busy: false }, single(0)],
    ['spread within its hold: stays, even when quiet', spread(5000), { now: 5999, ...quiet }, spread(5000)],
    ['spread after its hold: single again', spread(5000), { now: 6000, ...quiet }, single(6000)],
    ['spread after its hold under load: single is tried again', spread(5000), { now: 6000, ...behind }, single(6000)],
    ['a doubled hold is waited out', spread(5000, 4000), { now: 8000, ...quiet }, spread(5000, 4000)],
    ['busy while single: away', single(0, 2000), { now: 5000, ...quiet, busy: true }, { mode: 'away', since: 5000, holdMs: 2000 }],
    ['busy while spread: away', spread(4900), { now: 5000, ...behind, busy: true }, { mode: 'away', since: 5000, holdMs: 1000 }],
    ['busy while away: stays', { mode: 'away', since: 10, holdMs: 1000 }, { now: 5000, ...quiet, busy: true }, { mode: 'away', since: 10, holdMs: 1000 }],
    ['no longer busy: single', { mode: 'away', since: 10, holdMs: 1000 }, { now: 5000, ...behind }, single(5000)],
  ];
  for (const [what, state, window, expected] of rows) t.same(nextSteering(state, window), expected, what);
  const same = single(0);
  t.equal(nextSteering(same, { now: 5000, ...quiet }), same, 'nothing changes: the same object');
});

t.test('the program of each mode', async (t) => {
  t.same(steeringProgram('single', 2), { first: 0, count: 1 }, 'single: index 0');
  t.same(steeringProgram('away', 2), { first: 1, count: 1 }, 'away from 2: index 1');
  t.same(steeringProgram('away', 4), { first: 1, count: 3 }, 'away from 4: indexes 1..3');
  t.same(steeringProgram('spread', 4), { first: 0, count: 0 }, "spread: the kernel's distribution");
});

function control(o: { threads?: number; index?: number; cores?: number; refuse?: number } = {}) {
  const counters = new Int32Array(steeringCounters(o.threads ?? 2));
  let now = 0;
  const attached: [number, number][] = [];
  const refused: number[] = [];
  const switched: SteeringMode[] = [];
  const steering = startSteering({
    counters,
    index: o.index ?? 0,
    threads: o.threads ?? 2,
    cores: o.cores ?? 2,
    attach: (first, count) => (attached.push([first, count]), o.refuse ?? 0),
    refused: (errno) => refused.push(errno),
    switched: (mode) => switched.push(mode),
    now: () => now,
  });
  const advance = (ms: number) => {
    now += ms;
    steering?.tick();
  };
  return { counters, steering, attached, refused, switched, advance };
}

t.test('the control: single at start, spread when the threads fall behind, back after the hold', async (t) => {
  const c = control();
  t.equal(Atomics.load(c.counters, 0), 1, 'thread 0 marked its sockets joined');
  t.same(c.attached, [[0, 1]], 'single attached at start');
  t.equal(c.steering?.mode, 'single');
  for (let i = 0; i < 10; i++) countReceive(c.counters, 0, 64);
  c.advance(STEERING.windowMs - 1);
  t.equal(c.steering?.mode, 'single', 'no decision before a window has passed');
  c.advance(1);
  t.equal(c.steering?.mode, 'spread', 'full batches: spread');
  t.same(c.attached.at(-1), [0, 0]);
  for (let i = 0; i < 50; i++) countReceive(c.counters, i % 2, 2);
  c.advance(STEERING.holdMs);
  t.equal(c.steering?.mode, 'single', 'after the hold: single');
  c.steering?.setBusy(true);
  t.equal(c.steering?.mode, 'away', 'busy: away at once');
  t.same(c.attached.at(-1), [1, 1]);
  c.steering?.setBusy(false);
  t.equal(c.steering?.mode, 'single', 'done: single at once');
  t.same(c.switched, ['spread', 'single', 'away', 'single'], 'every switch reported, the first attach not');
  t.same(c.refused, []);
});

t.test('counters wrap around 2^31 without a false reading', async (t) => {
  const c = control();
  c.counters[1] = 0x7fffffff - 10;
  c.counters[2] = 0x7fffffff - 1;
  c.advance(STEERING.windowMs); // takes the wrapped totals as the start
  for (let i = 0; i < 10; i++) countReceive(c.counters, 0, 2);
  c.advance(STEERING.windowMs);
  t.equal(c.steering?.mode, 'single', '2 per receive across the wrap: keeping up');
  for (let i = 0; i < 10; i++) countReceive(c.counters, 0, 64);
  c.advance(STEERING.windowMs);
  t.equal(c.steering?.mode, 'spread', '64 per receive: behind');
});

t.test("a refused program leaves the kernel's distribution, reported once", async (t) => {
  const c = control({ refuse: 92 });
  t.same(c.refused, [92]);
  t.equal(c.steering?.mode, 'spread');
  for (let i = 0; i < 10; i++) countReceive(c.counters, 0, 64);
  c.advance(STEERING.windowMs);
  c.steering?.setBusy(true);
  t.same(c.attached, [[0, 1]], 'never tried again');
  t.same(c.switched, []);
});

t.test('nothing to steer: other threads, one thread, one core', async (t) => {
  const other = control({ index: 1 });
  t.equal(other.steering, null, 'thread 1 does not steer');
  t.equal(Atomics.load(other.counters, 0), 0, 'nor marks thread 0 joined');
  t.equal(control({ threads: 1 }).steering, null, 'one thread');
  t.equal(control({ cores: 1 }).steering, null, 'one core');
  t.same(control({ cores: 1 }).attached, [], 'nothing attached');
});
