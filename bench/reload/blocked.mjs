#!/usr/bin/env node
/**
 * How long a reload blocks the calling thread (the one that answers DNS), apart from the loader
 * thread: a ZoneStore over a --names zone set (bench/reload/zones.mjs) is loaded, then reloaded
 * after each edit of its largest file the way every reload runs (publishLoad: load, compile,
 * prebuilt table, publish), while a 1 ms timer records the longest stall of this thread's event
 * loop. Also shows what building the prebuilt-answer table of the whole set at once costs.
 *
 *   npm run build && node bench/reload/blocked.mjs [--names 100000]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { load, machine } from '../qps/lib.mjs';
import { reloadZoneSet, withError, withNewAddress } from './zones.mjs';
import { stallTimer } from './stall-timer.mjs';

const dist = new URL('../../dist/', import.meta.url);
const { ZoneStore } = await import(new URL('zones/zone-store.js', dist));
const { prebuildTable, prebuildTableInSlices } = await import(new URL('server/fast-path.js', dist));
const { publishLoad } = await import(new URL('zones/reload.js', dist));
const { Runtime } = await import(new URL('state/runtime.js', dist));

const { values } = parseArgs({ options: { names: { type: 'string', default: '100000' } } });
const info = machine();
const dir = mkdtempSync(join(tmpdir(), 'sitedns-blocked-'));
const set = reloadZoneSet(dir, Number(values.names));
console.log(`machine: ${info.nproc} cores, node ${info.node}; load ${load()}; ${new Date().toISOString()}`);
console.log(`zone set: ${set.names} names; largest file ${Buffer.byteLength(set.text)} bytes`);

/** Runs `work` while a 1 ms timer measures the longest stall of this thread. */
async function stalls(work) {
  const timer = stallTimer();
  const started = performance.now();
  const result = await work();
  const total = performance.now() - started;
  const longest = timer.stop();
  return { result, total: Math.round(total), longest: Math.round(longest) };
}

// The machine's own noise: the longest stall while this thread only waits.
const idle = await stalls(() => new Promise((r) => setTimeout(r, 2000)));
console.log(`idle 2 s: longest stall ${idle.longest} ms`);
const store = new ZoneStore(dir);
const runtime = new Runtime();
const first = await stalls(() => store.load());
console.log(`first load: ${first.total} ms, longest stall ${first.longest} ms, ${first.result.compiledFiles} files compiled here`);
const table = await stalls(async () => prebuildTable(first.result.zoneSet));
console.log(`prebuilt table of the whole set at once: ${table.total} ms`);
const edits = [
  ['one error in the largest file', withError(set.text)],
  ['a valid edit of the largest file', withNewAddress(set.text)],
  ['nothing changed', undefined],
];
for (const [label, text] of edits) {
  if (text !== undefined) writeFileSync(set.file, text);
  const r = await stalls(() => publishLoad(store, runtime, { prebuild: prebuildTableInSlices }));
  console.log(
    `${label.padEnd(34)} load ${String(r.total).padStart(5)} ms, longest stall of this thread ${String(r.longest).padStart(5)} ms; ${r.result.slices.slices} slices, longest ${Math.round(r.result.slices.longestMs)} ms; compiled here: ${r.result.compiledFiles}; problems: ${r.result.problems.length}; new set: ${r.result.zoneSet !== first.result.zoneSet}`,
  );
}
await store.close();
rmSync(dir, { recursive: true, force: true });
