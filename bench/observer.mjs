#!/usr/bin/env node
/**
 * Per-query cost of metrics: Handler.handle with no observer, with the QueryMetrics observer
 * sitedns uses (tallies in typed arrays, flushed at scrape), and with a naive observer that calls
 * prom-client directly per query (for comparison). Socket-free, one core.
 *
 *   npm run build && node bench/observer.mjs [queries-per-round=400000] [rounds=7]
 *
 * Prints the median CPU ns/query of each variant and the observer's added cost. Results and the
 * machine's load: docs/metrics.md ("What metrics cost per query").
 */
import { loadZoneDirectory } from '../dist/config/load.js';
import { compileZoneFiles, makeZoneSet } from '../dist/config/compile.js';
import { Handler } from '../dist/server/handler.js';
import { Runtime } from '../dist/state/runtime.js';
import { QueryMetrics } from '../dist/admin/query-metrics.js';
import { queriesTotal, renderMetrics } from '../dist/metrics/definitions.js';
import { Histogram, Registry } from 'prom-client';
import { loadavg } from 'node:os';

const N = Number(process.argv[2] ?? 400_000);
const ROUNDS = Number(process.argv[3] ?? 7);

const loaded = loadZoneDirectory(new URL('../zones/', import.meta.url).pathname);
const zones = makeZoneSet(compileZoneFiles(loaded.files).zones);

function q(name, type = 1) {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  return Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, type, 0, 1])]);
}
const queries = [q('boston.app.example.com'), q('app.example.com'), q('mail.app.example.com'), q('nope.app.example.com'), q('app.example.com', 28)];
const ctx = { transport: 'udp', clientAddress: '192.0.2.1' };

const naiveRegistry = new Registry();
const naiveLatency = new Histogram({ name: 'naive_seconds', help: 'x', labelNames: ['transport'], buckets: [0.00001, 0.00005, 0.0001, 0.001], registers: [naiveRegistry] });
const rcodes = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const naive = {
  timeEvery: 1, // a naive design times every query
  onQuery(ev) {
    queriesTotal.inc({ zone: ev.zone, qtype: String(ev.qtype), rcode: rcodes[ev.rcode] ?? 'x', transport: ev.transport });
    naiveLatency.observe({ transport: ev.transport }, (performance.now() - ev.startedAt) / 1000);
  },
};

const variants = {
  'no observer': new Handler(new Runtime(zones)),
  'QueryMetrics (sitedns)': new Handler(new Runtime(zones), undefined, new QueryMetrics()),
  'prom-client per query (naive)': new Handler(new Runtime(zones), undefined, naive),
};

// CPU time of this process, not wall time: on a machine shared with other work (other builds,
// tests) wall time mostly measures waiting for a core, CPU time what a query costs.
function round(handler) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) handler.handle(queries[i % queries.length], ctx);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / N;
}

for (const h of Object.values(variants)) round(h); // warm up
const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) for (const [k, h] of Object.entries(variants)) results[k].push(round(h));
await renderMetrics(); // the flush path runs too

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(results['no observer']);
console.log(`node ${process.version}, ${N} queries x ${ROUNDS} rounds, loadavg ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const [k, xs] of Object.entries(results)) {
  const m = median(xs);
  console.log(`${k.padEnd(32)} ${m.toFixed(0).padStart(6)} ns CPU/query  (+${(m - base).toFixed(0)} ns)`);
}
