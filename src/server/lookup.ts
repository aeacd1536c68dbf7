/**
 * qname + qtype -> lookup result kind (REFUSED, referral, NXDOMAIN, NODATA, answer). No bytes.
 * The hot path is two map reads: the zone (by walking the name's suffixes) and the node's
 * precomputed result for this type.
 */
import { QTYPE } from '../dns/constants.js';
import { resolveNode, rrsetOf } from '../model/resolve.js';
import type { LookupResult, ZoneModel, ZoneSet } from '../model/zone-model.js';

export const REFUSED: LookupResult = Object.freeze({ kind: 'refused' });

/** The most specific zone containing `qname` (lower-case, no trailing dot). */
export function findZone(zones: ZoneSet, qname: string): ZoneModel | undefined {
  const map = zones.zones;
  let name = qname;
  for (;;) {
    const zone = map.get(name);
    if (zone !== undefined) return zone;
    if (name.length === 0) return undefined;
    const dot = name.indexOf('.');
    name = dot < 0 ? '' : name.slice(dot + 1);
  }
}

export function lookup(zones: ZoneSet, qname: string, qtype: number): LookupResult {
  const zone = findZone(zones, qname);
  if (zone === undefined) return REFUSED;
  if (zone.cuts.size > 0) {
    // At or below a delegation point: refer (RFC 1034 §4.3.2 step 3b). DS would be answered
    // by the parent side of the cut, but we do not sign, so there is none to give.
    let name = qname;
    while (name.length > zone.origin.length) {
      const referral = zone.cuts.get(name);
      if (referral !== undefined) return referral;
      const dot = name.indexOf('.');
      if (dot < 0) break;
      name = name.slice(dot + 1);
    }
  }
  const node = zone.nodes.get(qname);
  if (node === undefined) return zone.emptyNonTerminals.has(qname) ? zone.nodata : zone.nxdomain;
  const known = node.results?.get(qtype);
  if (known !== undefined) return known;
  const result = resolveNode(zone, node, qtype);
  // Memoized for the types a node is likely asked for (A, AAAA, ANY, its own types), so the map
  // stays bounded whatever types clients send. resolveNode reads only the frozen zone. The map
  // is created here, on the name's first lookup, not per name at compile time (bench/scale: memory per name).
  if (qtype === QTYPE.A || qtype === QTYPE.AAAA || qtype === QTYPE.ANY || qtype === QTYPE.CNAME || rrsetOf(node, qtype) !== undefined) {
    (node.results ??= new Map()).set(qtype, result);
  }
  return result;
}

export { QTYPE };
