/**
 * TCP abuse, the long version: UDP throughput of one `sitedns serve` alone, then while a
 * separate process holds N idle TCP connections (default 5,000 from 100 loopback addresses) and
 * slow-drip clients keep reconnecting. Prints JSON; exits 1 if any UDP query went unanswered.
 *
 *   npm run build
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import bench/soak/tcp-abuse.ts [--connections 5000] [--queries 200000] [--drips 50]
 */
import net from 'node:net';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { fdLimits, holdConnections, openCount, startServe, udpLoad } from './procs.js';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '5000' }, queries: { type: 'string', default: '200000' }, drips: { type: 'string', default: '50' } } });
const connections = Number(values.connections);
const queries = Number(values.queries);
const limits = fdLimits();
const fds = Math.min(limits.hard, connections + 2000);
const server = await startServe(['--zones', 'zones/', '--listen', '127.0.0.1:0', '--tcp-idle-timeout', '600s', '--tcp-query-timeout', '2s', '--tcp-max-connections', String(connections + 500), '--tcp-max-per-network', String(connections)], fds);
const result: Record<string, unknown> = { connections, queries, fdLimits: limits, loadavgStart: loadavg().map((x) => x.toFixed(2)) };
let failed = false;
try {
  const baseline = await udpLoad(server.port, queries);
  result.udpAlone = { ...baseline, qps: Math.round(baseline.answered / baseline.seconds) };
  const holder = await holdConnections(server.port, connections, 100, 'idle-after-query', fds);
  result.held = holder.held;
  // Slow-drip clients: one byte every 100 ms; each is cut at the 2 s query deadline and reconnects.
  let dripsCut = 0;
  let stop = false;
  const frame = Buffer.from('0021' + '0000010000010000000000000' + '46d61696c03617070076578616d706c6503636f6d0000010001', 'hex');
  const dripper = async (i: number) => {
    while (!stop) {
      const s = net.connect({ port: server.port, host: '127.0.0.1', localAddress: `127.0.1.${1 + (i % 250)}` });
      s.on('error', () => {});
      let closed = false;
      s.on('close', () => (closed = true));
      for (let b = 0; b < frame.length - 1 && !closed && !stop; b++) {
        s.write(frame.subarray(b, b + 1));
        await new Promise((r) => setTimeout(r, 100));
      }
      if (closed) dripsCut++;
      s.destroy();
    }
  };
  const drips = Array.from({ length: Number(values.drips) }, (_, i) => dripper(i));
  const loaded = await udpLoad(server.port, queries);
  result.udpWhileHeld = { ...loaded, qps: Math.round(loaded.answered / loaded.seconds) };
  result.stillOpen = await openCount(holder);
  stop = true;
  await Promise.all(drips);
  result.slowDripClientsCut = dripsCut;
  result.serverAlive = server.proc.exitCode === null;
  failed = baseline.lost + loaded.lost > 0 || server.proc.exitCode !== null;
  await holder.stop();
} finally {
  await server.stop();
}
result.loadavgEnd = loadavg().map((x) => x.toFixed(2));
console.log(JSON.stringify(result, null, 2));
process.exit(failed ? 1 : 0);
