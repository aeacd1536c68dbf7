#!/usr/bin/env node
/**
 * bench/qps/floor/node-echo.mjs: sitedns's batched UDP transport with no DNS logic, to
 * measure the floor under bench/qps/cpu.mjs. `listenBatchedUdp`, the transport of
 * `serve --udp-path batched`, given a handler that only copies each query to its reply slot and
 * sets QR: what a Node.js process costs per query before any DNS work is done.
 *
 *   node bench/qps/floor/node-echo.mjs <port> <processes>
 *
 * Needs `npm run build`. Each process opens its own SO_REUSEPORT socket, as each `serve` UDP thread
 * does; the first forks the others and stops them when it stops.
 */
import { fork } from 'node:child_process';
import { listenBatchedUdp } from '../../../dist/server/udp-batched.js';

const [port, processes = '1', role = 'first'] = process.argv.slice(2);
const children = [];
if (role === 'first') {
  for (let i = 1; i < Number(processes); i++) children.push(fork(process.argv[1], [port, processes, 'child'], { stdio: 'inherit' }));
}
// A "handler" that answers every query with itself, QR set: the transport's whole contract.
const echo = {
  handleInto(query, ctx, out, length) {
    if (length < 12) return 0;
    query.copy(out, 0, 0, length);
    out[2] |= 0x80; // QR
    return length;
  },
};
const listener = await listenBatchedUdp(echo, '127.0.0.1', Number(port));
const stop = async () => {
  await listener.close();
  for (const child of children) child.kill('SIGTERM');
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (role === 'first') console.log(`node echo ready on port ${listener.port} (${processes} processes)`);
