/**
 * A real Redis Sentinel set on loopback, random ports: one master, one replica and three
 * sentinels (quorum 2), all with passwords, no persistence. The sentinels judge a master down
 * after `downAfterMs` of silence, so a killed master is replaced within a few seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, startRedis, track, type Proc, type RedisProc } from '../../bench/soak/procs.js';
import { eventually, probedZone, startBackend, type Backend } from './backends.js';
import { tempZonesDir } from './dns.js';
import { CLI, startSitedns, type Started } from './net.js';

export interface SentinelSet {
  readonly name: string;
  readonly password: string;
  readonly sentinelPassword: string;
  /** `host:port,host:port,host:port`, as --redis-sentinels takes it. */
  readonly sentinels: string;
  readonly master: RedisProc;
  readonly replica: RedisProc;
  /** The master's port as the first sentinel that answers names it. */
  masterPort(): Promise<number | undefined>;
  /** A client of the server on `port` (its password given). */
  server(port: number): Redis;
  /** Kills sentinel `index` (0..2) for good. */
  killSentinel(index: number): Promise<void>;
  stop(): Promise<void>;
}

export interface SentinelSetOptions {
  name?: string;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

async function startSentinel(dir: string, index: number, config: string): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const file = join(dir, `sentinel-${index}.conf`);
  // The sentinel rewrites this file (what it learns of the others, each failover).
  writeFileSync(file, `port ${port}\nbind 127.0.0.1\nprotected-mode no\ndir ${dir}\n${config}`);
  const proc = spawn('redis-sentinel', [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (c) => (output += c));
  proc.stderr!.on('data', (c) => (output += c));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-sentinel did not start:\n${output}`)), 10_000);
    proc.stdout!.on('data', () => {
      if (output.includes('+monitor master')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-sentinel exited with ${code}:\n${output}`));
    });
  });
  return { port, proc };
}

export async function startSentinelSet(options: SentinelSetOptions = {}): Promise<SentinelSet> {
  const name = options.name ?? 'mymaster';
  const password = 'redis-secret-4711';
  const sentinelPassword = 'sentinel-secret-0815';
  const dir = mkdtempSync(join(tmpdir(), 'sitedns-sentinel-'));
  // --dir: a replica stores the master's data set as a file while it syncs, and a sentinel
  // rewrites its own configuration file; both go to the temporary directory.
  const auth = ['--requirepass', password, '--masterauth', password, '--dir', dir];
  const master = await startRedis(auth);
  const replica = await startRedis([...auth, '--replicaof', '127.0.0.1', String(master.port)]);
  const clients: Redis[] = [];
  const server = (port: number) => {
    const client = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };
  const sentinelProcs: { port: number; proc: ChildProcess }[] = [];
  const stop = async () => {
    for (const c of clients) c.disconnect();
    for (const s of sentinelProcs) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
    await Promise.all(sentinelProcs.map((s) => (s.proc.exitCode === null && s.proc.signalCode === null ? once(s.proc, 'exit') : undefined)));
    await Promise.all([master.stop(), replica.stop()]);
  };
  try {
    const probe = server(replica.port);
    await eventually('the replica is in sync', async () => /master_link_status:up/.test(await probe.info('replication').catch(() => '')), 20_000);
    probe.disconnect();
    const config = [
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 5000}`,
      `sentinel auth-pass ${name} ${password}`,
      `requirepass ${sentinelPassword}`,
      `sentinel sentinel-pass ${sentinelPassword}`,
      '',
    ].join('\n');
    for (let i = 0; i < 3; i++) sentinelProcs.push(await startSentinel(dir, i, config));
    const sentinelClients = sentinelProcs.map(({ port }) => {
      const client = new Redis({ host: '127.0.0.1', port, password: sentinelPassword, maxRetriesPerRequest: 0, retryStrategy: () => 200 });
      client.on('error', () => undefined);
      clients.push(client);
      return client;
    });
    // A failover needs the sentinels to know each other (hello messages, every 2 s) and the replica.
    await eventually(
      'every sentinel knows the other two and the replica',
      async () => {
        for (const s of sentinelClients) {
          const others = (await s.call('SENTINEL', 'SENTINELS', name).catch(() => [])) as unknown[];
          const replicas = (await s.call('SENTINEL', 'REPLICAS', name).catch(() => [])) as unknown[];
          if (others.length < 2 || replicas.length < 1) return false;
        }
        return true;
      },
      30_000,
    );
    return {
      name,
      password,
      sentinelPassword,
      sentinels: sentinelProcs.map(({ port }) => `127.0.0.1:${port}`).join(','),
      master,
      replica,
      server,
      async killSentinel(index) {
        const { proc } = sentinelProcs[index];
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill('SIGKILL');
        await once(proc, 'exit');
      },
      async masterPort() {
        for (const s of sentinelClients) {
          const reply = (await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null)) as [string, string] | null;
          if (reply) return Number(reply[1]);
        }
        return undefined;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** What sentinelAndTwoSites starts. */
export interface SentinelSites {
  readonly set: SentinelSet;
  /** Backend a (127.0.0.2, load 10) and b (127.0.0.3, load 50) of probedZone(a, b). */
  readonly a: Backend;
  readonly b: Backend;
  /** --redis-sentinels and --redis-master, for more processes of the same store. */
  readonly sentinelFlags: string[];
  /** The passwords, as the README advises: in the environment, not on a command line. */
  readonly env: NodeJS.ProcessEnv;
  /** `sitedns probe` at --log-level debug, probing. */
  readonly prober: Proc;
  /** `sitedns serve --listen 127.0.0.1:0 --state-file off` with `serveFlags`. */
  readonly ns: Started;
}

/**
 * A Sentinel set (downAfterMs 1000), backends a and b, and a prober and a nameserver that find
 * the master through the sentinels; stopped when `t` ends.
 */
export async function sentinelAndTwoSites(t: Tap.Test, serveFlags: string[]): Promise<SentinelSites> {
  const set = await startSentinelSet({ downAfterMs: 1000 });
  t.teardown(() => set.stop());
  const a = await startBackend('127.0.0.2', 10);
  const b = await startBackend('127.0.0.3', 50);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const zones = tempZonesDir({ 'r.yaml': probedZone(a.url, b.url) });
  const sentinelFlags = ['--redis-sentinels', set.sentinels, '--redis-master', set.name];
  const env = { SITEDNS_REDIS_PASSWORD: set.password, SITEDNS_REDIS_SENTINEL_PASSWORD: set.sentinelPassword };
  const prober = track(spawn(process.execPath, [CLI, 'probe', '--zones', zones, '--prober-id', 'p1', '--log-level', 'debug', ...sentinelFlags], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] }));
  t.teardown(() => prober.stop());
  await prober.waitFor((l) => l.msg === 'probing');
  const ns = await startSitedns(['serve', '--zones', zones, '--listen', '127.0.0.1:0', '--state-file', 'off', ...sentinelFlags, ...serveFlags], env);
  t.teardown(() => ns.stop());
  return { set, a, b, sentinelFlags, env, prober, ns };
}
