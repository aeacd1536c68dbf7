/**
 * AnswererPool (src/server/answerer-pool.ts), the UDP threads' lifecycle, over a fake transport:
 * start and start failure, state on spawn and on 'hello', deltas where they apply, replies by id
 * (timeout, exit), serialized rolling reloads that fold requests in, include answerers still
 * starting and give every answerer of a run the same zones, restarts in the same slot, and stop
 * then kill.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import { makeSnapshot, recordDelta } from '../../src/state/snapshot.js';
import { AnswererFailedToStart, AnswererPool, type AnswererExit } from '../../src/server/answerer-pool.js';
import type { ZoneTexts } from '../../src/zones/reload.js';

type Request = { type: string; id?: number; zones?: ZoneTexts };
type Reply = { type: 'hello' } | { type: 'ready'; generation: number } | { type: 'reloaded'; id: number; ok: boolean; generation: number } | { type: 'pong'; id: number };

class Fake extends EventEmitter {
  readonly posted: Request[] = [];
  killed = false;
  constructor(readonly slot: number) {
    super();
  }
  say(reply: Reply): void {
    this.emit('message', reply);
  }
  end(exit: AnswererExit = { code: 0 }): void {
    this.emit('exit', exit);
  }
  last(type: string): Request | undefined {
    return this.posted.filter((m) => m.type === type).at(-1);
  }
}

function fakePool(o: { size: number; stopsWhenTold?: boolean }) {
  const zones = { current: { generation: 1, files: [], keySets: new Map() } as ZoneTexts };
  const spawned: Fake[] = [];
  const events: string[] = [];
  const state = makeSnapshot(new Map(), true);
  const pool = new AnswererPool<Fake, Request, Reply>({
    size: o.size,
    transport: {
      spawn: (slot) => {
        const fake = new Fake(slot);
        events.push(`spawned ${slot}${spawned.some((f) => f.slot === slot) ? ' (replacement)' : ''}`);
        spawned.push(fake);
        return fake;
      },
      post: (fake, message) => {
        fake.posted.push(message);
        if (message.type === 'stop' && o.stopsWhenTold !== false) setImmediate(() => fake.end());
      },
      onMessage: (fake, listener) => fake.on('message', listener),
      onExit: (fake, listener) => fake.on('exit', listener),
      kill: (fake) => {
        fake.killed = true;
        fake.end({ code: 1 });
      },
    },
    currentState: () => state,
    currentZones: () => zones.current,
    reloadRequest: (id, z) => ({ type: 'reload', id, zones: z }),
    killAfterMs: 50,
    listening: (a) => events.push(`listening ${a.slot}`),
    restarting: (a) => events.push(`restarting ${a.slot} ${a.ready ? 'died' : 'could not start'}`),
    reloaded: ({ ok }, n) => events.push(`reloaded ${n} ${ok}`),
  });
  return { pool, spawned, events, zones };
}

const tick = () => new Promise((r) => setImmediate(r));
const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  return check();
};

t.test("starts once every slot listens; the whole state at spawn, again on 'hello'", async (t) => {
  const { pool, spawned } = fakePool({ size: 2 });
  t.same(spawned.map((f) => f.posted.map((m) => m.type)), [['state'], ['state']], 'the whole state at spawn: a thread reads it before it listens');
  spawned[0].say({ type: 'hello' });
  t.same(spawned[0].posted.map((m) => m.type), ['state', 'state'], "'hello' (out of step) gets the whole state again");
  let started = false;
  void pool.start.then(() => (started = true));
  spawned[0].say({ type: 'ready', generation: 1 });
  await tick();
  t.notOk(started, 'one of two is not started');
  spawned[1].say({ type: 'ready', generation: 1 });
  t.same((await pool.start).length, 2, 'started with both ready messages');
  await pool.close();
});

t.test('one of the first N that ends before it listens fails the start; nothing restarts', async (t) => {
  const { pool, spawned, events } = fakePool({ size: 2 });
  spawned[0].say({ type: 'ready', generation: 1 });
  spawned[1].end({ code: 1 });
  const failure = await pool.start.then(() => null, (e: unknown) => e);
  t.ok(failure instanceof AnswererFailedToStart && failure.answerer.slot === 1 && failure.exit.code === 1, 'the start fails with the answerer and its exit');
  t.ok(spawned[0].last('stop'), "the one that listened is told to stop: the pool ends the others itself");
  await new Promise((r) => setTimeout(r, 150));
  t.equal(spawned.length, 2, 'not restarted');
  t.notOk(events.some((e) => e.startsWith('restarting')));
  await pool.close();
});

t.test('stopped while starting is not a failed start; messages after exit are ignored', async (t) => {
  const { pool, spawned, events } = fakePool({ size: 2, stopsWhenTold: false });
  spawned[0].say({ type: 'ready', generation: 1 });
  let failure: unknown = null;
  void pool.start.catch((e: unknown) => (failure = e));
  const awake = setInterval(() => {}, 1000); // the pool's kill timer is unref'd, as in a server
  t.teardown(() => clearInterval(awake));
  await pool.close(); // the one still compiling is killed
  t.ok(spawned[1].killed, 'the one still starting is killed');
  await tick();
  t.equal(failure, null, 'no start failure after close()');
  const posted = spawned[1].posted.length;
  spawned[1].say({ type: 'hello' });
  spawned[1].say({ type: 'ready', generation: 1 });
  t.equal(spawned[1].posted.length, posted, "a 'hello' after exit gets no state");
  t.notOk(events.includes('listening 1'), "a 'ready' after exit is not logged");
});

t.test('a rolling reload an answerer does not confirm in time is not ok', async (t) => {
  const { pool, spawned } = fakePool({ size: 1 });
  spawned[0].say({ type: 'ready', generation: 1 });
  await pool.start;
  (pool as unknown as { ask: (...args: unknown[]) => Promise<unknown> }).ask = async () => null; // as after RELOAD_TIMEOUT_MS
  t.same(await pool.reload(), { ok: false, generation: 0 }, 'ok: false');
  await pool.close();
});

t.test('replies by id; null on timeout or exit', async (t) => {
  const { pool, spawned } = fakePool({ size: 1 });
  spawned[0].say({ type: 'ready', generation: 1 });
  await pool.start;
  const [a] = pool.answerers();
  const asked = pool.ask(a, (id) => ({ type: 'ping', id }), 1000);
  spawned[0].say({ type: 'pong', id: 999 }); // someone else's
  spawned[0].say({ type: 'pong', id: spawned[0].last('ping')!.id! });
  t.same(await asked, { type: 'pong', id: spawned[0].last('ping')!.id }, 'the reply with its id');
  t.equal(await pool.ask(a, (id) => ({ type: 'ping', id }), 10), null, 'no reply in time: null');
  const dying = pool.ask(a, (id) => ({ type: 'ping', id }), 10_000);
  spawned[0].end({ code: 1 });
  t.equal(await dying, null, 'the answerer ended: null at once');
  await pool.close();
});

t.test('rolling reloads: one at a time, requests fold in, answerers still starting included', async (t) => {
  const { pool, spawned, events } = fakePool({ size: 2 });
  for (const f of spawned) f.say({ type: 'ready', generation: 1 });
  await pool.start;
  const answer = (f: Fake, generation: number) => f.say({ type: 'reloaded', id: f.last('reload')!.id!, ok: true, generation });
  const first = pool.reload();
  t.equal(pool.reload(), first, 'a request before the run started joins it');
  await tick();
  t.equal(spawned[0].last('reload')?.type, 'reload', 'the first answerer is asked');
  t.equal(spawned[1].last('reload'), undefined, 'the second waits its turn');
  const second = pool.reload();
  t.equal(pool.reload(), second, 'requests while it runs share the next run');
  t.not(second, first);
  answer(spawned[0], 2);
  await tick();
  answer(spawned[1], 2);
  t.same(await first, { ok: true, generation: 2 });
  await tick();
  // The second run: answerer 0 reloads again while answerer 1 dies and its replacement starts.
  answer(spawned[0], 3);
  spawned[1].end({ code: 1 });
  t.ok(await until(() => spawned.length === 3), 'the dead one is replaced');
  t.same(await second, { ok: true, generation: 3 }, 'the second run: the one that died does not count');
  const third = pool.reload();
  await tick();
  answer(spawned[0], 4);
  await until(() => spawned[2].last('reload') !== undefined);
  t.equal(spawned[2].last('reload')?.type, 'reload', 'the replacement still starting is asked too');
  t.equal(spawned[2].posted.at(-2)?.type, 'state', 'after the whole state');
  answer(spawned[2], 4);
  spawned[2].say({ type: 'ready', generation: 4 });
  t.same(await third, { ok: true, generation: 4 });
  t.same(events.filter((e) => e.startsWith('reloaded')), ['reloaded 2 true', 'reloaded 1 true', 'reloaded 2 true'], 'three runs, one after the other');
  await pool.close();
});

t.test('an answerer that ends is replaced in its slot, a replacement that cannot start too', async (t) => {
  const { pool, spawned, events } = fakePool({ size: 2 });
  for (const f of spawned) f.say({ type: 'ready', generation: 1 });
  await pool.start;
  spawned[1].end({ code: 1 });
  t.ok(await until(() => spawned.length === 3), 'replaced');
  t.equal(spawned[2].slot, 1, 'in the same slot');
  spawned[2].end({ code: 1 }); // cannot start
  t.ok(await until(() => spawned.length === 4), 'tried again');
  spawned[3].say({ type: 'ready', generation: 1 });
  t.same(events.filter((e) => e !== 'listening 0'), ['spawned 0', 'spawned 1', 'listening 1', 'restarting 1 died', 'spawned 1 (replacement)', 'restarting 1 could not start', 'spawned 1 (replacement)', 'listening 1']);
  t.same(pool.answerers().map((a) => a.slot).sort(), [0, 1]);
  await pool.close();
});

t.test("close: 'stop' to every answerer, killed when it does not end in time; one that listens later is told to stop", async (t) => {
  const { pool, spawned } = fakePool({ size: 2, stopsWhenTold: false });
  spawned[0].say({ type: 'ready', generation: 1 });
  const closing = pool.close();
  t.equal(pool.close(), closing, 'one close');
  t.same(spawned.map((f) => f.last('stop')?.type), ['stop', 'stop']);
  spawned[1].say({ type: 'ready', generation: 1 });
  t.equal(spawned[1].posted.filter((m) => m.type === 'stop').length, 2, 'told again once it listens');
  const alive = setTimeout(() => {}, 1000); // the kill timer is unref'd: a server has other handles
  await closing;
  clearTimeout(alive);
  t.same(spawned.map((f) => f.killed), [true, true], 'killed after killAfterMs');
  t.same(pool.answerers(), []);
});

t.test('a run gives every answerer the zones current at its start', async (t) => {
  const { pool, spawned, zones } = fakePool({ size: 2 });
  for (const f of spawned) f.say({ type: 'ready', generation: 1 });
  await pool.start;
  const answer = (f: Fake) => f.say({ type: 'reloaded', id: f.last('reload')!.id!, ok: true, generation: f.last('reload')!.zones!.generation });
  zones.current = { generation: 2, files: [], keySets: new Map() };
  const first = pool.reload();
  await tick();
  zones.current = { generation: 3, files: [], keySets: new Map() }; // the main thread reloads again during the run
  const second = pool.reload();
  answer(spawned[0]);
  await tick();
  t.equal(spawned[1].last('reload')?.zones?.generation, 2, 'the second answerer of the run gets the zones the run started with');
  answer(spawned[1]);
  t.same(await first, { ok: true, generation: 2 });
  await tick();
  t.equal(spawned[0].last('reload')?.zones?.generation, 3, 'the next run brings the newer zones');
  answer(spawned[0]);
  await tick();
  answer(spawned[1]);
  t.same(await second, { ok: true, generation: 3 });
  await pool.close();
});

t.test('state: deltas to the answerers holding the snapshot they start from, the whole state to others', async (t) => {
  const { pool, spawned } = fakePool({ size: 2 });
  const held = (spawned[0].last('state') as unknown as { version: number }).version;
  const next = makeSnapshot(new Map([['z/a', { up: false }]]), true);
  recordDelta(next, { from: held, changed: new Set(['z/a']) });
  pool.publishState(next);
  t.same(spawned.map((f) => f.posted.at(-1)?.type), ['delta', 'delta'], 'a delta from the state both were sent at spawn');
  const stray = makeSnapshot(new Map([['z/a', { up: true }]]), true);
  recordDelta(stray, { from: 424242, changed: new Set(['z/a']) });
  pool.publishState(stray);
  t.same(spawned.map((f) => f.posted.at(-1)?.type), ['state', 'state'], 'a delta from a snapshot they were not sent goes whole');
  for (const f of spawned) f.say({ type: 'ready', generation: 1 });
  await pool.start;
  await pool.close();
});
