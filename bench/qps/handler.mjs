#!/usr/bin/env node
/**
 * In-process cost of one query through the socket-free handler (no sockets): ns per query,
 * heap bytes allocated per query and GC counts, per name kind, prebuilt fast path on and off.
 * Needs `npm run build`. Run: node --expose-gc bench/qps/handler.mjs [--n 1000000]
 *
 * Allocation is measured as the growth of V8's total allocated bytes between two points
 * (v8.getHeapStatistics().total_allocated_bytes is not exposed in Node 20, so: heapUsed after
 * a forced GC is flat, and we count scavenges + the young-generation bytes they freed via
 * PerformanceObserver 'gc' entries). Zero scavenges over 1e6 queries = no per-query garbage.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { KINDS, sitednsZone } from './zones.mjs';

const { values } = parseArgs({ options: { n: { type: 'string', default: '1000000' }, json: { type: 'boolean', default: false } } });
const N = Number(values.n);
const dist = new URL('../../dist/', import.meta.url);
const { Handler, PeerContext, Runtime } = await import(new URL('server/handler.js', dist));
const { parseZoneText } = await import(new URL('config/load.js', dist));
const { compileZoneFiles, makeZoneSet } = await import(new URL('config/compile.js', dist));

const zones = makeZoneSet(compileZoneFiles([parseZoneText(sitednsZone(), 'bench.yaml')]).zones);

function queryBytes(name, edns) {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  return Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0, ...labels, 0, 0, 1, 0, 1, ...(edns ? [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0] : [])]);
}

let gcCount = 0;
let gcKinds = {};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    const kind = e.detail?.kind ?? e.kind;
    gcKinds[kind] = (gcKinds[kind] ?? 0) + 1;
  }
}).observe({ entryTypes: ['gc'] });

const results = [];
for (const prebuilt of [true, false]) {
  const handler = new Handler(new Runtime(zones), undefined, {}, { prebuilt });
  const ctx = new PeerContext('udp');
  ctx.setBytes(4, Uint8Array.from([192, 0, 2, 1]), 0, 40000);
  const out = Buffer.allocUnsafe(1232);
  for (const { kind, name } of KINDS) {
    const q = queryBytes(name, true);
    for (let i = 0; i < 20000; i++) handler.handleInto(q, ctx, out); // warm up (and build)
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 10));
    gcCount = 0;
    gcKinds = {};
    const heapBefore = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    let bytes = 0;
    for (let i = 0; i < N; i++) {
      q[1] = i & 0xff; // a new ID each time, as on the wire
      bytes += handler.handleInto(q, ctx, out);
    }
    const ms = performance.now() - t0;
    const heapAfter = process.memoryUsage().heapUsed;
    await new Promise((r) => setTimeout(r, 10)); // let gc entries arrive
    if (bytes <= 0) throw new Error('no answers');
    results.push({ path: prebuilt ? 'prebuilt' : 'general', kind, nsPerQuery: Math.round((ms * 1e6) / N), gcs: gcCount, heapGrowthBytesPerQuery: +((heapAfter - heapBefore) / N).toFixed(2), prebuiltAnswers: handler.answeredBy.prebuilt });
  }
}
if (values.json) console.log(JSON.stringify(results));
else {
  console.log(`handler.handleInto, ${N} queries per row (EDNS, UDP), node ${process.version}`);
  console.log('path      kind       ns/query  GCs  heap growth B/query');
  for (const r of results) console.log(`${r.path.padEnd(9)} ${r.kind.padEnd(10)} ${String(r.nsPerQuery).padStart(8)}  ${String(r.gcs).padStart(3)}  ${r.heapGrowthBytesPerQuery}`);
}
