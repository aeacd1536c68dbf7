#!/usr/bin/env node
/**
 * In-process cost of one query through the socket-free handler (no sockets): ns per query,
 * heap bytes allocated per query and GC counts, per name kind, prebuilt fast path on and off.
 * Needs `npm run build`. Run: node --expose-gc bench/qps/handler.mjs [--n 1000000] [--repeat 5]
 * (ns/query is the fastest of the repeats; GCs and heap growth are per N queries, averaged).
 *
 * Rows: `prebuilt` and `general` (the fast path off) with no observer; `observed` = prebuilt with
 * the observer `serve` installs (admin/query-metrics.ts: per-query counters, latency on a sample),
 * which is what a query really costs in the server.
 *
 * Allocation is measured as the growth of V8's total allocated bytes between two points
 * (v8.getHeapStatistics().total_allocated_bytes is not exposed in Node 20, so: heapUsed after
 * a forced GC is flat, and we count scavenges + the young-generation bytes they freed via
 * PerformanceObserver 'gc' entries). Zero scavenges over 1e6 queries = no per-query garbage.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { KINDS } from './zones.mjs';
import { Handler, PeerContext, QueryMetrics, Runtime, benchZones, queryBytes } from './in-process.mjs';

const { values } = parseArgs({ options: { n: { type: 'string', default: '1000000' }, repeat: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
const N = Number(values.n);
const R = Number(values.repeat);
const zones = benchZones();

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
for (const path of ['prebuilt', 'observed', 'general']) {
  const prebuilt = path !== 'general';
  const observer = path === 'observed' ? new QueryMetrics() : {};
  const handler = new Handler(new Runtime(zones), undefined, observer, { prebuilt });
  const ctx = new PeerContext('udp');
  ctx.setBytes(4, Uint8Array.from([192, 0, 2, 1]), 0, 40000);
  const out = Buffer.allocUnsafe(1232);
  for (const { kind, name } of KINDS) {
    const q = queryBytes(name, true);
    for (let i = 0; i < 20000; i++) handler.handleInto(q, ctx, out); // warm up (and build)
    // The fastest of R timed runs: this VM's single-thread speed swings by half between runs.
    let best = Infinity;
    let gcs = 0;
    let growth = 0;
    for (let rep = 0; rep < R; rep++) {
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
      best = Math.min(best, ms);
      gcs += gcCount;
      growth += (heapAfter - heapBefore) / N;
    }
    results.push({ path, kind, nsPerQuery: Math.round((best * 1e6) / N), gcs: Math.round(gcs / R), heapGrowthBytesPerQuery: +(growth / R).toFixed(2), prebuiltAnswers: handler.answeredBy.prebuilt });
  }
  observer.close?.();
}
if (values.json) console.log(JSON.stringify(results));
else {
  console.log(`handler.handleInto, ${N} queries per row (EDNS, UDP), fastest of ${R}, node ${process.version}`);
  console.log('path      kind       ns/query  GCs  heap growth B/query');
  for (const r of results) console.log(`${r.path.padEnd(9)} ${r.kind.padEnd(10)} ${String(r.nsPerQuery).padStart(8)}  ${String(r.gcs).padStart(3)}  ${r.heapGrowthBytesPerQuery}`);
}
