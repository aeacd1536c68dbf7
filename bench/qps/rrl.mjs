#!/usr/bin/env node
/**
 * What response rate limiting adds per UDP query, in process: handleInto alone, then
 * handleInto plus the batched path's RRL step (rrl.checkBytes) for clients spread over 1,000
 * IPv4 /24s, and over 1,000 IPv6 /56s. bench/qps cannot show this: dnsperf runs on loopback,
 * which is exempt, and a flood from one network is exactly what RRL exists to limit.
 * Needs `npm run build`. Run: node bench/qps/rrl.mjs [--n 1000000] [--repeat 5] [--json]
 */
import { parseArgs } from 'node:util';
import { KINDS } from './zones.mjs';
import { Handler, PeerContext, ResponseRateLimiter, Runtime, benchZones, queryBytes } from './in-process.mjs';

const { values } = parseArgs({ options: { n: { type: 'string', default: '1000000' }, repeat: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
const N = Number(values.n);
const R = Number(values.repeat);
const zones = benchZones();
const handler = new Handler(new Runtime(zones));
// A rate no bench reaches: every response is counted and sent, none limited.
const rrl = new ResponseRateLimiter({ ratePerSecond: 1e12 });
const ctx = new PeerContext('udp');
const out = Buffer.allocUnsafe(1232);
const query = queryBytes(KINDS.find((k) => k.kind === 'site').name, true);
const clients = {
  4: Array.from({ length: 1000 }, (_, i) => Uint8Array.from([10 + (i % 200), i & 0xff, (i * 7) & 0xff, 1 + (i % 250)])),
  6: Array.from({ length: 1000 }, (_, i) => Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, i >> 8, i & 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
};

function measure(family, withRrl) {
  const list = clients[family];
  let best = Infinity;
  for (let rep = 0; rep < R; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const bytes = list[i % 1000];
      ctx.setBytes(family, bytes, 0, 40000);
      const n = handler.handleInto(query, ctx, out);
      if (withRrl && rrl.checkBytes(family, bytes, 0, out, n) !== 'send') throw new Error('limited');
    }
    best = Math.min(best, performance.now() - t0);
  }
  return Math.round((best * 1e6) / N);
}

const rows = [];
for (const family of [4, 6]) {
  const alone = measure(family, false);
  const limited = measure(family, true);
  rows.push({ family, handlerNs: alone, withRrlNs: limited, rrlNs: limited - alone });
}
if (values.json) console.log(JSON.stringify(rows));
else {
  console.log(`Site Name query, ${N} per row, fastest of ${R}, node ${process.version}`);
  console.log('client    handleInto ns   + RRL ns   RRL step ns');
  for (const r of rows) console.log(`IPv${r.family}      ${String(r.handlerNs).padStart(12)} ${String(r.withRrlNs).padStart(10)} ${String(r.rrlNs).padStart(13)}`);
}
