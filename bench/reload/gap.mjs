#!/usr/bin/env node
/**
 * No reload, whatever the files hold, stops answering or the main thread (probe results, the
 * admin listener): a 100,000-name zone set (bench/reload/zones.mjs: the largest file the loader
 * accepts and 1,000-name files), served by `sitedns serve --udp-threads 0` (the main thread
 * answers UDP) and by `--udp-threads 2` (two threads answer UDP and each compiles the new zones), a
 * 1,000 QPS UDP query stream and 100 polls a second of /healthz; then one error goes into the
 * largest file (`error`) or one address changes in it (`valid`: the changed file is compiled
 * and the prebuilt table built again), and SIGHUP reloads. Reports, per mode and edit, the
 * longest gap between consecutive answers and between HTTP responses (target <= 50 ms), and
 * what the process measured inside: its main thread's longest event-loop delay and the longest
 * slice of each compile (main thread, each UDP thread). About a minute per run.
 *
 *   npm run build && node bench/reload/gap.mjs                         # every edit and mode
 *   node bench/reload/gap.mjs --edit valid --udp-threads 2              # one run
 *   node bench/reload/gap.mjs --names 20000                             # quick look
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { load, machine } from '../qps/lib.mjs';
import { measureReloadGaps } from './gaps.mjs';
import { reloadZoneSet, withError, withNewAddress } from './zones.mjs';

const { values } = parseArgs({
  options: { names: { type: 'string', default: '100000' }, rate: { type: 'string', default: '1000' }, edit: { type: 'string', default: 'error,valid' }, 'udp-threads': { type: 'string', default: '0,2' } },
});
const info = machine();
console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}; load ${load()}; ${new Date().toISOString()}`);
let met = true;
for (const edit of values.edit.split(',')) {
  for (const udpThreads of values['udp-threads'].split(',').map(Number)) {
    const dir = mkdtempSync(join(tmpdir(), 'sitedns-gap-'));
    const set = reloadZoneSet(dir, Number(values.names));
    const edited = edit === 'valid' ? withNewAddress(set.text) : withError(set.text);
    if (edited === set.text) throw new Error('the edit changed nothing');
    const mode = `--udp-threads ${udpThreads}`;
    console.log(`\n${mode}, edit ${edit}: ${set.names} names (largest file ${Buffer.byteLength(set.text)} bytes); load ${load()}`);
    const r = await measureReloadGaps({ zonesDir: dir, names: set.queries.map((q) => q.name), rate: Number(values.rate), udpThreads, edit: () => writeFileSync(set.file, edited) });
    rmSync(dir, { recursive: true, force: true });
    console.log(`  reload: ${r.reloadMs} ms (${r.reloadMessage})`);
    for (const p of r.problems) console.log(`  logged: ${p}`);
    console.log(`  longest gap between answers: ${r.answerGapMs} ms (${r.answered} answered of ${r.sent} sent; ${r.unanswered} unanswered)`);
    console.log(`  longest gap between HTTP responses: ${r.httpGapMs} ms (${r.httpResponses} responses)`);
    console.log(`  inside: main thread's longest event-loop delay ${r.eventLoopDelayMs} ms (${r.idleEventLoopDelayMs} ms in as long before it, without a reload); longest compile slice: main ${r.mainSliceMs} ms${r.threadSliceMs.length > 0 ? `, UDP threads ${r.threadSliceMs.join(', ')} ms` : ''}`);
    console.log(`  main thread from the edit on: ${r.mainRanMs} ms on a CPU, ${r.mainWaitedMs} ms waiting for one; at most ${r.mainCpuBlockMs} ms of CPU between two turns of its event loop (${r.idleMainCpuBlockMs} ms before)`);
    met &&= r.answerGapMs <= 50 && r.httpGapMs <= 50;
  }
}
console.log(`\ntarget: every gap <= 50 ms: ${met ? 'met' : 'NOT met'}`);
