/**
 * Redis Sentinel end to end, with real processes: a master, a replica and three sentinels
 * (test/helpers/sentinel.ts), a `sitedns probe` and a `sitedns serve` that find the master through
 * the sentinels (passwords from the environment), real HTTP backends, and dnsperf sending 2,000
 * queries a second. The master is killed: every query is answered, and once the sentinels name
 * the replica as the master, a probe result and a `sitedns drain` are written to it within 10 s.
 * The sentinels judge a master down after 1 s of silence; every other limit leaves room for a
 * loaded 2-core machine.
 */
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { adminRequest } from '../../src/admin/http.js';
import { RedisStateStore } from '../../src/state/redis-store.js';
import { statusFromContents, type StatusReport } from '../../src/state/status.js';
import { createLogger } from '../../src/util/logger.js';
import { startRedis } from '../../bench/soak/procs.js';
// @ts-expect-error: bench/qps/lib.mjs is JavaScript without type declarations
import { dnsperf } from '../../bench/qps/lib.mjs';
import { answer, eventually } from '../helpers/backends.js';
import { CLI } from '../helpers/net.js';
import { sentinelAndTwoSites } from '../helpers/sentinel.js';

t.setTimeout(240_000);

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const have = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const missing = ['redis-server', 'redis-sentinel', 'dnsperf'].filter((c) => !have(c));
const skip = missing.length > 0 ? `not installed (.ci/run installs them): ${missing.join(', ')}` : false;

const QPS = 2000;
const WRITE_LIMIT_MS = 10_000;

t.test('the master killed under 2,000 QPS: every query answered, probes and drains written again', { skip }, async (t) => {
  const { set, a, sentinelFlags, env, prober, ns } = await sentinelAndTwoSites(t, ['--http', '127.0.0.1:0', '--log-level', 'debug']);
  const adminPort = (await ns.waitForLog((l) => l.msg === 'admin listening')).port;
  const nsStatus = async () => (await adminRequest(`127.0.0.1:${adminPort}`, 'GET', '/v1/status')).body as StatusReport;
  await eventually('the nameserver follows the store with both sites up', async () => {
    const status = await nsStatus();
    return status.store.connected && status.sites.filter((s) => s.state === 'up').length === 2;
  });
  t.equal(await set.masterPort(), set.master.port, 'the sentinels name the first master');

  // Reads the server that becomes the master straight, by URL with --redis-password's option.
  const promoted = new RedisStateStore({ url: `redis://127.0.0.1:${set.replica.port}`, password: set.password, logger: createLogger('silent') });
  t.teardown(() => promoted.close());
  await promoted.ready(5000);
  const promotedStatus = async () => statusFromContents(await promoted.readAll(), Date.now(), 'redis');
  t.ok((await promotedStatus()).sites.some((s) => s.site === 'r.test/a'), 'the replica holds the state');

  const load = dnsperf({ port: ns.port, queries: [{ name: 'a.r.test', type: 'A' }, { name: 'b.r.test', type: 'A' }, { name: 'r.test', type: 'A' }], seconds: 25, clients: 1, rate: QPS });
  await sleep(2000);
  set.master.proc.kill('SIGKILL');
  const killedAt = Date.now();
  await eventually('a sentinel names the replica as the master', async () => (await set.masterPort()) === set.replica.port, 60_000);
  const promotedAt = Date.now();
  t.comment(`promotion ${promotedAt - killedAt} ms after the kill`);

  // A probe result: a's load changes; the prober must write it to the new master.
  a.load = 33;
  const probeWritten = eventually('the new master holds a with load 33', async () => (await promotedStatus()).sites.find((s) => s.site === 'r.test/a')?.load === 33, 60_000).then(() => Date.now());
  // A drain through the sentinels, retried until it succeeds (each try gives Redis 3 s).
  const drained = (async () => {
    for (;;) {
      try {
        const { stdout } = await run(process.execPath, [CLI, 'drain', 'b', '--for', '1h', '--reason', 'failover test', '--by', 'tester', ...sentinelFlags], { env: { ...process.env, ...env } });
        return { at: Date.now(), stdout };
      } catch (error) {
        if (Date.now() - promotedAt > 60_000) throw error;
        await sleep(200);
      }
    }
  })();
  const [probeAt, drain] = await Promise.all([probeWritten, drained]);
  t.comment(`probe written ${probeAt - promotedAt} ms, drain written ${drain.at - promotedAt} ms after the promotion`);
  t.ok(probeAt - promotedAt < WRITE_LIMIT_MS, `a probe result is written within 10 s of the promotion (${probeAt - promotedAt} ms)`);
  t.ok(drain.at - promotedAt < WRITE_LIMIT_MS, `a drain is written within 10 s of the promotion (${drain.at - promotedAt} ms)`);
  t.match(drain.stdout, /r\.test\/b: drained until .* by tester: failover test/);
  t.equal((await promotedStatus()).sites.find((s) => s.site === 'r.test/b')?.state, 'drained', 'the drain is in the new master');

  // The nameserver follows the new master: the drain and the probe result reach its answers.
  await eventually('the nameserver answers b.r.test with a (b drained)', async () => (await answer(ns.port, 'b.r.test')) === '192.0.2.10', 30_000);
  await eventually('the nameserver sees a at load 33', async () => (await nsStatus()).sites.find((s) => s.site === 'r.test/a')?.load === 33, 30_000);
  t.comment(`the nameserver follows both ${Date.now() - promotedAt} ms after the promotion`);

  const result = await load;
  t.comment(`dnsperf: ${result.command}: sent ${result.sent}, completed ${result.completed}, lost ${result.lost}, ${result.qps} QPS`);
  t.ok(result.sent >= QPS * 25 * 0.8, `the load ran near 2,000 QPS (${result.sent} queries in 25 s)`);
  t.equal(result.lost, 0, 'every query answered');
  t.equal(result.completed, result.sent, 'every query sent was completed');

  const secrets = [set.password, set.sentinelPassword];
  const logged = JSON.stringify([...prober.lines, ...ns.logs]) + drain.stdout;
  t.ok(prober.lines.length > 0 && ns.logs.length > 0, 'both processes logged');
  for (const secret of secrets) t.notOk(logged.includes(secret), 'no password in any log line or output');
});

t.test('--redis-password gives the password a URL without one lacks', { skip: have('redis-server') ? false : 'redis-server not installed' }, async (t) => {
  const redis = await startRedis(['--requirepass', 'flag-secret']);
  t.teardown(() => redis.stop());
  const url = `redis://127.0.0.1:${redis.port}`;
  const ok = await run(process.execPath, [CLI, 'status', '--redis', url, '--json'], { env: { ...process.env, SITEDNS_REDIS_PASSWORD: 'flag-secret' } });
  t.equal(JSON.parse(ok.stdout).store.kind, 'redis', 'connected with SITEDNS_REDIS_PASSWORD');
  const refused = await run(process.execPath, [CLI, 'status', '--redis', url, '--redis-password', 'wrong-secret'], { env: { ...process.env, SITEDNS_REDIS_PASSWORD: '' } }).catch((error) => error as { code: number; stderr: string });
  t.equal((refused as { code: number }).code, 1, 'a wrong password does not connect');
  t.match((refused as { stderr: string }).stderr, `Redis at ${url} refused the credentials`, 'says so, naming Redis');
  t.notMatch((refused as { stderr: string }).stderr, 'wrong-secret', 'the error does not show the password');
});

t.test('a client ioredis gives up is connected again until the store is closed', { skip: have('redis-server') ? false : 'redis-server not installed' }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const store = new RedisStateStore({ url: `redis://127.0.0.1:${redis.port}`, logger: createLogger('silent') });
  await store.ready(5000);
  // What a Sentinel connect cut short by a failover announcement leaves: the client ended.
  const cmd = (store as unknown as { cmd: { disconnect(): void; status: string } }).cmd;
  cmd.disconnect();
  await eventually('the client ended', () => cmd.status === 'end', 5000);
  await eventually('connected again', () => store.connected(), 5000);
  t.equal(cmd.status, 'ready', 'the ended client is ready again');
  await store.close();
  await sleep(500);
  t.equal(cmd.status, 'end', 'a closed store stays closed');
});

t.test('sentinel quorum lost: a healthy master keeps taking drains; a lost one is not replaced', { skip }, async (t) => {
  // docs/deployment.md "Sentinel quorum lost".
  const { set, sentinelFlags, env, ns } = await sentinelAndTwoSites(t, ['--http', 'off']);
  await eventually('the nameserver answers b.r.test with b', async () => (await answer(ns.port, 'b.r.test')) === '192.0.2.20');

  // Two of three sentinels gone: no quorum. The master is healthy, so nothing changes, and a new
  // process still finds the master through the one sentinel left (the first two refuse).
  await set.killSentinel(0);
  await set.killSentinel(1);
  const { stdout } = await run(process.execPath, [CLI, 'drain', 'b', '--for', '1h', '--reason', 'quorum test', '--by', 'tester', ...sentinelFlags], { env: { ...process.env, ...env } });
  t.match(stdout, /r\.test\/b: drained until .* by tester: quorum test/, 'a drain from a new process lands with one sentinel of three');
  await eventually('the nameserver answers b.r.test with a (b drained)', async () => (await answer(ns.port, 'b.r.test')) === '192.0.2.10', 30_000);

  // The master lost as well: one sentinel cannot promote the replica; answers go on from the
  // last known state.
  set.master.proc.kill('SIGKILL');
  await sleep(5000);
  t.equal(await set.masterPort(), set.master.port, 'no failover without a quorum: the sentinel left still names the dead master');
  t.match(await set.server(set.replica.port).info('replication'), /role:slave/, 'the replica was not promoted');
  t.equal(await answer(ns.port, 'b.r.test'), '192.0.2.10', 'the nameserver answers from the last known state (b still drained)');
  t.equal(await answer(ns.port, 'a.r.test'), '192.0.2.10', 'and a as before');
});
