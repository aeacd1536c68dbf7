/**
 * Response rate limiting for UDP (#7), after BIND's and Knot's RRL: a spoofed flood of queries
 * must not turn this server into an amplifier aimed at the spoofed address.
 *
 * Responses are counted per client network (IPv4 /24, IPv6 /56 by default) and per response
 * class (responseRateClass in wire.ts: identical answers, NXDOMAIN per zone, referrals per
 * delegation, errors per RCODE). Each account is a token bucket: it earns `ratePerSecond`
 * responses a second up to that many, spends one per response, and may go as far as
 * `window` seconds' worth into debt, so a network that floods stays limited until it has been
 * quiet for a while. Over the limit, responses are dropped, except every `slip`-th, which is sent
 * as an empty TC=1 reply: a real resolver behind the spoofed-looking network retries over TCP
 * (which cannot be spoofed) and still gets its answer.
 *
 * Pure except for the injected clock; the UDP transport calls `check()` per response.
 */
import ipaddr from 'ipaddr.js';
import { responseRateClass } from '../dns/wire.js';

export interface RrlOptions {
  /** Identical responses per second per network; 0 turns rate limiting off. */
  ratePerSecond: number;
  /** How many seconds of excess a flooding network must pay back before it is answered again. */
  windowSeconds: number;
  /** Every slip-th limited response is sent truncated (TC=1) instead of dropped; 0 = drop all. */
  slip: number;
  ipv4PrefixLength: number;
  ipv6PrefixLength: number;
  /** Client networks never limited (CIDR). Loopback by default. */
  exempt: readonly string[];
  /** Accounts kept at most; idle ones are forgotten first. */
  maxEntries: number;
}

export const RRL_DEFAULTS: RrlOptions = Object.freeze({
  ratePerSecond: 100,
  windowSeconds: 15,
  slip: 2,
  ipv4PrefixLength: 24,
  ipv6PrefixLength: 56,
  exempt: Object.freeze(['127.0.0.0/8', '::1/128']),
  maxEntries: 100_000,
});

export type RrlVerdict = 'send' | 'slip' | 'drop';

interface Account {
  /** Responses this account may still send now (negative: in debt). */
  balance: number;
  /** Clock reading (ms) of the last response counted. */
  at: number;
  /** Limited responses so far, for slip. */
  limited: number;
}

export class ResponseRateLimiter {
  readonly options: RrlOptions;
  private readonly accounts = new Map<string, Account>();
  private readonly exempt: [ipaddr.IPv4 | ipaddr.IPv6, number][];
  private readonly onlyLoopbackExempt: boolean;
  private readonly floor: number;
  /** Accounts forgotten while still limited because the table was full (should stay 0). */
  evictedLimited = 0;

  constructor(options: Partial<RrlOptions> = {}, private readonly now: () => number = Date.now) {
    this.options = Object.freeze({ ...RRL_DEFAULTS, ...options });
    const o = this.options;
    if (!(o.ratePerSecond >= 0) || !(o.windowSeconds >= 1) || !(o.slip >= 0) || !Number.isInteger(o.slip)) {
      throw new Error('rate limiting: rate >= 0, window >= 1 s and a whole slip >= 0');
    }
    if (!(o.ipv4PrefixLength >= 0 && o.ipv4PrefixLength <= 32 && o.ipv6PrefixLength >= 0 && o.ipv6PrefixLength <= 128)) {
      throw new Error('rate limiting: prefix lengths are 0-32 (IPv4) and 0-128 (IPv6)');
    }
    this.exempt = o.exempt.map((cidr) => {
      try {
        return ipaddr.parseCIDR(cidr);
      } catch {
        throw new Error(`rate limiting: "${cidr}" is not a network (use e.g. 192.0.2.0/24)`);
      }
    });
    this.onlyLoopbackExempt = o.exempt.length === 2 && o.exempt.includes('127.0.0.0/8') && o.exempt.includes('::1/128');
    this.floor = -o.windowSeconds * o.ratePerSecond;
  }

  get enabled(): boolean {
    return this.options.ratePerSecond > 0;
  }

  /** Accounts held now. */
  get size(): number {
    return this.accounts.size;
  }

  /** What to do with `reply`, about to be sent to `clientAddress` over UDP. */
  check(clientAddress: string, reply: Buffer): RrlVerdict {
    if (this.options.ratePerSecond <= 0) return 'send';
    const network = this.networkOf(clientAddress);
    if (network === null) return 'send';
    const key = `${network} ${responseRateClass(reply)}`;
    const now = this.now();
    const rate = this.options.ratePerSecond;
    let account = this.accounts.get(key);
    if (account === undefined) {
      if (this.accounts.size >= this.options.maxEntries) this.makeRoom(now);
      account = { balance: rate, at: now, limited: 0 };
      this.accounts.set(key, account);
    } else {
      const earned = ((now - account.at) / 1000) * rate;
      if (earned > 0) account.balance = Math.min(rate, account.balance + earned);
      account.at = now;
    }
    account.balance -= 1;
    if (account.balance >= 0) return 'send';
    if (account.balance < this.floor) account.balance = this.floor;
    account.limited++;
    const slip = this.options.slip;
    return slip > 0 && account.limited % slip === 0 ? 'slip' : 'drop';
  }

  /**
   * True when a client given as raw bytes (the batched UDP path) is exempt without building its
   * text address: the default exemption is loopback only, which the first byte(s) decide.
   */
  exemptBytes(family: 4 | 6, bytes: Uint8Array): boolean {
    if (!this.onlyLoopbackExempt) return false;
    if (family === 4) return bytes[0] === 127;
    for (let i = 0; i < 15; i++) if (bytes[i] !== 0) return false;
    return bytes[15] === 1;
  }

  /** The client's network as text, or null when it is exempt. */
  networkOf(address: string): string | null {
    if (this.onlyLoopbackExempt) {
      if (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.')) return null;
    }
    // The common case without parsing: a dotted IPv4 address, its /24 is the text before the last dot.
    if (this.onlyLoopbackExempt && this.options.ipv4PrefixLength === 24 && address.indexOf(':') < 0) {
      const dot = address.lastIndexOf('.');
      if (dot > 0) return `4:${address.slice(0, dot)}/24`;
    }
    // Parsing (IPv6 above all) costs microseconds; resolvers come back from the same addresses.
    const cached = this.networks.get(address);
    if (cached !== undefined) return cached;
    const network = this.parseNetwork(address);
    if (this.networks.size >= 50_000) this.networks.clear();
    this.networks.set(address, network);
    return network;
  }

  private readonly networks = new Map<string, string | null>();

  private parseNetwork(address: string): string | null {
    let parsed: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      parsed = ipaddr.process(address);
    } catch {
      return null; // not an address (cannot happen from a socket): nothing to limit
    }
    if (!this.onlyLoopbackExempt) {
      for (const [net, bits] of this.exempt) if (net.kind() === parsed.kind() && parsed.match(net, bits)) return null;
    }
    const bytes = parsed.toByteArray();
    const bits = parsed.kind() === 'ipv4' ? this.options.ipv4PrefixLength : this.options.ipv6PrefixLength;
    for (let bit = bits; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
    return `${parsed.kind() === 'ipv4' ? '4' : '6'}:${Buffer.from(bytes).toString('hex')}/${bits}`;
  }

  /**
   * The table is full: forget accounts that have earned their balance back (they are the same
   * as new ones), then, if that is not enough, the oldest accounts, down to 90% of the cap, so
   * that the next sweep is many insertions away.
   */
  private makeRoom(now: number): void {
    const rate = this.options.ratePerSecond;
    for (const [key, a] of this.accounts) {
      if (a.balance + ((now - a.at) / 1000) * rate >= rate) this.accounts.delete(key);
    }
    const target = Math.floor(this.options.maxEntries * 0.9);
    for (const [key, a] of this.accounts) {
      if (this.accounts.size <= target) break;
      if (a.balance < 0) this.evictedLimited++;
      this.accounts.delete(key);
    }
  }
}
