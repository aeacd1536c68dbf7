#!/usr/bin/env node
/**
 * The error path of the zone loader: wall time of `sitedns check` (a fresh process: start-up,
 * read, parse, validate, compile, report) for zone files the loader accepts but that have one
 * error, or an anchor and alias (bench/reload/zones.mjs):
 *
 *   npm run build && node bench/reload/check.mjs
 *
 * Cases: the largest file (1 MiB) valid, with one wrong address, with an alias, with both;
 * a 100,000-name set (that file and 1,000-name files) with the error in the largest file.
 * Each case runs --runs times (default 3); the median is shown, and the reported line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { largestZone, reloadZoneSet, withAlias, withError } from './zones.mjs';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, names: { type: 'string', default: '100000' } } });
const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'sitedns-check-'));

function time(path) {
  const runs = [];
  let output = '';
  for (let i = 0; i < Number(values.runs); i++) {
    const started = performance.now();
    const r = spawnSync(process.execPath, [cli, 'check', path], { encoding: 'utf8' });
    runs.push(performance.now() - started);
    output = (r.stderr.trim().split('\n')[0] || r.stdout.trim().split('\n')[0] || '').slice(0, 110);
  }
  runs.sort((a, b) => a - b);
  return { ms: Math.round(runs[runs.length >> 1]), output };
}

const largest = largestZone();
const cases = [
  ['largest file, valid', largest.text],
  ['largest file, one wrong address', withError(largest.text)],
  ['largest file, anchor + alias, valid', withAlias(largest.text)],
  ['largest file, anchor + alias, one wrong address', withError(withAlias(largest.text))],
];
console.log(`largest file: ${largest.names} names, ${Buffer.byteLength(largest.text)} bytes; node ${process.version}`);
for (const [label, text] of cases) {
  const file = join(root, `${cases.findIndex((c) => c[0] === label)}.yaml`);
  writeFileSync(file, text);
  const { ms, output } = time(file);
  console.log(`${label.padEnd(50)} ${String(ms).padStart(6)} ms  ${output}`);
}
const set = reloadZoneSet(join(root, 'set'), Number(values.names));
writeFileSync(set.file, withError(set.text));
const { ms, output } = time(set.dir);
console.log(`${`${set.names} names, one wrong address in the largest`.padEnd(50)} ${String(ms).padStart(6)} ms  ${output}`);
rmSync(root, { recursive: true, force: true });
