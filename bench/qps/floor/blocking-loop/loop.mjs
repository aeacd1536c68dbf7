#!/usr/bin/env node
/**
 * bench/qps/floor/blocking-loop/loop.mjs (#8): sitedns's handler (bench/qps's zones, the query
 * metrics observer `serve` installs, prebuilt answers) driven by a JavaScript loop that BLOCKS
 * in recvmmsg on worker threads, one socket per thread (SO_REUSEPORT), instead of being called
 * by Node's event loop once per batch. A prototype for bench/qps/cpu.mjs, not a server: no
 * state updates, reloads, TCP or metrics endpoint reach these threads, and a thread blocked in
 * recvmmsg cannot be stopped, so SIGTERM ends the process with SIGKILL.
 *
 *   node bench/qps/floor/blocking-loop/loop.mjs <addon.node> <port> <threads>
 */
import { createRequire } from 'node:module';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

if (isMainThread) {
  const [addonPath, port, threads = '1'] = process.argv.slice(2);
  let ready = 0;
  for (let i = 0; i < Number(threads); i++) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { addonPath, port: Number(port) } });
    worker.on('message', () => {
      if (++ready === Number(threads)) console.log(`blocking loop ready on port ${port} (${threads} threads)`);
    });
    worker.on('error', (error) => {
      console.error(error);
      process.exit(1);
    });
  }
  process.on('SIGTERM', () => process.kill(process.pid, 'SIGKILL'));
} else {
  const addon = createRequire(import.meta.url)(workerData.addonPath);
  const { Handler, PeerContext, QueryMetrics, Runtime, benchZones } = await import('../../in-process.mjs');
  const handler = new Handler(new Runtime(benchZones()), undefined, new QueryMetrics(), {});
  const ctx = new PeerContext('udp');
  const BATCH = 64;
  const SLOT = 2048;
  const META_WORDS = 8;
  const buffer = new ArrayBuffer(BATCH * (META_WORDS * 4 + 2 * SLOT));
  const meta = new Int32Array(buffer, 0, BATCH * META_WORDS);
  const metaBytes = new Uint8Array(buffer, 0, BATCH * META_WORDS * 4);
  const inViews = [];
  const outViews = [];
  for (let i = 0; i < BATCH; i++) {
    inViews.push(Buffer.from(buffer, BATCH * META_WORDS * 4 + i * SLOT, SLOT));
    outViews.push(Buffer.from(buffer, BATCH * META_WORDS * 4 + (BATCH + i) * SLOT, SLOT));
  }
  const socket = addon.open(workerData.port, buffer);
  parentPort.postMessage('ready');
  for (;;) {
    const count = addon.receive(socket);
    for (let i = 0; i < count; i++) {
      const m = i * META_WORDS;
      if (meta[m] <= 0) continue;
      ctx.setBytes(4, metaBytes, (m + 4) * 4, meta[m + 2]); // as src/server/udp-batched.ts does
      const n = handler.handleInto(inViews[i], ctx, outViews[i], meta[m]);
      meta[m + 1] = n > 0 ? n : 0;
    }
    addon.send(socket, count);
  }
}
