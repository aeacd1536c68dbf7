/**
 * The options a reply carries that depend on this server and the query, not on the zones:
 * NSID (RFC 5001) and DNS Cookies (RFC 7873, server cookies as RFC 9018), and the CH-class
 * identity names (RFC 4892 §2). Both answering paths (prebuilt bytes and dns/response.ts) take
 * their option bytes from `optionsFor`, so they are the same bytes.
 */
import { COOKIE_OPTION_LEN, type ServerCookies } from './cookies.js';
import { nsidOption } from './encode.js';

/** `serve --nsid` and `--version-bind`: what NSID and the CH TXT names answer; null: not answered (REFUSED). */
export interface ServerIdentity {
  /** The NSID option (RFC 5001) and CH TXT `id.server` / `hostname.bind` (RFC 4892 §2). */
  readonly nsid: string | null;
  /** CH TXT `version.bind`. */
  readonly versionBind: string | null;
}

/**
 * `serve --nsid`, `--version-bind` and `--cookie-secret`, as every answerer (the main thread, each
 * UDP thread) takes them: plain data, so a thread gets them in its workerData.
 */
export interface EdnsAnswering {
  identity: ServerIdentity;
  /** Hex secrets: the first makes server cookies, all are accepted (dns/cookies.ts); none: cookies are ignored. */
  cookieSecrets: string[];
}

/** What the last query's COOKIE option proved (ReplyOptions.lastCookie). */
export const COOKIE_NONE = 0;
/** A client cookie without a valid server cookie: the source is not proven (RFC 7873 §5.2.3, §5.2.4). */
export const COOKIE_UNPROVEN = 1;
/** A valid server cookie: the client received our earlier reply at this address (RFC 7873 §5.2.5). */
export const COOKIE_PROVEN = 2;
export type CookieProof = typeof COOKIE_NONE | typeof COOKIE_UNPROVEN | typeof COOKIE_PROVEN;

export class ReplyOptions {
  /** Encoded NSID option (null: not configured) and the scratch the reply's options are written to. */
  private readonly nsid: Buffer | null;
  private readonly scratch: Buffer;
  /** What the COOKIE option of the query handled last proved (read by the answer step). */
  lastCookie: CookieProof = COOKIE_NONE;
  /** Whether COOKIE options are answered (a secret is configured). */
  readonly answersCookies: boolean;

  constructor(
    readonly identity: ServerIdentity = { nsid: null, versionBind: null },
    private readonly cookies: ServerCookies | null = null,
  ) {
    this.answersCookies = cookies !== null;
    this.nsid = identity.nsid === null ? null : nsidOption(identity.nsid);
    this.scratch = Buffer.alloc((this.nsid?.length ?? 0) + COOKIE_OPTION_LEN);
  }

  /**
   * The reply's NSID (when asked and configured: RFC 5001 §2.3) and COOKIE options (RFC 7873
   * §5.2: a client cookie always gets a server cookie back) for an EDNS query whose COOKIE data
   * is cookie[cookieStart, + cookieLength) (cookie null: none) from a client whose address is
   * address[0, addressLength), as option bytes (a view of one scratch buffer); null for none.
   * Sets lastCookie.
   */
  optionsFor(nsidAsked: boolean, cookie: Uint8Array | null, cookieStart: number, cookieLength: number, address: Uint8Array, addressLength: number): Buffer | null {
    let length = 0;
    if (nsidAsked && this.nsid !== null) {
      this.nsid.copy(this.scratch, 0);
      length = this.nsid.length;
    }
    if (cookie !== null && cookieStart >= 0 && this.cookies !== null && addressLength > 0) {
      this.lastCookie = this.cookies.reply(cookie, cookieStart, cookieLength, address, addressLength) ? COOKIE_PROVEN : COOKIE_UNPROVEN;
      this.cookies.option.copy(this.scratch, length);
      length += this.cookies.option.length;
    }
    return length === 0 ? null : length === this.scratch.length ? this.scratch : this.scratch.subarray(0, length);
  }

  /** CH TXT: the text `name` answers (RFC 4892 §2) where configured; null: REFUSED. */
  chaosText(name: string): string | null {
    return name === 'id.server' || name === 'hostname.bind' ? this.identity.nsid : name === 'version.bind' ? this.identity.versionBind : null;
  }
}
