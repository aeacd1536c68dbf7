/**
 * A real redis-server for tests, on a random free loopback port, without persistence
 * (--save '' --appendonly no). `kill()` + `start()` again simulate an outage on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { RedisStateStore } from '../../src/state/redis-store.js';
import type { Notice } from '../../src/state/types.js';
import { createLogger } from '../../src/util/logger.js';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Starts (again) on the same port. */
  start(): Promise<void>;
  /** SIGKILL: an abrupt outage. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  let proc: ChildProcess | undefined;
  let port = await freePort();
  const launch = async (): Promise<void> => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
      child.stdout!.on('data', (c: Buffer) => {
        output += c.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
  };
  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      // The free port may have been taken between probing and binding: try another.
      if (attempt >= 3) throw error;
      port = await freePort();
    }
  }
  const kill = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGKILL');
    await once(p, 'exit');
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start: launch,
    kill,
    async stop() {
      await kill();
    },
  };
}

/** What redisStoreAndRaw starts. */
export interface StoreOnRedis {
  readonly redis: TestRedis;
  /** The store, keys under `sd:`, ready. */
  readonly store: RedisStateStore;
  /** A plain client: the keys as they are in Redis. */
  readonly raw: Redis;
  /** Every notice the store has received, oldest first. */
  readonly notices: Notice[];
}

/** A redis-server and a RedisStateStore on it (prefix `sd:`), with a plain client; stopped when `t` ends. */
export async function redisStoreAndRaw(t: Tap.Test): Promise<StoreOnRedis> {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const store = new RedisStateStore({ url: redis.url, prefix: 'sd:', logger: createLogger('silent') });
  t.teardown(() => store.close());
  await store.ready(5000);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  const notices: Notice[] = [];
  store.subscribe((n) => notices.push(n));
  return { redis, store, raw, notices };
}
