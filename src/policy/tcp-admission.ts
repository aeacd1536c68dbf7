/**
 * Which TCP connections may stay open: the admission policy of tcp.ts, with no sockets in it.
 *
 * - Per client address and per client network (IPv4 /24, IPv6 /56, the prefixes an ISP hands
 *   one customer): over either cap a new connection is refused. A few hosts in one network can
 *   so hold at most `maxPerNetwork` of the table, never all of it.
 * - In total: when the table is full, the connection idle longest is closed to admit the new one
 *   (RFC 7766 §6.2.3: a server may close idle connections, and under pressure should close the
 *   idle ones first). Refusing the newcomer instead would let anyone who opens enough idle
 *   connections deny TCP to everyone, and with it the retry that truncated and rate-limited
 *   (TC=1) UDP answers ask for. A legitimate client sends its query right after connecting,
 *   so it is the connection least likely to be chosen.
 *
 * "Idle" is measured from the last bytes a connection delivered or took (touch(): on each read
 * and each answer flushed to it), so a client slowly reading a burst of pipelined answers is
 * not idle. The table keeps its connections in that order, so the choice costs O(1) per
 * admission, read and write.
 */
import ipaddr from 'ipaddr.js';

export interface AdmissionLimits {
  /** Open connections at most; when full, the longest-idle one makes room. */
  maxConnections: number;
  /** Open connections per client address at most; over it a new one is refused. */
  maxPerAddress: number;
  /** Open connections per client network (IPv4 /24, IPv6 /56) at most; over it a new one is refused. */
  maxPerNetwork: number;
}

/** The prefixes that make one client network (RFC 6177 suggests /56 for an IPv6 customer site). */
export const NETWORK_PREFIX = { ipv4: 24, ipv6: 56 } as const;

/**
 * admit()'s verdict: admitted (closing `evict` first, when not null), or refused and why, with
 * how long to hold the refused connection open before closing it (absent: close at once).
 */
export type Admission<C> = { admitted: true; evict: C | null } | { admitted: false; reason: 'address' | 'network' | 'full'; holdMs?: number };

/**
 * A network refused more often than this within one second is retrying past its cap: its next
 * refused connections are held open, unread, for REFUSED_HOLD_MS before they are closed. Closing
 * at once lets such a client reconnect at once, and each accept-and-close costs this server (and
 * the cores it shares) a little: a /24 reconnecting 1,700 times a second took 12 % of a core.
 * Holding slows the loop to the hold's pace. A client refused now and then (a neighbour in a
 * busy /24) is still closed at once, so it can go to another nameserver without waiting.
 */
export const REFUSALS_BEFORE_HOLD = 16;
export const REFUSED_HOLD_MS = 5000;

/**
 * The client network of an address, as text: "192.0.2.0/24", "2001:db8:0:100::/56". An
 * IPv4-mapped IPv6 address counts as its IPv4 address; text that is no address is its own network.
 */
export function admissionNetworkOf(address: string): string {
  try {
    const parsed = ipaddr.process(address);
    const [family, bits] = parsed.kind() === 'ipv4' ? [ipaddr.IPv4, NETWORK_PREFIX.ipv4] : [ipaddr.IPv6, NETWORK_PREFIX.ipv6];
    return `${family.networkAddressFromCIDR(`${parsed.toString()}/${bits}`).toString()}/${bits}`;
  } catch {
    return address;
  }
}

interface Entry {
  readonly address: string;
  readonly network: string;
}

export class ConnectionTable<C> {
  /** Open connections, the longest idle first (a Map iterates in insertion order). */
  private readonly byIdle = new Map<C, Entry>();
  private readonly perAddress = new Map<string, number>();
  private readonly perNetwork = new Map<string, number>();
  /** Refusals per network in the current one-second window (cleared as a whole each window). */
  private refusals = new Map<string, number>();
  private refusalWindow = -Infinity;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.byIdle.size;
  }

  /**
   * Decides on a new connection from `address`; when admitted it is in the table, and the caller
   * closes `evict` (already removed from the table).
   */
  admit(connection: C, address: string): Admission<C> {
    const network = admissionNetworkOf(address);
    if ((this.perAddress.get(address) ?? 0) >= this.limits.maxPerAddress) return this.refuse(network, 'address');
    if ((this.perNetwork.get(network) ?? 0) >= this.limits.maxPerNetwork) return this.refuse(network, 'network');
    let evict: C | null = null;
    if (this.byIdle.size >= this.limits.maxConnections) {
      const longestIdle = this.byIdle.keys().next();
      if (longestIdle.done) return { admitted: false, reason: 'full' }; // a table of size 0
      evict = longestIdle.value;
      this.remove(evict);
    }
    this.byIdle.set(connection, { address, network });
    bump(this.perAddress, address, 1);
    bump(this.perNetwork, network, 1);
    return { admitted: true, evict };
  }

  private refuse(network: string, reason: 'address' | 'network'): Admission<C> {
    const now = this.now();
    if (now - this.refusalWindow >= 1000) {
      this.refusals = new Map();
      this.refusalWindow = now;
    }
    const count = (this.refusals.get(network) ?? 0) + 1;
    this.refusals.set(network, count);
    return count > REFUSALS_BEFORE_HOLD ? { admitted: false, reason, holdMs: REFUSED_HOLD_MS } : { admitted: false, reason };
  }

  /** `connection` delivered or took bytes: it becomes the last to be chosen for closing. */
  touch(connection: C): void {
    const entry = this.byIdle.get(connection);
    if (entry === undefined) return;
    this.byIdle.delete(connection);
    this.byIdle.set(connection, entry);
  }

  /** Forgets a closed connection; a connection already forgotten is ignored. */
  remove(connection: C): void {
    const entry = this.byIdle.get(connection);
    if (entry === undefined) return;
    this.byIdle.delete(connection);
    bump(this.perAddress, entry.address, -1);
    bump(this.perNetwork, entry.network, -1);
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}
