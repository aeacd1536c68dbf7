/**
 * What an answerer answers from right now: the compiled zones and the site-state snapshot. Each
 * is replaced as a whole by one assignment (a query reads the old value or the new one, never
 * half of each), and only through `publishZones` / `publishState`, which then tell every
 * subscriber. The handler reads `zones` and `state` as plain fields, once per query.
 *
 * Who publishes: the reload path (zones/reload.ts) publishes zones whatever triggered the load;
 * the state follower (state/follower.ts), or the main thread's messages in a UDP thread,
 * publishes snapshots. Who subscribes: the answerers in other threads (to
 * receive each zone set and snapshot), the prober (to probe the sites of the zones served).
 */
import type { ZoneSet } from '../model/zone-model.js';
import { EMPTY_SNAPSHOT, type StateSnapshot } from './snapshot.js';

/** The zones of a runtime before its first load: no zone, generation 0. */
export const NO_ZONES: ZoneSet = Object.freeze({ zones: new Map(), nested: false, generation: 0, loadedAt: 0 });

export type Unsubscribe = () => void;

/**
 * The subscribers of one value. Every subscriber gets every value published after it subscribed,
 * in the order published: a value published by a subscriber while another value is being
 * delivered is delivered once that one has reached everyone. A subscriber that throws does not
 * keep the others from their value; the first error is thrown to the publisher afterwards.
 */
class Subscribers<T> {
  private readonly listeners = new Set<(value: T) => void>();
  private readonly queue: T[] = [];
  private delivering = false;

  add(listener: (value: T) => void): Unsubscribe {
    // A wrapper per subscription: the same function subscribed twice is two subscriptions.
    const entry = (value: T) => listener(value);
    this.listeners.add(entry);
    return () => void this.listeners.delete(entry);
  }

  deliver(value: T): void {
    this.queue.push(value);
    if (this.delivering) return;
    this.delivering = true;
    let failure: { error: unknown } | undefined;
    try {
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
        for (const listener of [...this.listeners]) {
          // Unsubscribed by an earlier listener of this same delivery: it gets nothing more.
          if (!this.listeners.has(listener)) continue;
          try {
            listener(next);
          } catch (error) {
            failure ??= { error };
          }
        }
      }
    } finally {
      this.delivering = false;
    }
    if (failure !== undefined) throw failure.error;
  }
}

export class Runtime {
  /** Read per query; replaced by publishZones only. */
  readonly zones: ZoneSet;
  /** Read per query; replaced by publishState only. */
  readonly state: StateSnapshot;
  private readonly zoneSubscribers = new Subscribers<ZoneSet>();
  private readonly stateSubscribers = new Subscribers<StateSnapshot>();

  constructor(zones: ZoneSet = NO_ZONES, state: StateSnapshot = EMPTY_SNAPSHOT) {
    this.zones = zones;
    this.state = state;
  }

  /** Swaps the zones in (one assignment), then tells every zone subscriber. */
  publishZones(zones: ZoneSet): void {
    (this as { zones: ZoneSet }).zones = zones;
    this.zoneSubscribers.deliver(zones);
  }

  /** Swaps the snapshot in (one assignment), then tells every state subscriber. */
  publishState(state: StateSnapshot): void {
    (this as { state: StateSnapshot }).state = state;
    this.stateSubscribers.deliver(state);
  }

  /** Calls `listener` with every zone set published from now on, after it took effect. */
  subscribeZones(listener: (zones: ZoneSet) => void): Unsubscribe {
    return this.zoneSubscribers.add(listener);
  }

  /** Calls `listener` with every snapshot published from now on, after it took effect. */
  subscribeState(listener: (state: StateSnapshot) => void): Unsubscribe {
    return this.stateSubscribers.add(listener);
  }
}
