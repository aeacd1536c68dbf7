/**
 * Self-probing, socket-free: a follower over the memory store with an injected clock, and a
 * SelfProber whose verdicts the test gives. When it starts (no live prober for stale-after while
 * the store answers), how its verdicts reach the snapshot, and the hand-back to a prober that
 * comes back (not before that prober has a view of each site from its current life).
 */
import t from 'tap';
import { embeddedSelfProber } from '../../src/app/serve-app.js';
import { selfProbing } from '../../src/metrics/definitions.js';
import { Prober } from '../../src/probe/prober.js';
import type { StateStore } from '../../src/state/types.js';
import { createLogger } from '../../src/util/logger.js';
import { Runtime } from '../../src/state/runtime.js';
import { StateFollower } from '../../src/state/follower.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { handedBack, shouldSelfProbe, HANDBACK_LIMIT_MS, type SelfProber } from '../../src/state/self-probing.js';
import { stateOf } from '../../src/state/snapshot.js';
import { emptyContents, type ProbeView } from '../../src/state/types.js';
import { compileText } from '../helpers/dns.js';
import { memoryLogger } from '../helpers/metrics.js';

const STALE_AFTER_MS = 5000;
const NEVER = 1_000_000_000;
const zoneText = 'zone: z.test\nsoa: { mname: ns1.z.test, rname: h.z.test }\nnameservers: { ns1.z.test: [192.0.2.1] }\nsites:\n  a: { addresses: [192.0.2.10] }\n  b: { addresses: [192.0.2.20] }\n';
const up = (checkedAt: number): ProbeView => ({ up: true, checkedAt, since: checkedAt, reason: 'HTTP 200' });
const down = (checkedAt: number): ProbeView => ({ up: false, checkedAt, since: checkedAt, reason: 'connection refused', decisive: true });
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A SelfProber the test drives: records starts and stops, and gives verdicts on demand. */
function drivenProber() {
  let emit: ((key: string, view: ProbeView | null) => void) | undefined;
  const calls: string[] = [];
  const prober: SelfProber = {
    start(onView) {
      calls.push('start');
      emit = onView;
    },
    stop() {
      calls.push('stop');
      emit = undefined;
    },
  };
  return { prober, calls, verdict: (key: string, view: ProbeView | null) => emit?.(key, view) };
}

async function setup(t: Tap.Test) {
  let T = 1_800_000_000_000;
  const store = new MemoryStateStore();
  const runtime = new Runtime(compileText(zoneText));
  const driven = drivenProber();
  const { logger, lines } = memoryLogger('info');
  const follower = new StateFollower({ store, runtime, logger, staleAfterMs: STALE_AFTER_MS, resyncMs: NEVER, tickMs: NEVER, now: () => T, selfProber: driven.prober });
  t.teardown(() => follower.stop());
  await follower.start(100);
  const clock = { get now() { return T; }, set now(v: number) { T = v; } };
  return { store, runtime, follower, driven, lines, clock };
}

const gauge = async () => (await selfProbing.get()).values[0]?.value;

t.test('when to probe for ourselves (pure)', async (t) => {
  const base = { storeUp: true, liveProbers: 0, quietSince: 1000, now: 6000, staleAfterMs: 5000 };
  t.equal(shouldSelfProbe(base), true, 'no live prober for stale-after, the store answering');
  t.equal(shouldSelfProbe({ ...base, now: 5999 }), false, 'not before stale-after');
  t.equal(shouldSelfProbe({ ...base, liveProbers: 1 }), false, 'a live prober');
  t.equal(shouldSelfProbe({ ...base, storeUp: false }), false, 'the store unreachable: the last known state (the probers may be alive)');

  const contents = emptyContents();
  contents.probers.set('p', { id: 'p', heartbeatAt: 900, startedAt: 500 });
  contents.views.set('p', new Map([['z/a', up(400)], ['z/b', up(600)]]));
  t.equal(handedBack(contents, ['p'], ['z/b']), true, 'a view written since the prober started');
  t.equal(handedBack(contents, ['p'], ['z/a', 'z/b']), false, 'a view from its earlier life does not count');
  t.equal(handedBack(contents, [], []), false, 'no live prober: nothing handed back');
});

t.test('no live prober for stale-after: own verdicts answered, until a prober is back with a full round', async (t) => {
  const { store, runtime, follower, driven, lines, clock } = await setup(t);
  const started = clock.now;
  await store.heartbeat({ id: 'p', heartbeatAt: started, startedAt: started - 60_000 }, true);
  await store.writeView('p', 'z.test/a', up(started));
  await store.writeView('p', 'z.test/b', up(started));
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/a').up, true);

  clock.now = started + STALE_AFTER_MS - 1;
  follower.recompute();
  t.same(driven.calls, [], 'not before stale-after');
  clock.now = started + STALE_AFTER_MS + 1; // the prober died right after its last heartbeat
  follower.recompute();
  t.same(driven.calls, ['start'], 'started after stale-after without a live prober');
  t.equal(follower.selfProbingActive, true);
  t.equal(await gauge(), 1, 'sitedns_self_probing 1');
  t.ok(lines.some((l) => /no live prober: this nameserver probes the sites itself/.test(l.msg)), 'logged');
  t.equal(stateOf(runtime.state, 'z.test/a').up, true, 'no verdict of its own yet: the last known state');

  driven.verdict('z.test/a', down(clock.now));
  await turn();
  const a = stateOf(runtime.state, 'z.test/a');
  t.equal(a.up, false, 'its own verdict: a is down');
  t.match(a.reason, /connection refused \(probed by this nameserver: no live prober\)/, 'status says whose verdict it is');
  t.equal(stateOf(runtime.state, 'z.test/b').up, true, 'b keeps the last known state');

  // The prober restarts: its first heartbeat comes with the views of its earlier life (a up).
  const restart = clock.now + 1000;
  clock.now = restart;
  await store.heartbeat({ id: 'p', heartbeatAt: restart, startedAt: restart }, true);
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'its first heartbeat does not bring back its old view of a');
  t.equal(follower.selfProbingActive, true, 'still self-probing');
  await store.writeView('p', 'z.test/b', up(restart + 10));
  clock.now = restart + 20;
  await turn();
  t.equal(follower.selfProbingActive, true, 'one site of two has a current view: still self-probing');
  t.equal(stateOf(runtime.state, 'z.test/a').up, false);
  await store.writeView('p', 'z.test/a', down(restart + 30));
  clock.now = restart + 40;
  await turn();
  t.equal(follower.selfProbingActive, false, 'every site has a current view: self-probing stopped');
  t.same(driven.calls, ['start', 'stop']);
  t.equal(await gauge(), 0, 'sitedns_self_probing 0');
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'the prober\'s verdict: a still down');
  t.match(stateOf(runtime.state, 'z.test/a').reason, /^connection refused$/, 'and it is the prober\'s');
  t.ok(lines.some((l) => l.msg === 'probers heart-beating again with a view of every site: self-probing stopped' && l.complete === true), 'logged');
});

t.test('a prober back without a view of every site: self-probing stops after the hand-back limit', async (t) => {
  const { store, follower, driven, clock } = await setup(t);
  const started = clock.now;
  await store.heartbeat({ id: 'p', heartbeatAt: started, startedAt: started }, true);
  await store.writeView('p', 'z.test/a', up(started));
  clock.now = started + STALE_AFTER_MS + 1;
  follower.recompute();
  driven.verdict('z.test/a', up(clock.now));
  driven.verdict('z.test/b', up(clock.now));
  await turn();
  const back = clock.now + 100;
  clock.now = back;
  await store.heartbeat({ id: 'q', heartbeatAt: back, startedAt: back }, true);
  await store.writeView('q', 'z.test/a', up(back));
  await turn();
  clock.now = back + HANDBACK_LIMIT_MS - 1;
  await store.heartbeat({ id: 'q', heartbeatAt: clock.now, startedAt: back }, true); // announced: the follower reads no heartbeat otherwise here
  follower.recompute();
  t.equal(follower.selfProbingActive, true, 'b has no view of q yet: still self-probing within the limit');
  clock.now = back + HANDBACK_LIMIT_MS;
  await store.heartbeat({ id: 'q', heartbeatAt: clock.now, startedAt: back }, true);
  follower.recompute();
  t.equal(follower.selfProbingActive, false, 'stopped at the limit');
  t.same(driven.calls, ['start', 'stop']);
});

t.test('past the hand-back limit a site whose own verdict is down stays down until the prober has a current view of it', async (t) => {
  const { store, runtime, follower, driven, clock } = await setup(t);
  const started = clock.now;
  await store.heartbeat({ id: 'p', heartbeatAt: started, startedAt: started - 60_000 }, true);
  await store.writeView('p', 'z.test/a', up(started));
  await store.writeView('p', 'z.test/b', down(started));
  clock.now = started + STALE_AFTER_MS + 1;
  follower.recompute();
  driven.verdict('z.test/a', down(clock.now));
  driven.verdict('z.test/b', up(clock.now));
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'a dead by its own probes');
  // The prober restarts with the same id: its earlier life's "a up" stays in the store while a is
  // unknown to it (a timing-out site takes 6 failures and their re-checks: past the limit).
  const back = clock.now + 100;
  clock.now = back;
  await store.heartbeat({ id: 'p', heartbeatAt: back, startedAt: back }, true);
  await turn();
  clock.now = back + HANDBACK_LIMIT_MS;
  await store.heartbeat({ id: 'p', heartbeatAt: clock.now, startedAt: back }, true);
  follower.recompute();
  t.equal(follower.selfProbingActive, false, 'self-probing stopped at the limit');
  t.same(driven.calls, ['start', 'stop']);
  t.equal(await gauge(), 0);
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'a is not answered for the prober\'s old view');
  t.match(stateOf(runtime.state, 'z.test/a').reason, /probed by this nameserver/);
  t.equal(stateOf(runtime.state, 'z.test/b').up, false, 'b, up by its own probes, goes back to the prober\'s view');
  clock.now += 5000;
  await store.heartbeat({ id: 'p', heartbeatAt: clock.now, startedAt: back }, true);
  follower.recompute();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'still down, however long it takes');
  await store.writeView('p', 'z.test/a', up(clock.now));
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/a').up, true, 'the prober\'s current view: a up');
  t.match(stateOf(runtime.state, 'z.test/a').reason, /^HTTP 200$/);
});

t.test('the last prober leaving cleanly: self-probing waits stale-after from its last heartbeat', async (t) => {
  const { store, follower, driven, clock } = await setup(t);
  const started = clock.now;
  await store.heartbeat({ id: 'p', heartbeatAt: started, startedAt: started }, true);
  await store.writeView('p', 'z.test/a', up(started));
  clock.now = started + 6000;
  await store.heartbeat({ id: 'p', heartbeatAt: clock.now, startedAt: started });
  await follower.resync();
  await store.removeProber('p'); // SIGTERM: its heartbeat leaves the store
  clock.now += 1;
  follower.recompute();
  t.same(driven.calls, [], 'not at once: the prober was heard 1 ms ago');
  clock.now = started + 6000 + STALE_AFTER_MS - 1;
  follower.recompute();
  t.same(driven.calls, [], 'not before stale-after from its last heartbeat');
  clock.now += 1;
  follower.recompute();
  t.same(driven.calls, ['start'], 'stale-after after its last heartbeat');
});

t.test('a drain wins over an own verdict; no prober ever: self-probing after stale-after from the first read', async (t) => {
  const { store, runtime, follower, driven, clock } = await setup(t);
  clock.now += STALE_AFTER_MS - 1;
  follower.recompute();
  t.same(driven.calls, [], 'not yet');
  clock.now += 1;
  follower.recompute();
  t.same(driven.calls, ['start'], 'no prober at all since the first read');
  await store.setForced('z.test/b', { state: 'down', by: 'ops', reason: 'maintenance', until: clock.now + 60_000, at: clock.now });
  driven.verdict('z.test/b', up(clock.now));
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/b').up, false, 'drained');
  t.equal(stateOf(runtime.state, 'z.test/b').forced?.by, 'ops');
  driven.verdict('z.test/b', null);
  await turn();
  t.equal(stateOf(runtime.state, 'z.test/b').up, false, 'still drained without a verdict');
});

t.test('the embedded self-prober stopped before or while it starts is left stopped (no heartbeat interval)', async (t) => {
  for (const when of ['before', 'while'] as const) {
    const events: string[] = [];
    let startCalled!: () => void;
    const starting = new Promise<void>((resolve) => (startCalled = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const self = embeddedSelfProber(new MemoryStateStore(), new Runtime(compileText(zoneText)), createLogger('silent'), (store) => {
      const prober = new Prober({ store, logger: createLogger('silent'), id: 'self' });
      const [start, stop] = [prober.start.bind(prober), prober.stop.bind(prober)];
      prober.start = async () => {
        startCalled();
        if (when === 'while') await held;
        await start(); // sets the heartbeat interval
        events.push('started');
      };
      prober.stop = async (leave) => {
        events.push('stopped');
        await stop(leave); // clears it
      };
      return prober;
    });
    self.start(() => undefined);
    if (when === 'while') await starting;
    self.stop();
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.equal(events.at(-1), 'stopped', `stopped ${when} it started: stopped last (${events.join(', ')})`);
  }
});
