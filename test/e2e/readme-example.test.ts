/**
 * The README's first example reproduces with the sample zone: a real `sitedns serve` of
 * zones/app.example.com.yaml, its probes pointed at health backends reporting the loads of the
 * README's `sitedns status` table, asked with the README's own `dig` commands for the Pool Name.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startBackend, eventually } from '../helpers/backends.js';
import { tempZonesDir } from '../helpers/dns.js';
import { startSitedns } from '../helpers/net.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const SAMPLE = readFileSync(new URL('../../zones/app.example.com.yaml', import.meta.url), 'utf8');
const SITES = ['boston', 'chicago', 'geneva'];

/** The `$ dig ... app.example.com ...` commands of the README's first console block, with their output. */
function poolNameExamples(): { args: string[]; output: string[] }[] {
  const block = /```console\n([\s\S]*?)```/.exec(README)![1];
  const examples: { args: string[]; output: string[] }[] = [];
  for (const part of block.split(/^\$ /m).slice(1)) {
    const [command, ...output] = part.split('\n');
    const args = command.trim().split(/\s+/);
    if (args[0] === 'dig' && args.includes('app.example.com')) examples.push({ args: args.slice(1), output });
  }
  return examples;
}

/** The addresses an answer gives, in dig's full (answer section) or +short form. */
function addresses(lines: string[]): string[] {
  const found: string[] = [];
  for (const line of lines) {
    const m = /^app\.example\.com\.\s+\d+\s+IN\s+A\s+(\S+)$/.exec(line.trim()) ?? /^(\d+\.\d+\.\d+\.\d+)$/.exec(line.trim());
    if (m) found.push(m[1]);
  }
  return found;
}

/** Each site's load in the README's `sitedns status` table. */
function readmeLoads(): Record<string, number> {
  const loads: Record<string, number> = {};
  for (const site of SITES) {
    const m = new RegExp(`^app\\.example\\.com/${site}\\s+up\\s+([\\d.]+)\\s`, 'm').exec(README);
    if (m) loads[site] = Number(m[1]);
  }
  return loads;
}

const hasDig = spawnSync('dig', ['-v']).error === undefined;

t.test('the README parts this test reads are there', async (t) => {
  const examples = poolNameExamples();
  t.ok(examples.length >= 2, 'the Pool Name asked from loopback and from a European subnet');
  for (const e of examples) t.equal(addresses(e.output).length, 1, `${e.args.join(' ')}: one address shown`);
  t.same(Object.keys(readmeLoads()), SITES);
});

t.test('the README\'s Pool Name answers come from the sample zone', { skip: hasDig ? false : 'no dig (apt-get install bind9-dnsutils; .ci/run installs it)' }, async (t) => {
  const loads = readmeLoads();
  let zone = SAMPLE;
  for (const [i, site] of SITES.entries()) {
    const backend = await startBackend('127.0.0.1', loads[site]);
    t.teardown(() => backend.stop());
    zone = zone.replace(`http://127.0.0.1:1808${i + 1}/health`, backend.url);
  }
  const server = await startSitedns(['serve', '--zones', tempZonesDir({ 'app.example.com.yaml': zone }), '--listen', '127.0.0.1:0', '--http', 'off']);
  t.teardown(() => server.stop());

  for (const { args, output } of poolNameExamples()) {
    const asked = args.map((a) => (a === '5353' ? String(server.port) : a));
    const expected = addresses(output);
    let answered: string[] = [];
    // The loads are known once every site was probed (the first round; Boston needs two).
    await eventually(`dig ${args.join(' ')} answers ${expected}`, () => {
      answered = addresses(execFileSync('dig', [...asked, '+time=2', '+tries=1'], { encoding: 'utf8' }).split('\n'));
      return answered.join() === expected.join();
    }, 10_000).catch(() => undefined);
    t.same(answered, expected, `dig ${args.join(' ')}`);
  }
});
