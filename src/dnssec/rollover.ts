/**
 * Key rollovers as timing metadata (docs/dnssec.md#rollover), pure: what to write, never written
 * here.
 *
 * - ZSK, pre-publish (RFC 6781 §4.1.1.1): the new key is published now and becomes active once
 *   every resolver can have it (publish + DNSKEY TTL + propagation); the old key retires then, and
 *   is removed when the signatures it made can no longer be valid (retire + signature validity).
 * - KSK or CSK, double-DS (RFC 6781 §4.1.2): the new key is published now, not active, and
 *   signalled to the parent beside the old one (CDS/CDNSKEY: key-timing.ts). Once the parent
 *   serves the DS of the new key, `complete` makes it active and retires the old key, which is
 *   removed after the signature validity. The parent's DS set is the operator's to check
 *   (`sitedns dnssec ds` prints both); complete refuses only while the new key may be missing
 *   from resolvers' DNSKEY RRsets.
 */
import { KeyError, type KeyRole, type KeyTiming } from './key-file.js';
import { isActive, isPublished, type StoredKey } from './key-timing.js';

export interface RolloverTimes {
  /** TTL of the apex DNSKEY RRset. */
  readonly dnskeyTtlMs: number;
  /** Time for a change to reach every nameserver of the zone (copying the key directory included). */
  readonly propagationMs: number;
  /** RRSIG validity: the longest a signature made by the old key stays valid. */
  readonly signatureValidityMs: number;
}

export interface RolloverPlan {
  /** The key to create, or undefined (complete: no new key). */
  readonly newKey?: { readonly role: KeyRole; readonly timing: KeyTiming };
  /** Existing keys whose timing changes. */
  readonly changes: readonly { readonly file: string; readonly timing: KeyTiming }[];
}

const pending = (k: StoredKey, now: number) => isPublished(k.timing, now) && (k.timing.activate === null || k.timing.activate > now) && k.timing.retire === null;

function rolloverError(dir: string, message: string): KeyError {
  return new KeyError('EKEY_ROLLOVER', dir, message);
}

/** Starts a rollover of `role` at `now`; throws KeyError (EKEY_ROLLOVER) when one cannot start. */
export function planRollover(dir: string, keys: readonly StoredKey[], role: KeyRole, now: number, times: RolloverTimes): RolloverPlan {
  const ofRole = keys.filter((k) => k.role === role);
  const current = ofRole.filter((k) => isActive(k.timing, now));
  if (current.length === 0) throw rolloverError(dir, `no active ${role.toUpperCase()} to roll over`);
  const waiting = ofRole.find((k) => pending(k, now));
  if (waiting !== undefined) throw rolloverError(dir, `a ${role.toUpperCase()} rollover is under way: key ${waiting.key.keyTag} is published and not active yet${role === 'zsk' ? '' : ' (sitedns dnssec rollover --complete)'}`);
  if (role !== 'zsk') return { newKey: { role, timing: { created: now, publish: now, activate: null, retire: null, remove: null } }, changes: [] };
  const switchAt = now + times.dnskeyTtlMs + times.propagationMs;
  return {
    newKey: { role, timing: { created: now, publish: now, activate: switchAt, retire: null, remove: null } },
    changes: current.map((k) => ({ file: k.key.file, timing: { ...k.timing, retire: switchAt, remove: switchAt + times.signatureValidityMs } })),
  };
}

/** Completes a double-DS rollover of `role` (ksk or csk) at `now`; throws KeyError (EKEY_ROLLOVER). */
export function planRolloverCompletion(dir: string, keys: readonly StoredKey[], role: KeyRole, now: number, times: RolloverTimes): RolloverPlan {
  if (role === 'zsk') throw rolloverError(dir, 'a ZSK rollover completes by its timing: nothing to complete');
  const ofRole = keys.filter((k) => k.role === role);
  const incoming = ofRole.find((k) => pending(k, now) && k.timing.activate === null);
  if (incoming === undefined) throw rolloverError(dir, `no ${role.toUpperCase()} rollover to complete (sitedns dnssec rollover --role ${role} starts one)`);
  const readyAt = incoming.timing.publish + times.dnskeyTtlMs + times.propagationMs;
  if (now < readyAt) throw rolloverError(dir, `key ${incoming.key.keyTag} was published at ${new Date(incoming.timing.publish).toISOString()}: resolvers may not have it before ${new Date(readyAt).toISOString()}`);
  const outgoing = ofRole.filter((k) => k !== incoming && isActive(k.timing, now));
  return {
    changes: [
      { file: incoming.key.file, timing: { ...incoming.timing, activate: now } },
      ...outgoing.map((k) => ({ file: k.key.file, timing: { ...k.timing, retire: now, remove: now + times.signatureValidityMs } })),
    ],
  };
}
