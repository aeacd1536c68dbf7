/**
 * Undrain records: an undrain leaves `<prefix>undrained <site key> -> {"at","until"}` (keys.ts)
 * in the same step that deletes the forced state, so a nameserver that still holds the ended
 * drain (cut off meanwhile, or started from an older state file) can tell "undrained" from
 * "lost" and does not write it back (docs/state.md, "What survives what"). A record outlives
 * every drain it can overrule: a drain set before it lasts at most MAX_DRAIN_MS, so it is kept
 * that long and pruned after its `until`.
 */
import { MAX_DRAIN_MS } from './service.js';
import type { ForcedState, Undrained } from './types.js';

export function undrainedAt(now: number): Undrained {
  return { at: now, until: now + MAX_DRAIN_MS };
}

/** Whether writing `forced` back is overruled: the site was undrained at or after it was set. */
export function undrainedSince(record: Undrained | undefined, forced: ForcedState): boolean {
  return record !== undefined && record.at >= forced.at;
}

/** Records past their `until`: pruned with every undrain. */
export function prunable(record: Undrained, now: number): boolean {
  return record.until < now;
}
