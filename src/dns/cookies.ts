/**
 * DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018): nameservers that share a
 * secret accept each other's cookies, so a resolver that learned a cookie from one of them is
 * proven to every one.
 *
 * Server cookie (RFC 9018 §4.2): Version (1) | Reserved (3, zero) | Timestamp (4, seconds, serial
 * number arithmetic) | Hash (8), where Hash = SipHash-2-4(Client Cookie | Version | Reserved |
 * Timestamp | Client-IP, secret) (§4.4) and Client-IP is the client's 4 or 16 address bytes.
 *
 * A server cookie is valid when its version is 1, its timestamp is at most an hour old and at
 * most five minutes ahead, and its hash matches under one of the accepted secrets (§4.3). A valid
 * cookie under the current secret and less than half an hour old is echoed as it came; any other
 * gets a fresh one (§4.3), made with the current secret. Rotating secrets (RFC 9018 §5): every
 * nameserver first accepts the new secret beside the old (`--cookie-secret OLD,NEW`), then makes
 * cookies with it (`NEW,OLD`), and drops the old one an hour later (`NEW`).
 */
import { randomBytes } from 'node:crypto';
import { sipKey, siphash24, type SipKey } from '../util/siphash.js';
import { CodedError } from '../util/coded-error.js';
import { EDNS_OPTION } from './constants.js';

const CLIENT_COOKIE_LEN = 8;
const SERVER_COOKIE_LEN = 16;
/** Bytes of our reply's COOKIE option: code, length, client cookie, server cookie. */
export const COOKIE_OPTION_LEN = 4 + CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN;
const SECRET_LEN = 16;
const VERSION = 1;
/** RFC 9018 §4.3: the lifetime of a cookie, the clock skew allowed, and the age it is renewed at. */
const MAX_AGE_S = 3600;
const MAX_AHEAD_S = 300;
const RENEW_AGE_S = 1800;

/**
 * RFC 7873 §5.2.2: a COOKIE option is a client cookie (8 bytes) optionally followed by a server
 * cookie of 8 to 32 bytes; any other length is malformed (FORMERR). Null when the length is fine.
 */
export function cookieLengthProblem(length: number): string | null {
  if (length === CLIENT_COOKIE_LEN || (length >= CLIENT_COOKIE_LEN + 8 && length <= CLIENT_COOKIE_LEN + 32)) return null;
  return `COOKIE option of ${length} bytes (8, or 16 to 40)`;
}

/** A cookie secret that cannot be used (ECOOKIE_SECRET). */
class CookieSecretError extends CodedError<'ECOOKIE_SECRET'> {
  constructor(message: string) {
    super('ECOOKIE_SECRET', message);
  }
}

/** A cookie secret is 32 hex digits (RFC 9018 §4.4's 16-byte SipHash key). */
export function isCookieSecret(text: string): boolean {
  return /^[0-9a-fA-F]{32}$/.test(text);
}

/** A secret given as text, as the key's 16 bytes. */
export function parseCookieSecret(text: string): Buffer {
  // The text is never echoed: a secret one digit off is still nearly the secret.
  if (!isCookieSecret(text)) throw new CookieSecretError(`a cookie secret of ${text.length} characters is not 32 hex digits (16 bytes)`);
  return Buffer.from(text, 'hex');
}

/** A random secret, for a process given none: its cookies are then its own. */
export function randomCookieSecret(): string {
  return randomBytes(SECRET_LEN).toString('hex');
}

export class ServerCookies {
  private readonly keys: SipKey[];
  /** Hash input: client cookie, version, reserved, timestamp, client address (at most 16). */
  private readonly input = Buffer.alloc(CLIENT_COOKIE_LEN + 8 + 16);
  private readonly hash = Buffer.alloc(8);
  /** The reply option `reply()` writes; reused, valid until the next call. */
  readonly option = Buffer.alloc(COOKIE_OPTION_LEN);

  /**
   * `secrets`: the first makes cookies, every one is accepted (hex text or 16 bytes each).
   * `now`: the clock in milliseconds (tests inject one).
   */
  constructor(secrets: readonly (string | Uint8Array)[], private readonly now: () => number = Date.now) {
    if (secrets.length === 0) throw new CookieSecretError('at least one cookie secret is needed');
    this.keys = secrets.map((s) => sipKey(typeof s === 'string' ? parseCookieSecret(s) : s));
    this.option.writeUInt16BE(EDNS_OPTION.COOKIE, 0);
    this.option.writeUInt16BE(CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN, 2);
  }

  /**
   * The reply's COOKIE option for a query's cookie, the option data src[start .. start + length)
   * (a length cookieLengthProblem accepts), from the client whose address bytes are
   * address[0 .. addressLength) (4 or 16), written to `option` (reused by the next call).
   * Returns whether the query carried a valid server cookie.
   */
  reply(src: Uint8Array, start: number, length: number, address: Uint8Array, addressLength: number): boolean {
    const now = Math.floor(this.now() / 1000) >>> 0;
    const out = this.option;
    for (let i = 0; i < CLIENT_COOKIE_LEN; i++) out[4 + i] = src[start + i];
    let valid = false;
    if (length === CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN && src[start + CLIENT_COOKIE_LEN] === VERSION) {
      const at = start + 12;
      const stamp = ((src[at] << 24) | (src[at + 1] << 16) | (src[at + 2] << 8) | src[at + 3]) >>> 0;
      // RFC 1982 serial arithmetic: the signed 32-bit distance from now.
      const age = (now - stamp) | 0;
      if (age <= MAX_AGE_S && age >= -MAX_AHEAD_S) {
        for (let k = 0; k < this.keys.length && !valid; k++) {
          this.hashOf(this.keys[k], src, start, address, addressLength);
          valid = this.hashMatches(src, start + CLIENT_COOKIE_LEN + 8);
          if (valid && k === 0 && age < RENEW_AGE_S) {
            for (let i = 0; i < SERVER_COOKIE_LEN; i++) out[4 + CLIENT_COOKIE_LEN + i] = src[start + CLIENT_COOKIE_LEN + i];
            return true;
          }
        }
      }
    }
    // A fresh server cookie under the current secret.
    out[12] = VERSION;
    out[13] = 0;
    out[14] = 0;
    out[15] = 0;
    out.writeUInt32BE(now, 16);
    this.hashOf(this.keys[0], out, 4, address, addressLength);
    for (let i = 0; i < 8; i++) out[20 + i] = this.hash[i];
    return valid;
  }

  /** SipHash of client cookie + version + reserved + timestamp (src[start .. start + 16)) + address, into this.hash. */
  private hashOf(key: SipKey, src: Uint8Array, start: number, address: Uint8Array, addressLength: number): void {
    const input = this.input;
    for (let i = 0; i < CLIENT_COOKIE_LEN + 8; i++) input[i] = src[start + i];
    for (let i = 0; i < addressLength; i++) input[CLIENT_COOKIE_LEN + 8 + i] = address[i];
    siphash24(key, input, 0, CLIENT_COOKIE_LEN + 8 + addressLength, this.hash, 0);
  }

  private hashMatches(bytes: Uint8Array, at: number): boolean {
    let diff = 0;
    for (let i = 0; i < 8; i++) diff |= bytes[at + i] ^ this.hash[i];
    return diff === 0;
  }
}
