/** The command line's own words: --version (-V), `sitedns help <command>` for every command. */
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { CLI } from '../helpers/net.js';

const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

t.test('--version and -V print package.json\'s version and exit 0', async (t) => {
  for (const flag of ['--version', '-V']) {
    const r = run(flag);
    t.equal(r.status, 0, `${flag}: exit 0`);
    t.equal(r.stdout, `${version}\n`, `${flag}: ${version}`);
  }
});

t.test('`sitedns help <command>` is that command\'s --help, for every command', async (t) => {
  const main = run('help');
  t.equal(main.status, 0);
  t.match(main.stdout, /sitedns help <command>/);
  const commands = [...main.stdout.matchAll(/^ {2}([a-z-]+) {2,}\S/gm)].map((m) => m[1]);
  t.ok(commands.includes('explain'), `explain is listed: ${commands.join(' ')}`);
  const exec = promisify(execFile);
  const pairs = await Promise.all(commands.map((c) => Promise.all([exec(process.execPath, [CLI, 'help', c], { encoding: 'utf8' }), exec(process.execPath, [CLI, c, '--help'], { encoding: 'utf8' })])));
  for (const [i, command] of commands.entries()) {
    const [viaHelp, viaFlag] = pairs[i];
    t.match(viaHelp.stdout, new RegExp(`^Usage: sitedns ${command}`), `help ${command}`);
    t.equal(viaHelp.stdout, viaFlag.stdout, `help ${command} = ${command} --help`);
  }
  const unknown = run('help', 'nope');
  t.equal(unknown.status, 1, 'help of an unknown command: exit 1');
  t.match(unknown.stderr, /^sitedns: unknown command "nope"/);
});

t.test('`sitedns help audit`: the trail\'s filters, its output and where it reads', async (t) => {
  const main = run('help');
  t.match(main.stdout, /^ {2}audit {2,}\S/m, 'audit is a command');
  const help = run('help', 'audit');
  t.equal(help.status, 0);
  t.match(help.stdout, /^Usage: sitedns audit \[--site <site>\] \[--limit N\]/);
  for (const flag of ['--site', '--limit', '--output', '--redis', '--http']) t.match(help.stdout, new RegExp(`^\\s+${flag} `, 'm'), flag);
  t.match(help.stdout, /last 1,000 entries/);
  t.match(run('help', 'undrain').stdout, /^\s+--by /m, 'undrain names who ends the drain');
  const bad = run('audit', '--limit', '0', '--http', '127.0.0.1:1');
  t.equal(bad.status, 1);
  t.match(bad.stderr, /--limit: "0" is not above 0/);
});
