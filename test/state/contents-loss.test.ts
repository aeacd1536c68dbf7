/**
 * A Redis that loses its contents (restarted without persistence, or flushed), against a real
 * redis-server: the drains a nameserver holds and the views a prober holds are written back,
 * each with one log line; a reconnect to a Redis that kept its contents writes nothing back (an
 * undrain made while a nameserver was cut off stands); a nameserver started from its
 * last-known-state file neither answers a dead site nor loses a drain when Redis comes back empty.
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Prober } from '../../src/probe/prober.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { RedisStateStore } from '../../src/state/redis-store.js';
import { StateFollower } from '../../src/state/follower.js';
import { Runtime } from '../../src/state/runtime.js';
import { stateOf } from '../../src/state/snapshot.js';
import { StateFileWriter } from '../../src/state/state-file.js';
import type { ForcedState, Notice, StoreContents } from '../../src/state/types.js';
import { createLogger } from '../../src/util/logger.js';
import { compileText } from '../helpers/dns.js';
import { eventually } from '../helpers/backends.js';
import { memoryLogger } from '../helpers/metrics.js';
import { freePort, startRedis } from '../helpers/redis.js';

const silent = createLogger('silent');
const zoneText = 'zone: z.test\nsoa: { mname: ns1.z.test, rname: h.z.test }\nnameservers: { ns1.z.test: [192.0.2.1] }\nsites:\n  a: { addresses: [192.0.2.10] }\n  b: { addresses: [192.0.2.20] }\n';
const downView = (at: number) => ({ up: false, checkedAt: at, since: at, reason: 'connection refused', decisive: true });
const upView = (at: number) => ({ up: true, checkedAt: at, since: at, reason: 'HTTP 200' });

/** A TCP relay to Redis that can be cut (every connection dropped, new ones refused) and restored. */
async function relayTo(port: number) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const listenPort = await freePort();
  const open = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(port, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(listenPort, '127.0.0.1');
    await once(server, 'listening');
  };
  await open();
  return {
    url: `redis://127.0.0.1:${listenPort}`,
    async cut() {
      const s = server!;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => s.close(r));
    },
    restore: open,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      if (server) await new Promise((r) => server!.close(r));
    },
  };
}

function follow(url: string, t: Tap.Test, extra: { logger?: ReturnType<typeof memoryLogger>['logger']; stateFile?: StateFileWriter } = {}) {
  const store = new RedisStateStore({ url, logger: silent });
  const runtime = new Runtime(compileText(zoneText));
  const follower = new StateFollower({ store, runtime, logger: extra.logger ?? silent, staleAfterMs: 60_000, resyncMs: 200, tickMs: 50, stateFile: extra.stateFile });
  t.teardown(async () => {
    await follower.stop();
    await store.close();
  });
  return { store, runtime, follower };
}

/** A Redis, a nameserver following it through a relay that can be cut, and an operator's store on Redis directly. */
async function behindRelay(t: Tap.Test) {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const relay = await relayTo(redis.port);
  t.teardown(() => relay.close());
  const { logger, lines } = memoryLogger('info');
  const { runtime, follower } = follow(relay.url, t, { logger });
  await follower.start(3000);
  const operator = new RedisStateStore({ url: redis.url, logger: silent });
  t.teardown(() => operator.close());
  await operator.ready(3000);
  return { redis, relay, lines, runtime, follower, operator };
}

const drain = (at: number) => ({ state: 'down' as const, by: 'ops', reason: 'kernel upgrade', until: at + 30 * 60_000, at });

t.test('Redis restarted empty: the drain a nameserver holds is written back, and logged', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const { logger, lines } = memoryLogger('info');
  const { store, runtime, follower } = follow(redis.url, t, { logger });
  t.equal(await follower.start(3000), 'store');
  const forced = drain(Date.now());
  await store.setForced('z.test/a', forced);
  await eventually('a drained', () => stateOf(runtime.state, 'z.test/a').forced?.state === 'down');

  await redis.kill();
  await eventually('the outage seen', () => !follower.connected);
  await redis.start();
  await eventually('reconnected', () => follower.connected);
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'still drained right after the reconnect');
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  await eventually('the drain is back in Redis', async () => (await raw.hget('sitedns:forced', 'z.test/a')) !== null);
  t.same(JSON.parse((await raw.hget('sitedns:forced', 'z.test/a'))!), forced, 'as it was: who, why, until');
  const line = lines.find((l) => l.msg === 'state store lost its contents: wrote back the drains and force-ups this nameserver held');
  t.match(line, { drains: 1, forcedUp: 0, written: 1, alreadyThere: 0, failed: 0 }, 'one line: what, how many');

  // Two nameservers holding the same drains: each is written once, the other finds it there.
  const second = follow(redis.url, t, { logger });
  await second.follower.start(3000);
  await store.setForced('z.test/b', drain(Date.now()));
  await eventually('the second sees the drain of b', () => stateOf(second.runtime.state, 'z.test/b').forced !== undefined);
  await raw.flushall(); // no reconnect: the next re-read finds the epoch gone
  await eventually('both wrote back', () => lines.filter((l) => l.msg?.startsWith('state store lost its contents: wrote back the drains')).length === 3);
  const last = lines.filter((l) => l.msg?.startsWith('state store lost its contents: wrote back the drains')).slice(1);
  t.same(last.map((l) => l.drains), [2, 2], 'each held both drains');
  t.equal(last[0].written + last[1].written, 2, 'each drain written once');
  t.equal(last[0].alreadyThere + last[1].alreadyThere, 2, 'and found there by the other');
  t.ok(await raw.hget('sitedns:forced', 'z.test/a'), 'a drained again in Redis');
  t.ok(await raw.hget('sitedns:forced', 'z.test/b'), 'b drained again in Redis');
  t.equal(stateOf(runtime.state, 'z.test/b').up, false);
});

t.test('an undrain made while a nameserver was cut off from a Redis that kept its contents stands', async (t) => {
  const { redis, relay, lines, runtime, follower, operator } = await behindRelay(t);
  await operator.setForced('z.test/a', drain(Date.now()));
  await eventually('a drained', () => stateOf(runtime.state, 'z.test/a').up === false);

  await relay.cut();
  await eventually('cut off', () => !follower.connected);
  await operator.setForced('z.test/a', null); // the undrain it does not see
  await relay.restore();
  await eventually('reconnected', () => follower.connected);
  await eventually('the undrain applies', () => stateOf(runtime.state, 'z.test/a').up === true);
  await new Promise((r) => setTimeout(r, 500));
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  t.equal(await raw.hget('sitedns:forced', 'z.test/a'), null, 'not written back');
  t.equal(stateOf(runtime.state, 'z.test/a').up, true, 'a stays undrained');
  t.notOk(lines.some((l) => /lost its contents/.test(l.msg)), 'no loss seen');
});

t.test('a prober writes back its heartbeat and views at once when Redis loses them, reconnect or not', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const { logger, lines } = memoryLogger('info');
  const store = new RedisStateStore({ url: redis.url, logger: silent });
  t.teardown(() => store.close());
  await store.ready(3000);
  const zones = compileText(zoneText.replace('a: { addresses: [192.0.2.10] }', `a: { addresses: [192.0.2.10], probe: { tcp: "127.0.0.1:${await freePort()}", interval: 1h } }`));
  const prober = new Prober({ store, logger, id: 'p1', heartbeatMs: 200, refreshMs: 3_600_000 });
  t.teardown(() => prober.stop(false));
  await prober.start();
  prober.setZones(zones);
  await prober.firstRound(5000);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  await eventually('a down in Redis', async () => JSON.parse((await raw.hget('sitedns:views:p1', 'z.test/a')) ?? '{}').up === false);

  await raw.flushall(); // the probe interval is an hour: only the write-back can bring it back
  await eventually('the view is back', async () => (await raw.hget('sitedns:views:p1', 'z.test/a')) !== null, 3000);
  t.equal(JSON.parse((await raw.hget('sitedns:views:p1', 'z.test/a'))!).up, false, 'down, as it was');
  t.ok(await raw.hget('sitedns:probers', 'p1'), 'the heartbeat is back');
  t.match(lines.find((l) => /lost its contents/.test(l.msg)), { msg: "state store lost its contents: wrote back this prober's heartbeat and views", views: 1 });

  await redis.kill();
  await redis.start();
  await eventually('back after a restart', async () => (await raw.hget('sitedns:views:p1', 'z.test/a').catch(() => null)) !== null, 5000);
  t.equal(lines.filter((l) => /lost its contents/.test(l.msg)).length, 2, 'logged again');
});

t.test('started from the state file while Redis is down; Redis back empty: no dead site answered, the drain written back', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const path = join(mkdtempSync(join(tmpdir(), 'sitedns-loss-')), 'state.json');
  const first = follow(redis.url, t, { stateFile: new StateFileWriter(path, silent, 0) });
  await first.follower.start(3000);
  const now = Date.now();
  await first.store.heartbeat({ id: 'p', heartbeatAt: now, startedAt: now }, true);
  await first.store.writeView('p', 'z.test/a', downView(now));
  await first.store.writeView('p', 'z.test/b', upView(now));
  await first.store.setForced('z.test/b', drain(now));
  await eventually('a down, b drained', () => stateOf(first.runtime.state, 'z.test/a').up === false && stateOf(first.runtime.state, 'z.test/b').forced !== undefined);
  await first.follower.stop(); // flushes the file
  await redis.kill();

  const { logger, lines } = memoryLogger('info');
  const second = follow(redis.url, t, { logger, stateFile: new StateFileWriter(path, silent, 0) });
  t.equal(await second.follower.start(300), 'state-file');
  t.equal(stateOf(second.runtime.state, 'z.test/a').up, false, 'a down, from the file');
  const seen: boolean[] = [];
  const unsubscribe = second.runtime.subscribeState((s) => seen.push(stateOf(s, 'z.test/a').up));
  t.teardown(unsubscribe);
  await redis.start(); // empty: no prober has rewritten anything yet
  await eventually('connected', () => second.follower.connected);
  await second.follower.resync();
  t.equal(stateOf(second.runtime.state, 'z.test/a').up, false, 'a still down after the first read of an empty Redis');
  t.notOk(seen.includes(true), 'a was never answered up in between');
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  await eventually('the drain of b is back in Redis', async () => (await raw.hget('sitedns:forced', 'z.test/b')) !== null);
  t.equal(stateOf(second.runtime.state, 'z.test/b').up, false, 'b drained throughout');
  t.match(lines.find((l) => /wrote back the drains/.test(l.msg)), { drains: 1, written: 1 });
});

t.test('Redis lost its contents, another nameserver wrote the drain back, an operator undrained it: a nameserver cut off throughout does not bring it back', async (t) => {
  const { redis, relay, lines, operator, ...cutOff } = await behindRelay(t);
  const other = follow(redis.url, t);
  await other.follower.start(3000);
  await operator.setForced('z.test/a', drain(Date.now()));
  await eventually('both hold the drain', () => stateOf(cutOff.runtime.state, 'z.test/a').up === false && stateOf(other.runtime.state, 'z.test/a').up === false);

  await relay.cut();
  await eventually('cut off', () => !cutOff.follower.connected);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  await raw.flushall(); // a new epoch
  await eventually('the other nameserver wrote the drain back', async () => (await raw.hget('sitedns:forced', 'z.test/a')) !== null);
  await operator.setForced('z.test/a', null); // the undrain, in the new epoch
  await eventually('the other answers a again', () => stateOf(other.runtime.state, 'z.test/a').up === true);

  await relay.restore();
  await eventually('reconnected', () => cutOff.follower.connected);
  await eventually('the write-back was refused', () => lines.some((l) => /lost its contents: wrote back the drains/.test(l.msg)));
  t.match(lines.find((l) => /lost its contents: wrote back the drains/.test(l.msg)), { drains: 1, written: 0, undrainedSince: 1 }, 'logged as undrained since');
  await eventually('the cut-off nameserver answers a', () => stateOf(cutOff.runtime.state, 'z.test/a').up === true);
  await new Promise((r) => setTimeout(r, 500));
  t.equal(await raw.hget('sitedns:forced', 'z.test/a'), null, 'the drain is not back in Redis');
  t.equal(stateOf(other.runtime.state, 'z.test/a').up, true, 'nor in the other nameserver');
  const record = JSON.parse((await raw.hget('sitedns:undrained', 'z.test/a'))!);
  t.ok(record.at > 0 && record.until > record.at, 'the undrain record: at, until');
});

t.test('a Redis restarted from an older snapshot (same epoch, a drain missing): a reconnecting nameserver writes it back and logs it', async (t) => {
  const { redis, relay, lines, runtime, follower, operator } = await behindRelay(t);
  const forced = drain(Date.now());
  await operator.setForced('z.test/a', forced);
  await eventually('a drained', () => stateOf(runtime.state, 'z.test/a').up === false);

  await relay.cut();
  await eventually('cut off', () => !follower.connected);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  await raw.hdel('sitedns:forced', 'z.test/a'); // as a snapshot taken before the drain would have it: no undrain record
  await relay.restore();
  await eventually('reconnected', () => follower.connected);
  await eventually('the drain is back in Redis', async () => (await raw.hget('sitedns:forced', 'z.test/a')) !== null);
  t.same(JSON.parse((await raw.hget('sitedns:forced', 'z.test/a'))!), forced, 'as it was');
  t.match(lines.find((l) => /was missing drains/.test(l.msg)), { drains: 1, written: 1, undrainedSince: 0 }, 'logged');
  t.notOk(lines.some((l) => /lost its contents/.test(l.msg)), 'no loss of contents: the epoch is the same');
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'a stays drained');
});

t.test('a write-back still running: every re-read meanwhile takes the drains being written back as there', async (t) => {
  /** A memory store that can lose its contents, its write-backs held until released. */
  class LosingStore extends MemoryStateStore {
    private onLoss: (() => void) | undefined;
    private release: (() => void) | undefined;
    private held = new Promise<void>((resolve) => (this.release = resolve));
    override subscribe(onNotice: (n: Notice) => void, onConnection?: (c: boolean) => void, onLoss?: () => void) {
      this.onLoss = onLoss;
      return super.subscribe(onNotice, onConnection);
    }
    lose() {
      (this as unknown as { contents: StoreContents }).contents.forced.clear(); // gone without a notice, as in a restarted Redis
      this.onLoss?.();
    }
    override async restoreForced(key: string, forced: ForcedState) {
      await this.held;
      return super.restoreForced(key, forced);
    }
    writeBackDone() {
      this.release!();
    }
  }
  const store = new LosingStore();
  const runtime = new Runtime(compileText(zoneText));
  const follower = new StateFollower({ store, runtime, logger: silent, staleAfterMs: 60_000, resyncMs: 1_000_000_000, tickMs: 1_000_000_000 });
  t.teardown(() => follower.stop());
  await follower.start(100);
  await store.setForced('z.test/a', drain(Date.now()));
  await eventually('a drained', () => stateOf(runtime.state, 'z.test/a').up === false);
  store.lose();
  await follower.resync();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'drained after the first re-read');
  await follower.resync();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'and after a second one while the write-back runs');
  store.writeBackDone();
  await eventually('written back', async () => (await store.readAll()).forced.has('z.test/a'));
  await follower.resync();
  t.equal(stateOf(runtime.state, 'z.test/a').up, false, 'drained, now from the store');
});
