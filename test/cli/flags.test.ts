/**
 * Typed flags: each command's flags are read once (argv, then SITEDNS_* environment, then the
 * default) into one typed object; a value the flag's type refuses is one line naming the flag and
 * the value.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { DEFAULT_ADMIN_LISTEN } from '../../src/app/serve-app.js';
import { FlagError, readFlags, type Flags } from '../../src/cli/args.js';
import { checkFlags } from '../../src/cli/check.js';
import { drainFlags } from '../../src/cli/drain.js';
import { probeFlags } from '../../src/cli/probe.js';
import { chooseUdpThreads, serveFlags, UdpThreadsError } from '../../src/cli/serve.js';
import { statusFlags } from '../../src/cli/status.js';
import { CLI } from '../helpers/net.js';

/** Reads flags with exactly these SITEDNS_* variables set (the test runner's own are put aside). */
function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) if (name.startsWith('SITEDNS_') || name === 'LOG_LEVEL') delete process.env[name];
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    process.env = saved;
  }
}

function flagsOf<F extends Flags>(argv: string[], flags: F, env: Record<string, string> = {}) {
  const read = withEnv(env, () => readFlags(argv, flags));
  if (read.help) throw new Error('unexpected --help');
  return read.flags;
}

function refusal<F extends Flags>(argv: string[], flags: F, env: Record<string, string> = {}): FlagError | undefined {
  try {
    flagsOf(argv, flags, env);
  } catch (error) {
    return error as FlagError;
  }
  return undefined;
}

t.test('serve: defaults, typed', async (t) => {
  const f = flagsOf([], serveFlags);
  t.equal(f.zones, 'zones');
  t.same(f.listen, ['127.0.0.1:5353']);
  t.equal(f.http, undefined, 'no default: serve picks its admin listener');
  t.equal(f.probe, false);
  t.equal(f['stale-after'], 5000);
  t.equal(f['startup-limit'], 3000);
  t.equal(f['tcp-idle-timeout'], 10_000);
  t.equal(f['tcp-query-timeout'], 5000);
  t.equal(f['tcp-max-connections'], 2000);
  t.equal(f['tcp-max-per-network'], 256);
  t.equal(f['rrl-rate'], 100);
  t.same(f['rrl-exempt'], ['127.0.0.0/8', '::1/128']);
  t.equal(f['udp-threads'], 'auto', 'UDP threads, one per core, where the addon loads');
  t.equal(f['udp-path'], 'auto');
  t.equal(f['log-level'], 'info');
  t.equal(f['query-log-sample'], 0);
  t.equal(f['watch-debounce'], 250);
  t.equal(f['stop-timeout'], 5000);
});

t.test('serve: argv wins over the environment, the environment over the default', async (t) => {
  const env = { SITEDNS_STALE_AFTER: '2m', SITEDNS_UDP_THREADS: '3', SITEDNS_REDIS_URL: 'redis://10.0.0.1:6379', LOG_LEVEL: 'warn' };
  const f = flagsOf(['--stale-after', '1h30m', '--listen', '127.0.0.1:53', '--listen', '[::1]:53', '--probe'], serveFlags, env);
  t.equal(f['stale-after'], 5_400_000, 'argv');
  t.equal(f['udp-threads'], 3, 'SITEDNS_UDP_THREADS');
  t.equal(f.redis, 'redis://10.0.0.1:6379', 'SITEDNS_REDIS_URL');
  t.equal(f['log-level'], 'warn', 'LOG_LEVEL');
  t.same(f.listen, ['127.0.0.1:53', '[::1]:53']);
  t.equal(f.probe, true);
  t.equal(flagsOf(['--watch-debounce', '0'], serveFlags)['watch-debounce'], 0, '--watch-debounce 0 (no watching) stays accepted');
  t.equal(flagsOf(['--query-log-sample', '0.01'], serveFlags)['query-log-sample'], 0.01);
});

t.test('serve: a refused value names the flag, where it came from, and the value', async (t) => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--stale-after', '3000'], {}, /^--stale-after: "3000" is not a duration: give it a unit \(d, h, m, s, ms\), e\.g\. 3000ms or 3000s$/],
    [['--tcp-idle-timeout', 'soon'], {}, /^--tcp-idle-timeout: "soon" is not a duration \(a number and a unit: d, h, m, s, ms/],
    [['--stop-timeout', '25d'], {}, /^--stop-timeout: "25d" is longer than 24d$/],
    [['--tcp-max-connections', '2k'], {}, /^--tcp-max-connections: "2k" is not a whole number$/],
    [['--udp-threads', 'many'], {}, /^--udp-threads: "many" is not a whole number or auto$/],
    // --workers is refused, whatever its value, pointing at --udp-threads: an old unit file fails loudly.
    [['--workers', '2'], {}, /^--workers: "2" is not accepted: UDP uses every core through --udp-threads \(auto, the default: one thread per core; 0: the main thread\)$/],
    [['--workers', '1'], {}, /^--workers: "1" is not accepted: UDP uses every core through --udp-threads/],
    [[], { SITEDNS_WORKERS: '2' }, /^--workers \(from SITEDNS_WORKERS\): "2" is not accepted: UDP uses every core through --udp-threads/],
    [['--udp-path', 'raw'], {}, /^--udp-path: "raw" is not auto, dgram or batched$/],
    [['--log-level', 'loud'], {}, /^--log-level: "loud" is not one of fatal, error, warn, info, debug, trace, silent$/],
    [['--query-log-sample', '2'], {}, /^--query-log-sample: "2" is not a fraction from 0 to 1$/],
    [[], { SITEDNS_TCP_QUERY_TIMEOUT: '5' }, /^--tcp-query-timeout \(from SITEDNS_TCP_QUERY_TIMEOUT\): "5" is not a duration: give it a unit/],
  ];
  for (const [argv, env, message] of cases) {
    const error = refusal(argv, serveFlags, env);
    t.ok(error instanceof FlagError, `${argv.join(' ')}${Object.keys(env).join(' ')}: a FlagError`);
    t.equal(error?.code, 'EFLAG');
    t.match(error?.message, message);
  }
});

t.test('serve: UDP threads where the addon loads, else the main thread; asked-for threads without it are refused', async (t) => {
  const noAddon = 'batched UDP addon not built';
  t.same(chooseUdpThreads('auto', 'auto', 4, null), { threads: 4 }, 'the default: one thread per core');
  t.same(chooseUdpThreads('auto', 'batched', 2, null), { threads: 2 });
  t.same(chooseUdpThreads(3, 'auto', 2, null), { threads: 3 }, 'a number is taken as it is');
  t.same(chooseUdpThreads(0, 'auto', 4, null), { threads: 0 }, '0: the main thread, no reason to log');
  t.same(chooseUdpThreads(0, 'dgram', 4, noAddon), { threads: 0 });
  t.same(chooseUdpThreads('auto', 'auto', 4, noAddon), { threads: 0, fallback: noAddon }, 'the default without the addon: the main thread, saying why');
  t.match(chooseUdpThreads('auto', 'dgram', 4, null), { threads: 0, fallback: /--udp-path dgram/ }, 'auto with --udp-path dgram: the main thread, saying why');
  for (const [requested, path, unavailable, message] of [
    [2, 'auto', noAddon, /^batched UDP addon not built \(--udp-threads 0 answers on the main thread without it\)$/],
    [2, 'dgram', null, /--udp-path dgram does not apply/],
  ] as const) {
    const error = (() => {
      try {
        chooseUdpThreads(requested, path, 4, unavailable);
      } catch (e) {
        return e as UdpThreadsError;
      }
    })();
    t.ok(error instanceof UdpThreadsError, `--udp-threads ${requested} --udp-path ${path}: refused`);
    t.equal(error?.code, 'EUDP_THREADS');
    t.match(error?.message, message);
  }
});

t.test('--help is answered whatever the environment holds', async (t) => {
  const read = withEnv({ SITEDNS_STOP_TIMEOUT: 'soon' }, () => readFlags(['--help'], serveFlags));
  t.same(read, { help: true });
  t.throws(() => flagsOf([], serveFlags, { SITEDNS_STOP_TIMEOUT: 'soon' }), { code: 'EFLAG' }, 'without --help the value is checked');
});

t.test('drain: --for is a duration longer than 0', async (t) => {
  const f = flagsOf(['boston'], drainFlags);
  t.equal(f.for, 3_600_000, 'default 1h');
  t.equal(f.reason, 'drained by an operator');
  t.equal(f.by, undefined);
  t.equal(f.up, false);
  t.equal(f.http, DEFAULT_ADMIN_LISTEN);
  t.equal(f['redis-prefix'], 'sitedns:');
  t.equal(flagsOf(['--for', '2d', '--up'], drainFlags).for, 172_800_000);
  t.match(refusal(['--for', '0s'], drainFlags)?.message, /^--for: "0s" is not longer than 0$/);
  t.match(refusal(['--for', '30'], drainFlags)?.message, /^--for: "30" is not a duration: give it a unit/);
});

t.test('probe, status, check', async (t) => {
  const probe = flagsOf(['--once'], probeFlags);
  t.equal(probe.once, true);
  t.equal(probe['startup-limit'], 5000);
  t.equal(probe.redis, undefined);
  t.match(refusal(['--startup-limit', '1.5'], probeFlags)?.message, /^--startup-limit: "1\.5" is not a duration: give it a unit/);
  const status = flagsOf(['--json'], statusFlags, { SITEDNS_HTTP: '127.0.0.1:9999' });
  t.equal(status.json, true);
  t.equal(status.http, '127.0.0.1:9999');
  t.equal(flagsOf([], checkFlags).zones, undefined);
});

t.test('the command line: one line on stderr, exit 1', async (t) => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, SITEDNS_UDP_THREADS: '' } });
  for (const [args, message] of [
    [['serve', '--listen', '127.0.0.1:0', '--http', 'off', '--stale-after', '3000'], 'sitedns serve: --stale-after: "3000" is not a duration'],
    [['serve', '--listen', '127.0.0.1:0', '--http', 'off', '--workers', '2'], 'sitedns serve: --workers: "2" is not accepted: UDP uses every core through --udp-threads'],
    [['drain', 'boston', '--for', '90'], 'sitedns drain: --for: "90" is not a duration'],
    [['probe', '--once', '--startup-limit', 'soon'], 'sitedns probe: --startup-limit: "soon" is not a duration'],
  ] as const) {
    const r = run(...args);
    t.equal(r.status, 1, `${args[0]}: exit 1`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${args[0]}: one line`);
    t.ok(r.stderr.startsWith(message), `${args[0]}: ${r.stderr.trim()}`);
  }
});
