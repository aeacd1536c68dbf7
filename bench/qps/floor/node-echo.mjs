#!/usr/bin/env node
/**
 * bench/qps/floor/node-echo.mjs (#8): sitedns's batched UDP transport with no DNS logic, to
 * measure the floor under bench/qps/cpu.mjs. The same addon, shared buffer and event loop as
 * `serve --udp-path batched`, but the batch callback only copies each query to its reply slot
 * and sets QR: what a Node.js process costs per query before any DNS work is done.
 *
 *   node bench/qps/floor/node-echo.mjs <port> <processes>
 *
 * Needs `npm run build` (it loads the addon through dist/server/udp-batched.js). Each process
 * opens its own SO_REUSEPORT socket, as each `serve` worker does; the first forks the others
 * and stops them when it stops.
 */
import { fork } from 'node:child_process';
import { loadAddon, LAYOUT, DEFAULT_BATCH, DEFAULT_SLOT } from '../../../dist/server/udp-batched.js';

const [port, processes = '1', role = 'first'] = process.argv.slice(2);
const addon = loadAddon();
if (typeof addon === 'string') {
  console.error(addon);
  process.exit(2);
}
const children = [];
if (role === 'first') {
  for (let i = 1; i < Number(processes); i++) children.push(fork(process.argv[1], [port, processes, 'child'], { stdio: 'inherit' }));
}
const { META_WORDS, M_IN_LEN, M_OUT_LEN } = LAYOUT;
const batch = DEFAULT_BATCH;
const slot = DEFAULT_SLOT;
const buffer = new ArrayBuffer(batch * META_WORDS * 4 + 2 * batch * slot);
const meta = new Int32Array(buffer, 0, batch * META_WORDS);
const bytes = new Uint8Array(buffer);
const inBase = batch * META_WORDS * 4;
const outBase = inBase + batch * slot;
const opened = addon.open({ host: '127.0.0.1', port: Number(port), batch, slot, reusePort: 1 }, buffer, (count) => {
  for (let i = 0; i < count; i++) {
    const length = meta[i * META_WORDS + M_IN_LEN];
    if (length < 12) continue;
    bytes.copyWithin(outBase + i * slot, inBase + i * slot, inBase + i * slot + length);
    bytes[outBase + i * slot + 2] |= 0x80; // QR
    meta[i * META_WORDS + M_OUT_LEN] = length;
  }
});
const stop = () => {
  addon.close(opened.handle);
  for (const child of children) child.kill('SIGTERM');
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (role === 'first') console.log(`node echo ready on port ${opened.port} (${processes} processes)`);
