/**
 * Reading back our own responses for response rate limiting (src/server/rrl.ts): which
 * "identical responses" account a reply is charged to.
 */
import { HEADER_LEN, QTYPE } from './constants.js';
import { skipName } from './decode.js';
import { FNV_OFFSET, FNV_PRIME, hashWireName } from './name-hash.js';

/**
 * What makes two responses "identical" for rate limiting, read from a response we built (the
 * classes of BIND's and Knot's RRL): answers by question name and type; NXDOMAIN by zone (the
 * SOA owner), so random names under one zone share one account; referrals by the delegation
 * point; NODATA by name; errors (REFUSED, FORMERR, ...) by RCODE alone.
 *
 * Returned as a number, not text: the UDP transports ask once per response, and building a
 * string per response cost ~1.3 µs per query (allocation, lower-casing, hashing it again in a
 * Map), five times the rest of the answer. The number is the class's kind in bits 27-29 and a
 * 27-bit FNV-1a hash of the name bytes it stands for (ASCII lower-cased, compression followed),
 * so it stays a small integer (a V8 Smi: no allocation as a Map key). Two classes of the same
 * kind whose names collide in 27 bits share an account: stricter for them, never looser.
 * RATE_CLASS_NONE for bytes that are not a response we could have built.
 */
export const RATE_CLASS_NONE = 0;
const RATE_KIND_SHIFT = 2 ** 27;
const RATE_HASH_MASK = RATE_KIND_SHIFT - 1;
/** Class kinds (bits 27-29 of a rate class). */
export const RATE_KIND = Object.freeze({ error: 1, answer: 2, nodata: 3, nxdomain: 4, referral: 5 });

export function responseRateClass(reply: Uint8Array, length: number = reply.length): number {
  if (length < HEADER_LEN) return RATE_CLASS_NONE;
  const rcode = reply[3] & 0xf;
  if (rcode !== 0 && rcode !== 3) return RATE_KIND.error * RATE_KIND_SHIFT + rcode;
  if (reply[4] !== 0 || reply[5] !== 1) return RATE_KIND.error * RATE_KIND_SHIFT + rcode;
  const nameEnd = skipName(reply, HEADER_LEN, length);
  if (nameEnd < 0 || nameEnd + 4 > length) return RATE_CLASS_NONE;
  // The question's own bytes (name and QTYPE) stand for it: label lengths are under 0x41, so
  // lower-casing A-Z leaves them alone.
  const ancount = (reply[6] << 8) | reply[7];
  if (rcode === 0 && ancount > 0) return questionClass(RATE_KIND.answer, reply, nameEnd);
  // Skip the answers (a CNAME chain can precede NXDOMAIN) to the first authority record.
  let pos = nameEnd + 4;
  for (let i = 0; i < ancount; i++) {
    pos = skipName(reply, pos, length);
    if (pos < 0 || pos + 10 > length) return RATE_CLASS_NONE;
    pos += 10 + ((reply[pos + 8] << 8) | reply[pos + 9]);
  }
  if (reply[8] === 0 && reply[9] === 0) {
    // No authority: an extended RCODE (BADVERS) is an error, its upper bits in the OPT's TTL
    // (RFC 6891 §6.1.3); else NODATA by the question, like an answer (hashed only when it is the verdict).
    const upper = extendedRcodeBits(reply, pos, length);
    if (upper !== 0) return RATE_KIND.error * RATE_KIND_SHIFT + ((upper << 4) | rcode);
    return questionClass(RATE_KIND.nodata, reply, nameEnd);
  }
  const ownerEnd = skipName(reply, pos, length);
  if (ownerEnd < 0 || ownerEnd + 2 > length) return RATE_CLASS_NONE;
  const owner = hashNameAt(reply, pos, length);
  if (owner < 0) return RATE_CLASS_NONE;
  if (rcode === 3) return RATE_KIND.nxdomain * RATE_KIND_SHIFT + (owner & RATE_HASH_MASK);
  return ((reply[ownerEnd] << 8) | reply[ownerEnd + 1]) === QTYPE.NS ? RATE_KIND.referral * RATE_KIND_SHIFT + (owner & RATE_HASH_MASK) : questionClass(RATE_KIND.nodata, reply, nameEnd);
}

/** The OPT's extended-RCODE byte when the record at `pos` is our OPT (root owner, type 41), else 0. */
function extendedRcodeBits(reply: Uint8Array, pos: number, length: number): number {
  if (reply[10] === 0 && reply[11] === 0) return 0;
  if (pos + 11 > length || reply[pos] !== 0 || ((reply[pos + 1] << 8) | reply[pos + 2]) !== QTYPE.OPT) return 0;
  return reply[pos + 5];
}

/** A class standing for the question (name and QTYPE bytes, lower-cased). */
function questionClass(kind: number, reply: Uint8Array, nameEnd: number): number {
  return kind * RATE_KIND_SHIFT + (hashWireName(reply, HEADER_LEN, nameEnd + 2) & RATE_HASH_MASK);
}

/** The kind of a rate class (RATE_KIND), 0 for RATE_CLASS_NONE. */
export function rateClassKind(rateClass: number): number {
  return Math.floor(rateClass / RATE_KIND_SHIFT);
}

/** hashWireName over the name at `offset` as its labels read (compression followed), or -1. */
function hashNameAt(msg: Uint8Array, offset: number, length: number): number {
  let h = FNV_OFFSET;
  let pos = offset;
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= length) return -1;
    const len = msg[pos];
    if ((len & 0xc0) === 0xc0) {
      if (pos + 2 > length) return -1;
      pos = ((len & 0x3f) << 8) | msg[pos + 1];
      continue;
    }
    if (len > 63 || pos + 1 + len > length) return -1;
    for (let i = pos; i <= pos + len; i++) {
      let c = msg[i];
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    if (len === 0) return h & 0x7fffffff;
    pos += 1 + len;
  }
  return -1;
}
