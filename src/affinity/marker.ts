/**
 * The redirection marker (seed 004 stages 515-520, 535, 555-560, 590): the seed appends
 * "/Distrib=<timestamp>[+Initial Site]" to the URI path. Ours is one query parameter whose value
 * is signed with HMAC-SHA256 under the shared secret, so a client can neither forge one (to skip
 * load balancing) nor keep reusing one after it expires (a bookmark). It is bound to the zone and
 * to the site it is addressed to (`to`), so a marker minted for Boston is no pass for Chicago.
 *
 * Wire form (every field is a lower-case label, so "." separates them unambiguously):
 *   1.<unix seconds>.<to site>.<initial site or "">.<group or "">.<22 chars base64url MAC>
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MARKER_VERSION = '1';
/** 16 bytes of HMAC-SHA256 (128 bits), base64url: 22 characters. */
const MAC_BYTES = 16;
const MAC_CHARS = 22;
/** A marker longer than this is not ours (guards the regex and the HMAC against huge input). */
const MAX_MARKER_LENGTH = 256;
/** At most this many marker parameters are verified in one URL; the rest are only stripped. */
export const MAX_MARKERS_CHECKED = 4;

const ID = '[a-z0-9][a-z0-9_-]{0,62}';
const MARKER_RE = new RegExp(`^1\\.(\\d{1,12})\\.(${ID})\\.(${ID})?\\.(${ID})?\\.([A-Za-z0-9_-]{${MAC_CHARS}})$`);

export interface MarkerFields {
  /** When load distribution (or the overflow chain) began, unix seconds (seed: "timestamp"). */
  readonly issuedAt: number;
  /** The site id this marker admits to. */
  readonly to: string;
  /** Seed stage 590: the site where admission-control overflow began; absent for a plain marker. */
  readonly initial?: string;
  /** The group whose ring the overflow chain walks (so every hop walks the same ring). */
  readonly group?: string;
}

export type MarkerCheck =
  | { readonly ok: true; readonly marker: MarkerFields }
  | { readonly ok: false; readonly reason: 'absent' | 'malformed' | 'bad signature' | 'expired' | 'from the future' | 'for another site' };

export interface MarkerKeys {
  /** The first signs; all verify (rotation: add the new secret first, drop the old one later). */
  readonly secrets: readonly Buffer[];
  /** Bound into the MAC so two zones sharing a secret do not accept each other's markers. */
  readonly zone: string;
}

function payloadOf(m: MarkerFields): string {
  return `${MARKER_VERSION}.${m.issuedAt}.${m.to}.${m.initial ?? ''}.${m.group ?? ''}`;
}

function mac(secret: Buffer, zone: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(`sitedns-affinity\n${zone}\n${payload}`).digest().subarray(0, MAC_BYTES);
}

export function signMarker(keys: MarkerKeys, m: MarkerFields): string {
  const payload = payloadOf(m);
  return `${payload}.${mac(keys.secrets[0], keys.zone, payload).toString('base64url')}`;
}

export interface MarkerTiming {
  /** Seed stage 520: "a short expiration time, such as 60 seconds". Milliseconds. */
  readonly maxAgeMs: number;
  /** Seed stage 520 asks for closely synchronized clocks; we tolerate this much difference. */
  readonly clockSkewMs: number;
}

/** Verifies one raw marker value for site `self` at time `nowMs`. */
export function checkMarker(keys: MarkerKeys, timing: MarkerTiming, raw: string, self: string, nowMs: number): MarkerCheck {
  if (raw.length > MAX_MARKER_LENGTH) return { ok: false, reason: 'malformed' };
  const m = MARKER_RE.exec(raw);
  if (!m) return { ok: false, reason: 'malformed' };
  const fields: MarkerFields = {
    issuedAt: Number(m[1]),
    to: m[2],
    ...(m[3] ? { initial: m[3] } : {}),
    ...(m[4] ? { group: m[4] } : {}),
  };
  const given = Buffer.from(m[5], 'base64url');
  const payload = raw.slice(0, raw.length - MAC_CHARS - 1);
  let signed = false;
  for (const secret of keys.secrets) {
    // Constant-time comparison: no timing oracle for guessing a MAC byte by byte.
    if (given.length === MAC_BYTES && timingSafeEqual(given, mac(secret, keys.zone, payload))) signed = true;
  }
  if (!signed) return { ok: false, reason: 'bad signature' };
  const ageMs = nowMs - fields.issuedAt * 1000;
  // issuedAt is rounded down to the second, so only a clock ahead of ours makes the age negative.
  if (ageMs < -timing.clockSkewMs) return { ok: false, reason: 'from the future' };
  if (ageMs > timing.maxAgeMs + timing.clockSkewMs) return { ok: false, reason: 'expired' };
  if (fields.to !== self) return { ok: false, reason: 'for another site' };
  return { ok: true, marker: fields };
}

/**
 * Checks the marker values found in a URL (normally one): the first valid one wins; otherwise
 * the reason of the last one checked. Only the first few are checked (bounded work per request).
 */
export function checkMarkers(keys: MarkerKeys, timing: MarkerTiming, raws: readonly string[], self: string, nowMs: number): MarkerCheck {
  let last: MarkerCheck = { ok: false, reason: 'absent' };
  for (const raw of raws.slice(0, MAX_MARKERS_CHECKED)) {
    last = checkMarker(keys, timing, raw, self, nowMs);
    if (last.ok) return last;
  }
  return last;
}
