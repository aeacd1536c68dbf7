/**
 * Long work cut into slices, so the thread that runs it keeps answering. The work is a generator
 * that yields at points where it may pause (every few hundred names); `runInSlices` runs it until
 * a slice has taken SLICE_MS, then gives the event loop a turn (setImmediate: queries, probe
 * results and timers waiting meanwhile run first), and goes on. `runAtOnce` runs the same steps
 * without pausing, for callers that need the result now (`sitedns check`, a test's table).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Work that yields where it may pause and returns its result. */
export type Steps<T> = Generator<void, T, void>;

/** The longest a slice runs before the event loop gets a turn: well under the 50 ms an answer may wait. */
export const SLICE_MS = 5;

/** What a sliced run cost: its slices and the longest of them (ms). */
export interface SliceStats {
  slices: number;
  longestMs: number;
}

export function runAtOnce<T>(steps: Steps<T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/** Runs `steps` in slices of about SLICE_MS; `stats`, if given, gets each slice counted. */
export async function runInSlices<T>(steps: Steps<T>, stats?: SliceStats): Promise<T> {
  for (;;) {
    const started = performance.now();
    let next = steps.next();
    while (!next.done && performance.now() - started < SLICE_MS) next = steps.next();
    if (stats !== undefined) {
      stats.slices++;
      stats.longestMs = Math.max(stats.longestMs, performance.now() - started);
    }
    if (next.done) return next.value;
    await nextTurn();
  }
}

/** Pause points every `every` calls: `if (pause()) yield;` in a loop yields once per `every` rounds. */
export function pauseEvery(every: number): () => boolean {
  let count = 0;
  return () => ++count % every === 0;
}
