/**
 * Client network -> group (seeds 003/004; `pool.topology`), for Pool Names only (Group Names
 * ignore topology). The client is the EDNS Client Subnet when the query has one with a non-zero
 * source prefix (RFC 7871 §7.1.2), else the resolver's address. Rules are sorted longest prefix
 * first at compile time, so the first rule that contains the client wins; no rule: the
 * `default` group, or the whole pool when there is none.
 *
 * The ECS scope prefix (RFC 7871 §7.2.1) is the shortest prefix of the client's address over
 * which this choice of group holds: at least the matched rule's prefix, and long enough to leave
 * out any more specific rule for another group that shares those bits. It may exceed the source
 * prefix when such a rule sits inside the client's network (§7.2.1 allows that).
 */
import ipaddr from 'ipaddr.js';
import { parseDottedQuad } from '../util/ipv4.js';
import type { GroupModel, PoolModel, TopologyRule } from '../model/zone-model.js';
import type { ClientInfo } from './types.js';

export interface ClientNetwork {
  readonly family: 4 | 6;
  /** 4 or 16 bytes; bits beyond the prefix are zero for ECS. */
  readonly bytes: Uint8Array;
  /** True when the network came from ECS (the response then carries a scope). */
  readonly fromEcs: boolean;
}

export interface TopologyMatch {
  /** The client's group, or undefined: answer from the whole pool. */
  readonly group: GroupModel | undefined;
  /** ECS scope prefix for the response; undefined without ECS. */
  readonly scope: number | undefined;
}

/** The client's network for topology: ECS when usable, else the resolver's address. */
export function clientNetwork(client: ClientInfo): ClientNetwork | undefined {
  const ecs = client.ecs;
  if (ecs !== null && ecs.sourcePrefix > 0) {
    return { family: ecs.family === 1 ? 4 : 6, bytes: ecs.address, fromEcs: true };
  }
  const bytes = addressBytes(client.address);
  return bytes === undefined ? undefined : { family: bytes.length === 4 ? 4 : 6, bytes, fromEcs: false };
}

/** Address text -> bytes; IPv4-mapped IPv6 (a dual-stack socket's view of IPv4) -> IPv4. */
export function addressBytes(address: string): Uint8Array | undefined {
  // The common case, a dotted quad from the transport, read by hand (this runs per query).
  const quad = parseDottedQuad(address);
  if (quad >= 0) return Uint8Array.of(quad >>> 24, (quad >>> 16) & 0xff, (quad >>> 8) & 0xff, quad & 0xff);
  if (!ipaddr.isValid(address)) return undefined;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  return Uint8Array.from(parsed.toByteArray());
}

/** Leading bits `a` and `b` share, up to `limit`. */
export function commonPrefixBits(a: Uint8Array, b: Uint8Array, limit: number): number {
  let bits = 0;
  for (let i = 0; bits < limit; i++) {
    const diff = a[i] ^ b[i];
    if (diff !== 0) return Math.min(limit, bits + Math.clz32(diff) - 24);
    bits += 8;
  }
  return limit;
}

export function matchTopology(pool: PoolModel, client: ClientInfo): TopologyMatch {
  const ecsZero = client.ecs !== null && client.ecs.sourcePrefix === 0;
  const net = clientNetwork(client);
  if (net === undefined) return { group: pool.defaultGroup, scope: ecsZero ? 0 : undefined };
  let matched: TopologyRule | undefined;
  for (const rule of pool.topology) {
    if (rule.family === net.family && commonPrefixBits(net.bytes, rule.bytes, rule.prefix) === rule.prefix) {
      matched = rule;
      break;
    }
  }
  const group = matched?.group ?? pool.defaultGroup;
  if (!net.fromEcs) return { group, scope: ecsZero ? 0 : undefined };
  let scope = matched?.prefix ?? 0;
  for (const rule of pool.topology) {
    if (rule.family !== net.family || rule.group === group || rule.prefix <= scope) continue;
    // A more specific rule for another group: exclude it with one more bit than they share
    // (it cannot contain the client, or it would have matched first).
    const shared = commonPrefixBits(net.bytes, rule.bytes, rule.prefix);
    if (shared >= scope) scope = shared + 1;
  }
  return { group, scope };
}
