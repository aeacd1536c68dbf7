/**
 * The current zones and state every answerer reads: one mutable holder, each field swapped by
 * one assignment (zone reloads swap `zones`, the state follower swaps `state`).
 */
import type { ZoneSet } from '../model/zone-model.js';
import { EMPTY_SNAPSHOT, type StateSnapshot } from './snapshot.js';

/** The mutable holder the server swaps zones and state into, each by one assignment. */
export class Runtime {
  zones: ZoneSet;
  state: StateSnapshot;
  constructor(zones: ZoneSet, state: StateSnapshot = EMPTY_SNAPSHOT) {
    this.zones = zones;
    this.state = state;
  }
}

/**
 * Calls `listener` with every value assigned to `runtime[field]` from now on, after the
 * assignment took effect. The state follower swaps snapshots, and every reload path (SIGHUP,
 * file watch, admin API) swaps zone sets, by that one assignment; answerers in other processes
 * or threads (cluster workers, UDP threads) must follow each one too.
 */
export function observeSwaps<K extends 'state' | 'zones'>(runtime: Runtime, field: K, listener: (value: Runtime[K]) => void): void {
  let current = runtime[field];
  Object.defineProperty(runtime, field, {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (value: Runtime[K]) => {
      current = value;
      listener(value);
    },
  });
}
