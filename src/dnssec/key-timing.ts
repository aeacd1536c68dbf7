/**
 * What a zone's keys do at one moment, from their timing metadata alone (RFC 6781 §4.1, RFC 7583
 * §3.1): a key is in the DNSKEY RRset from `publish` until `remove`; it signs from `activate`
 * until `retire`, a CSK or ZSK the zone data, a CSK or KSK the DNSKEY, CDS and CDNSKEY RRsets; a
 * CSK or KSK is signalled to the parent as CDS/CDNSKEY (RFC 7344 §4) while published and not
 * retired, so during a double-DS rollover the CDS RRset holds the old and the new key.
 */
import type { KeyRole, KeyTiming } from './key-file.js';
import type { SigningKey, ZoneKeySet } from './types.js';

export interface StoredKey {
  readonly key: SigningKey;
  readonly role: KeyRole;
  readonly timing: KeyTiming;
}

export function flagsOf(role: KeyRole): 256 | 257 {
  return role === 'zsk' ? 256 : 257;
}

export function isPublished(timing: KeyTiming, now: number): boolean {
  return timing.publish <= now && (timing.remove === null || now < timing.remove);
}

export function isActive(timing: KeyTiming, now: number): boolean {
  return timing.activate !== null && timing.activate <= now && (timing.retire === null || now < timing.retire) && isPublished(timing, now);
}

function isRetired(timing: KeyTiming, now: number): boolean {
  return timing.retire !== null && timing.retire <= now;
}

/** The keys' phase at `now`, as `sitedns dnssec status` shows it. */
export function keyPhase(timing: KeyTiming, now: number): 'scheduled' | 'published' | 'active' | 'retired' | 'removed' {
  if (timing.remove !== null && timing.remove <= now) return 'removed';
  if (timing.publish > now) return 'scheduled';
  if (isRetired(timing, now)) return 'retired';
  return isActive(timing, now) ? 'active' : 'published';
}

/** The first moment after `now` at which a timing time passes; Infinity when none is ahead. */
function nextTime(timing: KeyTiming, now: number): number {
  let next = Infinity;
  for (const t of [timing.publish, timing.activate, timing.retire, timing.remove]) if (t !== null && t > now && t < next) next = t;
  return next;
}

/** The zone's key set at `now` (keys in file order). */
export function keySetAt(zone: string, keys: readonly StoredKey[], now: number): ZoneKeySet {
  const published = keys.filter((k) => isPublished(k.timing, now));
  const active = published.filter((k) => isActive(k.timing, now));
  return Object.freeze({
    zone,
    published: Object.freeze(published.map((k) => k.key)),
    zoneSigning: Object.freeze(active.filter((k) => k.role !== 'ksk').map((k) => k.key)),
    keySigning: Object.freeze(active.filter((k) => k.role !== 'zsk').map((k) => k.key)),
    parentSignals: Object.freeze(published.filter((k) => k.role !== 'zsk' && !isRetired(k.timing, now)).map((k) => k.key)),
    nextChangeAt: Math.min(Infinity, ...keys.map((k) => nextTime(k.timing, now))),
  });
}

/** Timing out of order (a key active before it is published, removed before it retires): why, or null. */
export function timingProblem(timing: KeyTiming): string | null {
  const { publish, activate, retire, remove } = timing;
  if (activate !== null && activate < publish) return 'activate is before publish';
  if (retire !== null && activate === null) return 'retire is set without activate';
  if (retire !== null && activate !== null && retire < activate) return 'retire is before activate';
  if (remove !== null && remove < publish) return 'remove is before publish';
  if (remove !== null && retire !== null && remove < retire) return 'remove is before retire';
  return null;
}
