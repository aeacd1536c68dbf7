/**
 * A short, self-checking workload for memory checkers on the batched UDP addon: one socket with an
 * echo callback, 3,000 datagrams of 0..1500 bytes (slot 512: longer ones continue in the `over`
 * area and are answered with their first slot; empty ones are dropped in C), forced EAGAINs, a
 * bad reply length every 50 replies. Run it under valgrind:
 *   valgrind --error-exitcode=9 node bench/qps/batched-memcheck.mjs [bind address, default 127.0.0.1]
 * (0.0.0.0 exercises the wildcard socket's IP_PKTINFO control messages).
 */
import { createRequire } from 'node:module';
import dgram from 'node:dgram';
const addon = createRequire(import.meta.url)(new URL('../../native/udp-batch/build/Release/udp_batch.node', import.meta.url).pathname);
const { META_WORDS: W, MAX_DATAGRAM } = addon.constants();
const batch = 16, slot = 512;
const ab = new ArrayBuffer(batch*W*4 + 2*batch*slot + batch*(MAX_DATAGRAM - slot));
const meta = new Int32Array(ab, 0, batch*W);
const u8 = new Uint8Array(ab);
let k = 0;
const s = addon.open({ host: process.argv[2] ?? '127.0.0.1', port: 0, batch, slot, faultSendEagain: 5, sendTimeoutMs: 20 }, ab, (n) => {
  for (let i = 0; i < n; i++) {
    const len = Math.min(meta[i*W], slot); if (!len) continue;
    const inOff = batch*W*4 + i*slot, outOff = batch*W*4 + batch*slot + i*slot;
    u8.copyWithin(outOff, inOff, inOff + len);
    meta[i*W+1] = (k++ % 50 === 0) ? 9999 : len;
  }
  if (k % 97 === 0) throw new Error('x');
});
const c = dgram.createSocket('udp4');
let got = 0;
c.on('message', () => got++);
c.bind(0, '127.0.0.1', async () => {
  for (let i = 0; i < 3000; i++) {
    const size = [0, 1, 12, 100, 511, 512, 513, 1500][i % 8];
    c.send(Buffer.alloc(size, i & 255), s.port, '127.0.0.1');
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 1500));
  console.log('got', got, addon.stats(s.handle));
  addon.close(s.handle); c.close();
});
