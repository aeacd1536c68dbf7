/**
 * The state messages every UDP thread gets over its MessagePort (udp-threads.ts). A 'state' is
 * the whole snapshot; a 'delta' only the sites that changed since the snapshot `from`, for a
 * receiver known to hold that one (StatePublisher). Both carry the hysteresis current sites
 * whole (one entry per hysteresis candidate list: few), so a thread answers the site the main
 * thread decided. The receiving side applies either with applyStateMessage.
 */
import { udpThreadStateMessagesTotal } from '../metrics/definitions.js';
import { deltaOf, NO_CURRENT_SITES, type SiteState, type SnapshotDelta, type StateSnapshot } from './snapshot.js';

export interface StateMessage {
  type: 'state';
  version: number;
  takenAt: number;
  fresh: boolean;
  sites: [string, SiteState][];
  currentSites: [string, string][];
}
export interface DeltaMessage {
  type: 'delta';
  /** The version of the snapshot the receiver must hold to apply this. */
  from: number;
  version: number;
  takenAt: number;
  fresh: boolean;
  /** Changed or added sites. */
  sites: [string, SiteState][];
  /** Sites no longer in the snapshot. */
  removed: string[];
  currentSites: [string, string][];
}

export function stateMessage(snapshot: StateSnapshot): StateMessage {
  return { type: 'state', version: snapshot.version, takenAt: snapshot.takenAt, fresh: snapshot.fresh, sites: [...snapshot.sites], currentSites: [...snapshot.currentSites] };
}

/** The sites of `snapshot` that changed since the snapshot `delta.from` (for receivers holding that one). */
export function deltaMessage(snapshot: StateSnapshot, delta: SnapshotDelta): DeltaMessage {
  const sites: [string, SiteState][] = [];
  const removed: string[] = [];
  for (const key of delta.changed) {
    const state = snapshot.sites.get(key);
    if (state === undefined) removed.push(key);
    else sites.push([key, state]);
  }
  return { type: 'delta', from: delta.from, version: snapshot.version, takenAt: snapshot.takenAt, fresh: snapshot.fresh, sites, removed, currentSites: [...snapshot.currentSites] };
}

/** `current` with a delta applied (a new map: `current` stays as it was), or null when it does not apply. */
export function applyDeltaMessage(current: StateSnapshot, message: DeltaMessage): StateSnapshot | null {
  if (current.version !== message.from) return null;
  const sites = new Map(current.sites);
  for (const [key, state] of message.sites) sites.set(key, state);
  for (const key of message.removed) sites.delete(key);
  return Object.freeze({ sites, version: message.version, takenAt: message.takenAt, fresh: message.fresh, currentSites: currentSitesOf(message) });
}

/** The receiver's copy of the main thread's snapshot (same version, so logs and metrics agree). */
export function snapshotFromMessage(message: StateMessage): StateSnapshot {
  return Object.freeze({ sites: new Map(message.sites), version: message.version, takenAt: message.takenAt, fresh: message.fresh, currentSites: currentSitesOf(message) });
}

function currentSitesOf(message: StateMessage | DeltaMessage): ReadonlyMap<string, string> {
  return message.currentSites.length === 0 ? NO_CURRENT_SITES : new Map(message.currentSites);
}

/**
 * A 'state' or 'delta' message applied to the snapshot a receiver holds: the new snapshot, or
 * null when a delta does not start from `latest` (the receiver then asks for the whole state).
 */
export function applyStateMessage(latest: StateSnapshot | null, message: StateMessage | DeltaMessage): StateSnapshot | null {
  if (message.type === 'state') return snapshotFromMessage(message);
  return latest === null ? null : applyDeltaMessage(latest, message);
}

/**
 * The sending side: remembers the version each receiver was last sent, and sends it a delta when it holds the snapshot the delta
 * starts from, else the whole state.
 */
export class StatePublisher<T> {
  private readonly sentVersion = new Map<T, number>();

  constructor(private readonly send: (target: T, message: StateMessage | DeltaMessage) => void) {}

  /** The whole snapshot to one receiver (a new one, one that said 'hello', before a reload). */
  whole(target: T, snapshot: StateSnapshot, message: StateMessage = stateMessage(snapshot)): void {
    this.sentVersion.set(target, snapshot.version);
    udpThreadStateMessagesTotal.labels('whole').inc();
    this.send(target, message);
  }

  /** A new snapshot to every receiver: deltas where they apply (encoded once), else whole. */
  publish(snapshot: StateSnapshot, targets: Iterable<T>): void {
    const delta = deltaOf(snapshot);
    let whole: StateMessage | undefined;
    let partial: DeltaMessage | undefined;
    for (const target of targets) {
      if (delta !== undefined && this.sentVersion.get(target) === delta.from) {
        this.sentVersion.set(target, snapshot.version);
        udpThreadStateMessagesTotal.labels('delta').inc();
        this.send(target, (partial ??= deltaMessage(snapshot, delta)));
      } else {
        this.whole(target, snapshot, (whole ??= stateMessage(snapshot)));
      }
    }
  }

  forget(target: T): void {
    this.sentVersion.delete(target);
  }
}
