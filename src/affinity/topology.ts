/**
 * The default "Determine proper Group for this request" (seed 004 stage 530, Appendix B): the
 * zone's own topology, so the web sites and the nameserver place a client in the same group.
 * Longest-prefix match of the client address against the pool's compiled rules (already sorted
 * longest first by config/compile.ts), else the pool's `default` group, else none (the seed's
 * "no groups": any site of the pool is proper).
 */
import ipaddr from 'ipaddr.js';
import type { GroupModel, PoolModel, TopologyRule } from '../model/zone-model.js';

function matches(rule: TopologyRule, bytes: number[]): boolean {
  const whole = rule.prefix >> 3;
  for (let i = 0; i < whole; i++) if (bytes[i] !== rule.bytes[i]) return false;
  const rest = rule.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[whole] & mask) === rule.bytes[whole];
}

/** The group for a client address, or undefined (also for an address that does not parse). */
export function groupByTopology(pool: PoolModel | undefined, address: string | undefined): GroupModel | undefined {
  if (!pool) return undefined;
  if (address === undefined || !ipaddr.isValid(address)) return pool.defaultGroup;
  // process(): an IPv4-mapped IPv6 address (::ffff:192.0.2.1, as a dual-stack socket reports
  // IPv4 clients) is matched as the IPv4 address it carries.
  const parsed = ipaddr.process(address);
  const family = parsed.kind() === 'ipv4' ? 4 : 6;
  const bytes = parsed.toByteArray();
  for (const rule of pool.topology) {
    if (rule.family === family && matches(rule, bytes)) return rule.group;
  }
  return pool.defaultGroup;
}
