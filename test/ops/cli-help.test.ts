/** `sitedns --help` lists every command; each command's help lists every flag with its environment variable. */
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI } from '../helpers/net.js';
import { envNames, parseFlags, type Flags } from '../../src/cli/args.js';
import { serveFlags } from '../../src/cli/serve.js';

const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

t.test('every command has complete help', async (t) => {
  const main = run('--help');
  t.equal(main.status, 0);
  const commands = [...main.stdout.matchAll(/^ {2}([a-z-]+) {2,}\S/gm)].map((m) => m[1]);
  t.ok(commands.includes('serve') && commands.includes('check'), `commands: ${commands.join(' ')}`);
  // In parallel: node start-up dominates on a busy CI machine.
  const helps = await Promise.all(commands.map((c) => promisify(execFile)(process.execPath, [CLI, c, '--help'], { encoding: 'utf8' })));
  for (const [i, command] of commands.entries()) {
    const help = helps[i];
    t.match(help.stdout, new RegExp(`^Usage: sitedns ${command}`, 'm'));
    const flagLines = help.stdout.split('\n').filter((l) => /^\s+--[a-z]/.test(l));
    t.ok(flagLines.length > 0, `${command} lists flags`);
    for (const line of flagLines) {
      const flag = /--([a-z0-9-]+)/.exec(line)![1];
      if (flag === 'help') continue;
      t.match(line, /\[env SITEDNS_[A-Z0-9_]+/, `${command} --${flag} names its environment variable`);
    }
  }
});

t.test('serve documents the operations flags and every serve flag has an env name', async (t) => {
  const help = run('serve', '--help').stdout;
  for (const flag of ['http', 'http-token', 'query-log-sample', 'watch-debounce', 'stop-timeout', 'log-level']) t.match(help, `--${flag}`);
  t.match(help, /SITEDNS_HTTP\b/);
  t.match(help, /SIGHUP/);
  for (const [name, spec] of Object.entries(serveFlags)) if (name !== 'help') t.ok(envNames(name, spec)[0].startsWith('SITEDNS_'));
});

t.test('environment variables fill flags; SITEDNS_REDIS_URL is an alias of --redis', async (t) => {
  const flags: Flags = { redis: { type: 'string', help: 'x' }, 'query-log-sample': { type: 'string', default: '0', help: 'x' } };
  const saved = { ...process.env };
  t.teardown(() => {
    process.env = saved;
  });
  process.env.SITEDNS_REDIS_URL = 'redis://127.0.0.1:6390';
  process.env.SITEDNS_QUERY_LOG_SAMPLE = '0.01';
  const { values, fromArgv } = parseFlags([], flags);
  t.equal(values.redis, 'redis://127.0.0.1:6390');
  t.same([...fromArgv], [], 'nothing came from the command line');
  t.same([...parseFlags(['--redis', 'redis://x'], flags).fromArgv], ['redis'], 'fromArgv names the flags given on it');
  t.equal(values['query-log-sample'], '0.01');
  t.equal(parseFlags(['--redis', 'redis://x'], flags).values.redis, 'redis://x', 'the flag wins over the environment');
});

t.test('bad ops flags are clear errors', async (t) => {
  const r = run('serve', '--zones', 'zones', '--listen', '127.0.0.1:0', '--http', 'off', '--query-log-sample', '2');
  t.equal(r.status, 1);
  t.match(r.stdout + r.stderr, /--query-log-sample: \\?"2\\?" is not a fraction/);
});
