#!/usr/bin/env node
/**
 * No reload, whatever the files hold, stops answering or the admin listener: a 100,000-name zone
 * set (bench/reload/zones.mjs: the largest file the loader accepts and 1,000-name files), served
 * by `sitedns serve --udp-threads 0`, a 1,000 QPS UDP query stream and 100 polls a second of /healthz;
 * then one error goes into the largest file (or, with --edit valid, one address changes in it)
 * and SIGHUP reloads. Reports the longest gap between consecutive answers and between HTTP
 * responses (target <= 50 ms) and the reload's duration as logged. About a minute.
 *
 *   npm run build && node bench/reload/gap.mjs                # one error in the largest file
 *   node bench/reload/gap.mjs --edit valid                     # a valid edit: its compile
 *   node bench/reload/gap.mjs --names 20000                    # quick look
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { load, machine } from '../qps/lib.mjs';
import { measureReloadGaps } from './gaps.mjs';
import { reloadZoneSet, withError } from './zones.mjs';

const { values } = parseArgs({ options: { names: { type: 'string', default: '100000' }, rate: { type: 'string', default: '1000' }, edit: { type: 'string', default: 'error' } } });
const info = machine();
const dir = mkdtempSync(join(tmpdir(), 'sitedns-gap-'));
const set = reloadZoneSet(dir, Number(values.names));
const edited = values.edit === 'valid' ? set.text.replace(/\{ A: \[10\.[0-9.]+\] \}(?![\s\S]*\{ A: \[)/, '{ A: [192.0.2.99] }') : withError(set.text);
if (edited === set.text) throw new Error('the edit changed nothing');
console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}; load ${load()}; ${new Date().toISOString()}`);
console.log(`zone set: ${set.names} names (largest file ${set.file}: ${Buffer.byteLength(set.text)} bytes); edit: ${values.edit}`);
const result = await measureReloadGaps({
  zonesDir: dir,
  names: set.queries.map((q) => q.name),
  rate: Number(values.rate),
  edit: () => writeFileSync(set.file, edited),
});
console.log(`reload: ${result.reloadMs} ms (${result.reloadMessage})`);
for (const p of result.problems) console.log(`  logged: ${p}`);
console.log(`longest gap between answers: ${result.answerGapMs} ms (${result.answered} answered of ${result.sent} sent; ${result.unanswered} unanswered)`);
console.log(`longest gap between HTTP responses: ${result.httpGapMs} ms (${result.httpResponses} responses)`);
console.log(`target: both <= 50 ms: ${result.answerGapMs <= 50 && result.httpGapMs <= 50 ? 'met' : 'NOT met'}`);
rmSync(dir, { recursive: true, force: true });
