/**
 * Preloaded into `sitedns serve` by bench/reload/gaps.mjs (node --import): measures, inside the
 * process, how long its main thread went without a turn of its event loop. SIGUSR2 writes what
 * it saw since the last SIGUSR2 (or the start) as one JSON line to stderr and starts afresh:
 *
 * - the longest event-loop delay (perf_hooks.monitorEventLoopDelay: a timer every 10 ms and how
 *   late it ran). On a shared machine this includes waiting for a CPU, as the outside
 *   measurements do, but not the network or the client's own stalls;
 * - the most CPU time the thread used between two runs of a 5 ms timer: the longest it computed
 *   without a turn of its event loop (plus up to a tick of ordinary work), which waiting for a
 *   CPU does not inflate;
 * - how long the thread ran and how long it waited, runnable, for a CPU (Linux
 *   /proc/thread-self/schedstat): time another process or thread had the CPU.
 *
 * (A UDP thread of `serve --udp-threads` turns its event loop only every 512 batches while it
 * answers, by design, so the same measure there would count answering; its loads log the
 * longest slice instead: 'zones compiled', sliceMs.)
 */
import { readFileSync, writeSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

/** [ms on a CPU, ms waiting for one] of this thread since it started (zeros where unknown). */
function schedstat() {
  try {
    return readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').slice(0, 2).map((ns) => Number(ns) / 1e6);
  } catch {
    return [0, 0];
  }
}
const ms = (x) => Math.round(x * 100) / 100;

/** The CPU-between-turns measurement of this thread; `report()` returns it and starts afresh. */
function cpuBetweenTurns() {
  let since = schedstat();
  let tick = since[0];
  let most = 0;
  setInterval(() => {
    const ran = schedstat()[0];
    most = Math.max(most, ran - tick);
    tick = ran;
  }, 5).unref();
  return () => {
    const now = schedstat();
    const seen = { cpuBetweenTicksMs: ms(most), ranMs: ms(now[0] - since[0]), waitedMs: ms(now[1] - since[1]) };
    since = now;
    most = 0;
    return seen;
  };
}

if (isMainThread) {
  const report = cpuBetweenTurns();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  process.on('SIGUSR2', () => {
    writeSync(2, `${JSON.stringify({ msg: 'event loop delay', maxMs: ms(delay.max / 1e6), p99Ms: ms(delay.percentile(99) / 1e6), ...report() })}\n`);
    delay.reset();
  });
}
