/**
 * qname + qtype -> lookup result kind (REFUSED, referral, NXDOMAIN, NODATA, answer). No bytes.
 * The hot path is two map reads: the zone (by walking the name's suffixes, model/resolve.ts's
 * findZone) and the node's memoized result for this type. A name that does not exist walks up
 * once more, to its closest encloser's wildcard (model/resolve.ts), when the zone has any.
 */
import { QTYPE } from '../dns/constants.js';
import { atDelegation, findZone, parentSideDs, resolveNode, rrsetOf, wildcardFor } from '../model/resolve.js';
import type { LookupResult, ZoneSet } from '../model/zone-model.js';

export const REFUSED: LookupResult = Object.freeze({ kind: 'refused' });

export function lookup(zones: ZoneSet, qname: string, qtype: number): LookupResult {
  const zone = findZone(zones, qname);
  if (zone === undefined) return REFUSED;
  if (qtype === QTYPE.DS && qname === zone.origin && zones.nested) {
    const parentSide = parentSideDs(zones, qname);
    if (parentSide !== undefined) return parentSide;
  }
  const delegated = atDelegation(zone, qname, qtype);
  if (delegated !== undefined) return delegated;
  const node = zone.nodes.get(qname);
  if (node === undefined) {
    if (zone.emptyNonTerminals.has(qname)) return zone.nodata;
    // RFC 4592 §3.3.1: synthesized from the closest encloser's wildcard, owned by this name, so
    // not memoized on the wildcard's node.
    const wildcard = wildcardFor(zone, qname);
    return wildcard === undefined ? zone.nxdomain : resolveNode(zones, zone, wildcard, qtype, qname);
  }
  // A node's results are kept across reloads that keep its zone, so they must not depend on the
  // other zones of the set. Only a CNAME chain reaches beyond its node's zone (a target may belong
  // to a zone inside this one), so where zones nest a CNAME's results are not memoized.
  if (zones.nested && node.cname !== undefined) return resolveNode(zones, zone, node, qtype);
  const known = node.results?.get(qtype);
  if (known !== undefined) return known;
  const result = resolveNode(zones, zone, node, qtype);
  // Memoized for the types a node is likely asked for (A, AAAA, ANY, its own types), so the map
  // stays bounded whatever types clients send. The map is created here, on the name's first
  // lookup, not per name at compile time (bench/scale: memory per name).
  if (qtype === QTYPE.A || qtype === QTYPE.AAAA || qtype === QTYPE.ANY || qtype === QTYPE.CNAME || rrsetOf(node, qtype) !== undefined) {
    (node.results ??= new Map()).set(qtype, result);
  }
  return result;
}

export { QTYPE };
