/**
 * `serve` start-up errors: one line on stderr naming the flag and its value, one fatal log line
 * without a stack, exit 1. Bad values are refused with the flags (a Redis URL ioredis would throw
 * on, a --listen that is not host:port); addresses that cannot be opened are named as given.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { FlagError, readFlags } from '../../src/cli/args.js';
import { probeFlags } from '../../src/cli/probe.js';
import { serveFlags } from '../../src/cli/serve.js';
import { statusFlags } from '../../src/cli/status.js';
import { batchedUnavailable } from '../../src/server/udp-batched.js';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';
import { CLI } from '../helpers/net.js';

/** `sitedns serve ...`: exit code, stderr, and the fatal log lines of stdout. */
function serve(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; fatal: any[]; stdout: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, 'serve', ...args], { env: { ...process.env, SITEDNS_UDP_THREADS: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.on('close', (code) => {
      clearTimeout(timer);
      const fatal = stdout.split('\n').filter((l) => l.startsWith('{') && l.includes('"fatal"')).map((l) => JSON.parse(l));
      resolve({ code, stderr, fatal, stdout });
    });
  });
}

function oneLineFailure(t: Tap.Test, r: Awaited<ReturnType<typeof serve>>, line: string | RegExp, code?: string): void {
  t.equal(r.code, 1, 'exit 1');
  t.equal(r.stderr.split('\n').filter(Boolean).length, 1, `one line on stderr: ${r.stderr.trim()}`);
  t.match(r.stderr, line);
  t.notMatch(r.stdout + r.stderr, /\n\s+at /, 'no stack');
  if (code !== undefined) {
    t.equal(r.fatal.length, 1, 'one fatal log line');
    t.equal(r.fatal[0]?.code, code);
    t.equal(r.fatal[0]?.msg, r.stderr.trim().replace(/^sitedns serve: /, ''), 'the log says what stderr says');
  }
}

function refusal(argv: string[], flags: Parameters<typeof readFlags>[1]): FlagError | undefined {
  try {
    readFlags(argv, flags);
  } catch (error) {
    return error as FlagError;
  }
  return undefined;
}

t.test('a Redis URL that ioredis would throw on is refused with the flags, its password hidden', async (t) => {
  for (const flags of [serveFlags, probeFlags, statusFlags]) {
    t.match(refusal(['--redis', 'redis://127.0.0.1:notaport'], flags)?.message, /^--redis: "redis:\/\/127\.0\.0\.1:notaport" is not a Redis URL \(redis:\/\/\[:password@\]host\[:port\]\[\/db\], rediss:\/\/ for TLS, or a socket path\)$/);
    t.equal(refusal(['--redis', 'http://127.0.0.1:6379'], flags)?.code, 'EFLAG', 'not a Redis scheme');
    const secret = refusal(['--redis', 'redis://user:hunter2@127.0.0.1:nope'], flags);
    t.match(secret?.message, /^--redis: "redis:\/\/user:\*\*\*@127\.0\.0\.1:nope" is not a Redis URL/);
    t.notMatch(secret?.message, /hunter2/, 'the password is not in the message');
  }
  for (const url of ['redis://127.0.0.1:6379', 'rediss://:pw@redis.example:6380/2', '127.0.0.1:6379', '/run/redis.sock', '']) {
    t.equal(refusal(['--redis', url], serveFlags), undefined, `${JSON.stringify(url)} is accepted`);
  }
  const r = await serve(['--redis', 'redis://127.0.0.1:notaport', '--listen', '127.0.0.1:0', '--http', 'off']);
  oneLineFailure(t, r, /^sitedns serve: --redis: "redis:\/\/127\.0\.0\.1:notaport" is not a Redis URL/);
});

t.test('--listen that is not host:port is refused with the flags', async (t) => {
  t.match(refusal(['--listen', '127.0.0.1:53', '--listen', 'nonsense'], serveFlags)?.message, /^--listen: "nonsense" is not host:port/);
  t.match(refusal(['--listen', '127.0.0.1:70000'], serveFlags)?.message, /^--listen: "127\.0\.0\.1:70000": port 70000 is out of range$/);
});

t.test('a --listen address in use is named, on every UDP path', async (t) => {
  const taken = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => taken.bind({ port: 0, address: '127.0.0.1', exclusive: true }, resolve));
  t.teardown(() => taken.close());
  const listen = `127.0.0.1:${taken.address().port}`;
  const cases: [string, string[], RegExp, boolean][] = [
    ['dgram', ['--udp-path', 'dgram'], new RegExp(`^sitedns serve: --listen ${listen}: UDP: bind EADDRINUSE ${listen}\\n$`), true],
    ['batched', ['--udp-path', 'batched'], new RegExp(`^sitedns serve: --listen ${listen}: UDP: bind: address already in use \\(EADDRINUSE\\)\\n$`), batchedUnavailable() === null],
    ['threads', ['--udp-threads', '1'], new RegExp(`^sitedns serve: --listen ${listen}: UDP thread 0: bind: address already in use \\(EADDRINUSE\\)\\n$`), udpThreadsUnavailable() === null],
  ];
  for (const [path, extra, line, available] of cases) {
    if (!available && process.env.SITEDNS_REQUIRE_ADDON !== '1') {
      t.skip(`${path}: the batched addon is not built`);
      continue;
    }
    const r = await serve(['--zones', 'zones', '--listen', listen, '--http', 'off', '--startup-limit', '100ms', ...extra]);
    oneLineFailure(t, r, line, 'EADDRINUSE');
  }
});

t.test('an --http address in use, and zones that cannot load, name their flag', async (t) => {
  const squatter = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => squatter.once('listening', resolve));
  t.teardown(() => squatter.close());
  const http = `127.0.0.1:${(squatter.address() as net.AddressInfo).port}`;
  oneLineFailure(t, await serve(['--zones', 'zones', '--listen', '127.0.0.1:0', '--http', http, '--startup-limit', '100ms']), new RegExp(`^sitedns serve: --http ${http}: admin listener: listen EADDRINUSE`), 'EADMIN_LISTEN');
  oneLineFailure(t, await serve(['--zones', 'no/such/dir', '--listen', '127.0.0.1:0', '--http', 'off']), /^sitedns serve: --zones no\/such\/dir: no zone could be loaded from no\/such\/dir\n$/, 'ENO_ZONES');
});
