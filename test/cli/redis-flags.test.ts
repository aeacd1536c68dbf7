/**
 * Where Redis is: --redis or --redis-sentinels with --redis-master and the passwords, typed once
 * for every command that takes --redis, and the ioredis options built from them in one place.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { FlagError, readFlags, type Flags } from '../../src/cli/args.js';
import { drainFlags } from '../../src/cli/drain.js';
import { probeFlags } from '../../src/cli/probe.js';
import { redisConnection } from '../../src/cli/redis-flags.js';
import { reportFlags } from '../../src/cli/report.js';
import { serveFlags } from '../../src/cli/serve.js';
import { statusFlags } from '../../src/cli/status.js';
import { describeRedis, redisClientOptions } from '../../src/state/redis-connection.js';
import { CLI } from '../helpers/net.js';

/** Reads flags with exactly these SITEDNS_* variables set (the test runner's own are put aside). */
function flagsOf<F extends Flags>(argv: string[], flags: F, env: Record<string, string> = {}) {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) if (name.startsWith('SITEDNS_')) delete process.env[name];
  Object.assign(process.env, env);
  try {
    const read = readFlags(argv, flags);
    if (read.help) throw new Error('unexpected --help');
    return read.flags;
  } finally {
    process.env = saved;
  }
}

function refusal(run: () => unknown): FlagError | undefined {
  try {
    run();
  } catch (error) {
    return error as FlagError;
  }
  return undefined;
}

t.test('every command that takes --redis takes the sentinels, the master name and the passwords', async (t) => {
  for (const [command, flags] of Object.entries({ serve: serveFlags, probe: probeFlags, status: statusFlags, drain: drainFlags, report: reportFlags })) {
    for (const flag of ['redis', 'redis-sentinels', 'redis-master', 'redis-password', 'redis-sentinel-password']) t.ok(flag in flags, `${command} --${flag}`);
  }
});

t.test('--redis-sentinels: host:port, comma or space separated, IPv6 in brackets', async (t) => {
  const f = flagsOf(['--redis-sentinels', '10.0.0.1:26379,[2001:db8::1]:26380 sentinel-c:26381'], statusFlags);
  t.same(f['redis-sentinels'], [
    { host: '10.0.0.1', port: 26379 },
    { host: '2001:db8::1', port: 26380 },
    { host: 'sentinel-c', port: 26381 },
  ]);
  t.equal(f['redis-master'], 'mymaster', 'the master name defaults to mymaster');
  t.equal(flagsOf([], statusFlags)['redis-sentinels'], undefined, 'none given: undefined');
  for (const [value, message] of [
    ['10.0.0.1:26379,sentinel-b', /^--redis-sentinels: "10\.0\.0\.1:26379,sentinel-b" has "sentinel-b", which is not host:port/],
    ['10.0.0.1:0', /has "10\.0\.0\.1:0", which is not host:port .*port 1-65535/],
    ['10.0.0.1:70000', /has "10\.0\.0\.1:70000", which is not host:port/],
    [' , ', /^--redis-sentinels: " , " names no sentinel/],
  ] as const) {
    const error = refusal(() => flagsOf(['--redis-sentinels', value], serveFlags));
    t.ok(error instanceof FlagError, `${JSON.stringify(value)} refused`);
    t.match(error?.message, message);
  }
  t.match(refusal(() => flagsOf(['--redis-master', 'my master'], probeFlags))?.message, /^--redis-master: "my master" is not a master name/);
});

t.test('the environment names the sentinels and carries the passwords', async (t) => {
  const env = { SITEDNS_REDIS_SENTINELS: '10.0.0.1:26379 10.0.0.2:26379', SITEDNS_REDIS_MASTER: 'sites', SITEDNS_REDIS_PASSWORD: 'r-pw', SITEDNS_REDIS_SENTINEL_PASSWORD: 's-pw' };
  const connection = redisConnection(flagsOf([], probeFlags, env));
  t.same(connection, {
    sentinels: [
      { host: '10.0.0.1', port: 26379 },
      { host: '10.0.0.2', port: 26379 },
    ],
    master: 'sites',
    password: 'r-pw',
    sentinelPassword: 's-pw',
  });
});

t.test('redisConnection: a URL, the sentinels, or none; not both', async (t) => {
  t.equal(redisConnection(flagsOf([], serveFlags)), undefined, 'no Redis: the embedded default');
  t.same(redisConnection(flagsOf(['--redis', 'redis://10.0.0.1:6379'], serveFlags)), { url: 'redis://10.0.0.1:6379', password: undefined });
  t.same(redisConnection(flagsOf(['--redis', 'redis://10.0.0.1:6379', '--redis-password', 'pw'], drainFlags)), { url: 'redis://10.0.0.1:6379', password: 'pw' });
  t.same(redisConnection(flagsOf(['--redis-sentinels', '10.0.0.1:26379', '--redis-master', 'sites'], serveFlags)), { sentinels: [{ host: '10.0.0.1', port: 26379 }], master: 'sites', password: undefined, sentinelPassword: undefined });
  for (const [argv, env] of [
    [['--redis', 'redis://10.0.0.1:6379', '--redis-sentinels', '10.0.0.1:26379'], {}],
    [['--redis-sentinels', '10.0.0.1:26379'], { SITEDNS_REDIS_URL: 'redis://10.0.0.1:6379' }],
  ] as const) {
    const error = refusal(() => redisConnection(flagsOf([...argv], serveFlags, env)));
    t.ok(error instanceof FlagError, `${argv.join(' ')} ${Object.keys(env).join(' ')}: refused`);
    t.equal(error?.code, 'EFLAG');
    t.match(error?.message, /^--redis-sentinels: not with --redis/);
  }
});

t.test('the ioredis options: one server by URL, or the master through the sentinels', async (t) => {
  const byUrl = redisClientOptions({ url: 'redis://10.0.0.1:6379/2', password: 'pw' }, 'sitedns');
  t.equal(byUrl.url, 'redis://10.0.0.1:6379/2');
  t.match(byUrl.options, { connectionName: 'sitedns', password: 'pw', enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  t.equal(byUrl.options.sentinels, undefined);
  t.equal(byUrl.options.retryStrategy?.(1), 100, 'reconnects after 100 ms');
  t.equal(byUrl.options.retryStrategy?.(50), 1000, '... at most 1 s');
  t.equal(byUrl.options.reconnectOnError?.(new Error("READONLY You can't write against a read only replica.")), 1, 'a demoted master: reconnect');
  t.equal(byUrl.options.reconnectOnError?.(new Error('ERR wrong number of arguments')), false);

  const bySentinels = redisClientOptions({ sentinels: [{ host: '10.0.0.1', port: 26379 }], master: 'sites', password: 'r-pw', sentinelPassword: 's-pw' }, 'sitedns-sub');
  t.equal(bySentinels.url, undefined);
  t.match(bySentinels.options, { connectionName: 'sitedns-sub', sentinels: [{ host: '10.0.0.1', port: 26379 }], name: 'sites', role: 'master', password: 'r-pw', sentinelPassword: 's-pw', failoverDetector: true, enableOfflineQueue: false });
  t.equal(bySentinels.options.sentinelRetryStrategy?.(3), 300, 'the sentinels are asked again after 100 ms .. 1 s');
});

t.test('describeRedis names Redis without a password', async (t) => {
  t.equal(describeRedis({ url: 'redis://:s3cret@10.0.0.1:6379/2' }), 'redis://:***@10.0.0.1:6379/2');
  t.equal(describeRedis({ url: 'rediss://user:s3cret@redis.example:6380' }), 'rediss://user:***@redis.example:6380');
  t.equal(describeRedis({ url: 'redis://10.0.0.1:6379', password: 's3cret' }), 'redis://10.0.0.1:6379');
  t.equal(describeRedis({ sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], master: 'sites', password: 's3cret', sentinelPassword: 's3cret' }), 'master "sites" of sentinels 10.0.0.1:26379,[::1]:26380');
});

t.test('the command line: --redis with --redis-sentinels is one line, exit 1', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'status', '--redis', 'redis://127.0.0.1:1', '--redis-sentinels', '127.0.0.1:2'], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.equal(r.stderr.trim(), 'sitedns status: --redis-sentinels: not with --redis (give the URL of one server, or the sentinels that name its master)');
});
