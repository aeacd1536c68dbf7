/**
 * What DNS cookies cost per query, in process (`npm run build` first): a Site Name asked from
 * prebuilt bytes with no cookie, with a client cookie only (a server cookie made: one SipHash),
 * and with a valid server cookie (checked: one SipHash, and echoed). ~10 s.
 *
 *   node bench/qps/cookies.mjs [--n 200000] [--repeat 5]
 */
import { parseArgs } from 'node:util';
import { Handler, PeerContext, Runtime, benchZones, queryBytes } from './in-process.mjs';

const { ServerCookies } = await import(new URL('../../dist/dns/cookies.js', import.meta.url));
const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' }, repeat: { type: 'string', default: '5' } } });
const N = Number(values.n);
const R = Number(values.repeat);

const handler = new Handler(new Runtime(benchZones()), undefined, {}, { cookies: new ServerCookies(['e5e973e5a6b2a43f48e7dc849e37bfcf']) });
const ctx = new PeerContext('udp');
ctx.setBytes(4, Uint8Array.from([192, 0, 2, 1]), 0, 40000);
const out = Buffer.allocUnsafe(1232);

/** The Site Name's query with `options` in its OPT. */
function withOptions(options) {
  const q = Buffer.concat([queryBytes('boston.bench.test', true), options]);
  q.writeUInt16BE(options.length, q.length - options.length - 2);
  return q;
}
const clientOnly = withOptions(Buffer.from('000a00080102030405060708', 'hex'));
const n = handler.handleInto(clientOnly, ctx, out);
const cases = [
  ['no cookie', withOptions(Buffer.alloc(0))],
  ['client cookie', clientOnly],
  ['valid server cookie', withOptions(Buffer.from(out.subarray(n - 28, n)))],
];
console.log('query                   ns/query (fastest of ' + R + ')');
for (const [label, q] of cases) {
  for (let i = 0; i < 20000; i++) handler.handleInto(q, ctx, out);
  let best = Infinity;
  for (let rep = 0; rep < R; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) handler.handleInto(q, ctx, out);
    best = Math.min(best, ((performance.now() - t0) * 1e6) / N);
  }
  console.log(`${label.padEnd(24)}${best.toFixed(0)}`);
}
