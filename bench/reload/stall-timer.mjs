/**
 * The longest time (ms) this thread's event loop went without running a 1 ms timer, from the call
 * until `stop()`: how long the thread was blocked (waiting for a CPU included). Shared by the
 * reload benchmarks and the tests that bound a reload's stall.
 */
export function stallTimer() {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  return {
    /** Stops the timer; the longest stall, the time since the last tick included. */
    stop() {
      clearInterval(timer);
      return Math.max(longest, performance.now() - last);
    },
  };
}
