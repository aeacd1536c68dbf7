/**
 * Preloaded into `sitedns serve` by bench/reload/gaps.mjs (node --import): measures, inside the
 * process, how long its main thread's event loop was blocked (perf_hooks.monitorEventLoopDelay:
 * a timer every 10 ms, and how late it ran). SIGUSR2 writes the longest delay since the last
 * SIGUSR2 (or the start) as one JSON line to stderr and starts a fresh measurement. On a shared
 * machine this includes waiting for a CPU, as the outside measurements do, but not the network
 * or the client's own stalls; a window without a reload gives the machine's own noise. The line
 * also says how long the main thread ran and how long it waited, runnable, for a CPU in the
 * window (Linux /proc/thread-self/schedstat): time another process or thread had the CPU.
 */
import { readFileSync, writeSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  /** [ms on a CPU, ms waiting for one] of this thread since it started (zeros where unknown). */
  const schedstat = () => {
    try {
      return readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').slice(0, 2).map((ns) => Number(ns) / 1e6);
    } catch {
      return [0, 0];
    }
  };
  const ms = (x) => Math.round(x * 100) / 100;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let since = schedstat();
  process.on('SIGUSR2', () => {
    const now = schedstat();
    writeSync(2, `${JSON.stringify({ msg: 'event loop delay', maxMs: ms(delay.max / 1e6), p99Ms: ms(delay.percentile(99) / 1e6), ranMs: ms(now[0] - since[0]), waitedMs: ms(now[1] - since[1]) })}\n`);
    delay.reset();
    since = now;
  });
}
