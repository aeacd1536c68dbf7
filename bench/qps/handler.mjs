#!/usr/bin/env node
/**
 * In-process cost of one query through the socket-free handler (no sockets): ns per query,
 * heap bytes allocated per query and GC counts, per name kind, prebuilt fast path on and off.
 * Needs `npm run build`. Run: node --expose-gc bench/qps/handler.mjs [--n 1000000] [--repeat 5]
 * (ns/query is the fastest of the repeats; GCs and heap growth are per N queries, averaged).
 *
 * Rows: `prebuilt` and `general` (the fast path off) with no observer; `observed` = prebuilt with
 * the observer `serve` installs (admin/query-metrics.ts: per-query counters, latency on a sample),
 * which is what a query really costs in the server. Then the same zone signed (bench/dnssec's
 * keys), its NXDOMAIN asked with DO=0 and DO=1 (`nx-do0`, `nx-do1`; NSEC, and `nx3-do1` with
 * NSEC3), each query for another name (`nopeNNNN`), on `signed` (prebuilt) and `signed-gen`.
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
import { ZONE } from './zones.mjs';
import { benchSigning } from '../dnssec/keys.mjs';

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

const signing = benchSigning();
const signed = { nsec: benchZones(signing, 'nsec'), nsec3: benchZones(signing, 'nsec3') };
// NXDOMAIN of the signed zone: `nope` and four digits, a new name per query (the digits cycle).
const NX = [
  { kind: 'nx-do0', zones: signed.nsec, dnssecOk: false },
  { kind: 'nx-do1', zones: signed.nsec, dnssecOk: true },
  { kind: 'nx3-do1', zones: signed.nsec3, dnssecOk: true },
];
const nxName = `nope0000.${ZONE}`;
const DIGITS = 17; // offset of the first digit: header (12), length byte, "nope"

const runs = [
  ...['prebuilt', 'observed', 'general'].map((path) => ({ path, zones, kinds: KINDS.map((k) => ({ ...k, dnssecOk: false, vary: false })) })),
  ...['signed', 'signed-gen'].map((path) => ({ path, kinds: NX.map((k) => ({ ...k, name: nxName, vary: true })) })),
];

const results = [];
for (const run of runs) {
  const path = run.path;
  const prebuilt = path !== 'general' && path !== 'signed-gen';
  const observer = path === 'observed' ? new QueryMetrics() : {};
  const ctx = new PeerContext('udp');
  ctx.setBytes(4, Uint8Array.from([192, 0, 2, 1]), 0, 40000);
  const out = Buffer.allocUnsafe(1232);
  const handlers = new Map();
  for (const { kind, name, dnssecOk, vary, zones: kindZones } of run.kinds) {
    const set = kindZones ?? run.zones;
    if (!handlers.has(set)) handlers.set(set, new Handler(new Runtime(set), undefined, observer, { prebuilt }));
    const handler = handlers.get(set);
    const q = queryBytes(name, true, dnssecOk);
    const answeredBefore = handler.answeredBy.prebuilt;
    const next = (i) => {
      if (!vary) return;
      q[DIGITS] = 0x30 + (i % 10);
      q[DIGITS + 1] = 0x30 + (((i / 10) | 0) % 10);
      q[DIGITS + 2] = 0x30 + (((i / 100) | 0) % 10);
      q[DIGITS + 3] = 0x30 + (((i / 1000) | 0) % 10);
    };
    for (let i = 0; i < 20000; i++) {
      next(i);
      handler.handleInto(q, ctx, out); // warm up (and build)
    }
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
        next(i);
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
    results.push({ path, kind, nsPerQuery: Math.round((best * 1e6) / N), gcs: Math.round(gcs / R), heapGrowthBytesPerQuery: +(growth / R).toFixed(2), prebuiltAnswers: handler.answeredBy.prebuilt - answeredBefore });
  }
  observer.close?.();
}
if (values.json) console.log(JSON.stringify(results));
else {
  console.log(`handler.handleInto, ${N} queries per row (EDNS, UDP), fastest of ${R}, node ${process.version}`);
  console.log('path       kind       ns/query  GCs  heap growth B/query');
  for (const r of results) console.log(`${r.path.padEnd(10)} ${r.kind.padEnd(10)} ${String(r.nsPerQuery).padStart(8)}  ${String(r.gcs).padStart(3)}  ${r.heapGrowthBytesPerQuery}`);
}
