#!/usr/bin/env node
/**
 * bench/qps/floor/blocking-loop/loop.mjs (#8): sitedns's handler (bench/qps's zones, the query
 * metrics observer `serve` installs, prebuilt answers), answered per batch by the batched UDP
 * path's own code (`batchAnswerer`, src/server/udp-batched.ts), driven by a JavaScript loop that BLOCKS
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
  const { Handler, QueryMetrics, ResponseRateLimiter, Runtime, benchZones } = await import('../../in-process.mjs');
  // The batched path's own per-batch code and buffer layout (the C side mirrors LAYOUT).
  const { batchAnswerer, LAYOUT } = await import('../../../../dist/server/udp-batched.js');
  const BATCH = 64; // blocking_loop.c's BATCH and SLOT
  const SLOT = 2048;
  const handler = new Handler(new Runtime(benchZones()), undefined, new QueryMetrics(), {});
  const buffer = new ArrayBuffer(BATCH * (LAYOUT.META_WORDS * 4 + 2 * SLOT));
  // Response rate limiting with serve's defaults (on; dnsperf on loopback is exempt), as serve.
  const answer = batchAnswerer(handler, buffer, BATCH, SLOT, new ResponseRateLimiter());
  const socket = addon.open(workerData.port, buffer);
  parentPort.postMessage('ready');
  for (;;) {
    const count = addon.receive(socket);
    answer(count);
    addon.send(socket, count);
  }
}
