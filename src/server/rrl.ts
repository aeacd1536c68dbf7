/**
 * Response rate limiting for UDP, after BIND's and Knot's RRL: a spoofed flood of queries
 * must not turn this server into an amplifier aimed at the spoofed address.
 *
 * Responses are counted per client network (IPv4 /24, IPv6 /56 by default) and per response
 * class (responseRateClass in dns/rate-class.ts: identical answers, NXDOMAIN per zone, referrals per
 * delegation, errors per RCODE). Each account is a token bucket: it earns `ratePerSecond`
 * responses a second up to that many, spends one per response, and may go as far as
 * `window` seconds' worth into debt, so a network that floods stays limited until it has been
 * quiet for a while. Over the limit, responses are dropped, except every `slip`-th, which is sent
 * as an empty TC=1 reply: a real resolver behind the spoofed-looking network retries over TCP
 * (which cannot be spoofed) and still gets its answer.
 *
 * Pure except for the injected clock; the answer step (answer-step.ts) calls `checkClient()` per
 * UDP response, which reads the client's raw address bytes where the transport has them (the
 * addon) and its text otherwise (node:dgram). The common case, an IPv4 client answered with a
 * response we built, costs no allocation: the network is a number, the response class a small
 * integer (responseRateClass), and accounts sit in a Map per network keyed by class (a string
 * key per response cost ~1.3 µs per query, five times the answer itself).
 */
import ipaddr from 'ipaddr.js';
import { responseRateClass } from '../dns/rate-class.js';
import { FNV_OFFSET, FNV_PRIME } from '../dns/name-hash.js';
import { parseDottedQuad } from '../util/ipv4.js';

/** Accounts of one client network, by response class. */
type NetworkAccounts = Map<number, Account>;

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

/** What the limiter reads of a request's client (a RequestContext, handler.ts). */
export interface RrlClient {
  readonly clientAddress: string;
  readonly clientFamily?: 4 | 6;
  readonly clientBytes?: Uint8Array;
}

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
  /** Client network (network4/network6: a number) -> its accounts. */
  private readonly accounts = new Map<number, NetworkAccounts>();
  private accountCount = 0;
  /** IPv4 exemptions as [network, prefix length] numbers (the rest are matched by ipaddr). */
  private readonly exempt4: [number, number][] = [];
  /** IPv6 exemptions as [network bytes, prefix mask]. */
  private readonly exempt6: [number[], Uint8Array][] = [];
  /** The IPv6 prefix length as a 16-byte mask, made once (network6 runs per response). */
  private readonly mask6: Uint8Array;
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
    const exempt = o.exempt.map((cidr) => {
      try {
        return ipaddr.parseCIDR(cidr);
      } catch {
        throw new Error(`rate limiting: "${cidr}" is not a network (use e.g. 192.0.2.0/24)`);
      }
    });
    for (const [net, bits] of exempt) {
      if (net.kind() === 'ipv4') this.exempt4.push([prefixOf(bytesToNumber(net.toByteArray()), bits), bits]);
      else this.exempt6.push([net.toByteArray(), prefixMask(bits)]);
    }
    this.mask6 = prefixMask(o.ipv6PrefixLength);
    this.onlyLoopbackExempt = o.exempt.length === 2 && o.exempt.includes('127.0.0.0/8') && o.exempt.includes('::1/128');
    this.floor = -o.windowSeconds * o.ratePerSecond;
  }

  get enabled(): boolean {
    return this.options.ratePerSecond > 0;
  }

  /** Accounts held now. */
  get size(): number {
    return this.accountCount;
  }

  /**
   * What to do with the reply out[0 .. length), about to be sent over UDP to the client of a
   * request: by its raw address when the transport gave one (`clientFamily`), else by its text.
   */
  checkClient(client: RrlClient, out: Uint8Array, length: number): RrlVerdict {
    if (client.clientFamily !== undefined && client.clientBytes !== undefined) return this.checkBytes(client.clientFamily, client.clientBytes, 0, out, length);
    return this.check(client.clientAddress, out, length);
  }

  /** What to do with reply[0 .. length), about to be sent to `clientAddress` over UDP. */
  check(clientAddress: string, reply: Uint8Array, length = reply.length): RrlVerdict {
    if (this.options.ratePerSecond <= 0) return 'send';
    // node:dgram gives IPv4 clients as dotted quads (mapped ones only on a dual-stack socket).
    const v4 = parseDottedQuad(clientAddress.startsWith('::ffff:') ? clientAddress.slice(7) : clientAddress);
    const network = v4 >= 0 ? this.network4(v4) : this.networkOf(clientAddress);
    if (network === null) return 'send';
    return this.charge(network, responseRateClass(reply, length));
  }

  /**
   * check() for a client given as raw bytes (the addon's transports): `family` 4 or 6 and the
   * address at bytes[offset ..]; the reply is out[0 .. length).
   */
  checkBytes(family: 4 | 6, bytes: Uint8Array, offset: number, out: Uint8Array, length: number): RrlVerdict {
    if (this.options.ratePerSecond <= 0) return 'send';
    let network: number | null;
    if (family === 4) {
      network = this.network4(((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0);
    } else {
      network = this.network6(bytes, offset);
    }
    if (network === null) return 'send';
    return this.charge(network, responseRateClass(out, length));
  }

  /** The /prefix network of an IPv4 address (as an unsigned number), or null when exempt. */
  private network4(address: number): number | null {
    if (this.onlyLoopbackExempt) {
      if (address >>> 24 === 127) return null;
    } else {
      for (const [net, bits] of this.exempt4) if (prefixOf(address, bits) === net) return null;
    }
    return prefixOf(address, this.options.ipv4PrefixLength);
  }

  /** Spends one response of the (network, class) account; the verdict. */
  private charge(network: number, rateClass: number): RrlVerdict {
    const now = this.now();
    const rate = this.options.ratePerSecond;
    let classes = this.accounts.get(network);
    let account = classes?.get(rateClass);
    if (account === undefined) {
      if (this.accountCount >= this.options.maxEntries) {
        this.makeRoom(now);
        classes = this.accounts.get(network);
      }
      if (classes === undefined) this.accounts.set(network, (classes = new Map()));
      account = { balance: rate, at: now, limited: 0 };
      classes.set(rateClass, account);
      this.accountCount++;
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
   * The network key of a client given as text (node:dgram, tests), or null when it is exempt:
   * the same key check() and checkBytes() use, cached because parsing costs microseconds and
   * resolvers come back from the same addresses.
   */
  networkOf(address: string): number | null {
    const cached = this.networks.get(address);
    if (cached !== undefined) return cached;
    let network: number | null;
    try {
      const parsed = ipaddr.process(address); // IPv4-mapped IPv6 counts as its IPv4 address
      const bytes = parsed.toByteArray();
      network = parsed.kind() === 'ipv4' ? this.network4(bytesToNumber(bytes)) : this.network6(bytes, 0);
    } catch {
      network = null; // not an address (cannot happen from a socket): nothing to limit
    }
    if (this.networks.size >= 50_000) this.networks.clear();
    this.networks.set(address, network);
    return network;
  }

  private readonly networks = new Map<string, number | null>();

  /**
   * The /prefix network of an IPv6 address at bytes[offset ..], or null when exempt, as a
   * negative number (IPv4 networks are non-negative): a 30-bit FNV-1a hash of the prefix bits.
   * Two networks whose hashes collide share their accounts, which makes both stricter, never
   * looser; a spoofer gains nothing by it, as it can spoof the other network directly.
   */
  private network6(bytes: ArrayLike<number>, offset: number): number | null {
    if (this.onlyLoopbackExempt) {
      let loopback = bytes[offset + 15] === 1;
      for (let i = 0; loopback && i < 15; i++) loopback = bytes[offset + i] === 0;
      if (loopback) return null;
    } else {
      for (const [net, mask] of this.exempt6) if (samePrefix(bytes, offset, net, mask)) return null;
    }
    const mask = this.mask6;
    let h = FNV_OFFSET;
    for (let i = 0; i < 16; i++) h = Math.imul(h ^ (bytes[offset + i] & mask[i]), FNV_PRIME);
    return -1 - (h & 0x3fffffff);
  }

  /**
   * The table is full: forget accounts that have earned their balance back (they are the same
   * as new ones), then, if that is not enough, the oldest accounts, down to 90% of the cap, so
   * that the next sweep is many insertions away.
   */
  private makeRoom(now: number): void {
    const rate = this.options.ratePerSecond;
    for (const [network, classes] of this.accounts) {
      for (const [key, a] of classes) {
        if (a.balance + ((now - a.at) / 1000) * rate >= rate) {
          classes.delete(key);
          this.accountCount--;
        }
      }
      if (classes.size === 0) this.accounts.delete(network);
    }
    const target = Math.floor(this.options.maxEntries * 0.9);
    for (const [network, classes] of this.accounts) {
      for (const [key, a] of classes) {
        if (this.accountCount <= target) break;
        if (a.balance < 0) this.evictedLimited++;
        classes.delete(key);
        this.accountCount--;
      }
      if (classes.size === 0) this.accounts.delete(network);
      if (this.accountCount <= target) break;
    }
  }
}

/** The first `bits` bits of an IPv4 address, as an unsigned number (0 for /0). */
function prefixOf(address: number, bits: number): number {
  return bits === 0 ? 0 : address >>> (32 - bits);
}

/** Whether the address at bytes[offset ..] is in `net` (both under the 16-byte `mask`). */
function samePrefix(bytes: ArrayLike<number>, offset: number, net: number[], mask: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if ((bytes[offset + i] & mask[i]) !== (net[i] & mask[i])) return false;
  return true;
}

/** The first `bits` bits set, of 16 bytes. */
function prefixMask(bits: number): Uint8Array {
  const mask = new Uint8Array(16);
  for (let i = 0; i < 16; i++) mask[i] = bits >= (i + 1) * 8 ? 0xff : bits <= i * 8 ? 0 : (0xff << (8 - (bits - i * 8))) & 0xff;
  return mask;
}


function bytesToNumber(bytes: number[]): number {
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}
