/**
 * Name resolution inside one zone (RFC 1034 §4.3.2, for an authoritative server): from a node and
 * a query type to a result kind. Pure: reads only the frozen zones (server/lookup.ts memoizes
 * the results per node).
 */
import { QTYPE } from '../dns/constants.js';
import { parentName } from '../dns/encode.js';
import type { DynamicName, LookupResult, NameNode, RRset, ZoneModel, ZoneSet } from './zone-model.js';

/** Longest CNAME chain followed inside a zone before answering what we have. */
export const MAX_CNAME_CHAIN = 8;

/** RFC 8482 §4.2: answer ANY with one RRset; these types are preferred, in order. */
const ANY_PREFERENCE = [QTYPE.A, QTYPE.AAAA, QTYPE.CNAME, QTYPE.MX, QTYPE.TXT, QTYPE.NS, QTYPE.SOA];

/** The most specific served zone containing `name` (lower-case, no trailing dot). */
export function findZone(zones: ZoneSet, name: string): ZoneModel | undefined {
  const map = zones.zones;
  let n = name;
  for (;;) {
    const zone = map.get(n);
    if (zone !== undefined) return zone;
    if (n.length === 0) return undefined;
    n = parentName(n);
  }
}

/**
 * DS at the apex of a served zone whose enclosing served zone delegates it here: the parent
 * side's answer (RFC 4035 §3.1.4.1, RFC 5155 §7.2.4), the DS RRset or its NODATA, since the child
 * holds no DS of its own. Undefined when the enclosing zone has no cut at `apex` (a zone nested
 * without delegation answers for itself) or no served zone encloses it.
 */
export function parentSideDs(zones: ZoneSet, apex: string): LookupResult | undefined {
  if (apex.length === 0) return undefined;
  const parent = findZone(zones, parentName(apex));
  if (parent === undefined || !parent.cuts.has(apex)) return undefined;
  return atDelegation(parent, apex, QTYPE.DS);
}

/**
 * What a name at or below a delegation point of `zone` answers: the referral (RFC 1034 §4.3.2
 * step 3b); but DS at the cut itself is the parent side's to answer, authoritatively (RFC 4035
 * §3.1.4.1): the DS RRset the zone holds there, else NODATA. Undefined for a name of the zone's own.
 */
export function atDelegation(zone: ZoneModel, name: string, qtype: number): LookupResult | undefined {
  if (zone.cuts.size === 0) return undefined;
  let n = name;
  while (n.length > zone.origin.length) {
    const referral = zone.cuts.get(n);
    if (referral !== undefined) {
      if (qtype !== QTYPE.DS || n !== name) return referral;
      return referral.ds === undefined ? zone.nodata : answerOf(zone, [referral.ds], undefined, 4, [], name);
    }
    n = parentName(n);
  }
  return undefined;
}

/**
 * `node`'s answer for `qtype`, following CNAMEs inside the zone (RFC 1034 §4.3.2 step 3a). Where
 * the chain ends decides the kind: the type's RRset (answer); a name without it (NODATA, RFC
 * 2308 §3) or no name at all (NXDOMAIN, RFC 6604 §3), both with the chain; a delegation (the
 * chain plus the referral, step 3b; for DS at the cut, the chain plus the DS the zone holds
 * there, else NODATA); out of the zone, a loop or too long (the chain: the client's resolver
 * continues from the last CNAME). A target that does not exist is answered by its closest
 * encloser's wildcard when there is one (RFC 4592 §3.3.1, nodeAt). `name` is the name asked: the
 * node's own, or one its wildcard answers for; every RRset taken from a wildcard node is written
 * with the name it answers for (RFC 4592 §3.3.1).
 */
export function resolveNode(zones: ZoneSet, zone: ZoneModel, node: NameNode, qtype: number, name: string = node.name): LookupResult {
  const chain: RRset[] = [];
  let current = node;
  let owner = name;
  let type = qtype;
  for (let depth = 1; ; depth++) {
    if (type === QTYPE.ANY) type = anyType(current);
    if (current.cname !== undefined && type !== QTYPE.CNAME) {
      chain.push(ownedBy(current.cname, owner));
      const target = (current.cname.records[0].rdata[0] as { name: string }).name;
      if (depth >= MAX_CNAME_CHAIN || chain.some((c) => c.owner === target) || findZone(zones, target) !== zone) return answerOf(zone, chain, undefined, 4, [], owner);
      const delegated = atDelegation(zone, target, type);
      if (delegated !== undefined) {
        if (delegated.kind === 'referral') return Object.freeze({ ...delegated, answer: Object.freeze(chain) });
        // DS at the cut the chain ends at: the parent side's DS RRset (RFC 4035 §3.1.4.1).
        return delegated.kind === 'answer' ? answerOf(zone, [...chain, ...delegated.answer], undefined, 4, [], owner) : negativeOf('nodata', zone, chain);
      }
      const next = nodeAt(zone, target);
      if (next === undefined) return negativeOf(zone.emptyNonTerminals.has(target) ? 'nodata' : 'nxdomain', zone, chain);
      current = next;
      owner = target;
      continue;
    }
    if (current.dynamic !== undefined && (type === QTYPE.A || type === QTYPE.AAAA)) {
      return answerOf(zone, chain, current.dynamic, type === QTYPE.A ? 4 : 6, [], owner);
    }
    const rrset = type === QTYPE.CNAME && current.cname !== undefined ? current.cname : rrsetOf(current, type);
    if (rrset !== undefined) {
      chain.push(ownedBy(rrset, owner));
      const additional = type === QTYPE.NS && current.name === zone.origin ? zone.apexGlue : [];
      return answerOf(zone, chain, undefined, 4, additional, owner);
    }
    return chain.length > 0 ? negativeOf('nodata', zone, chain) : zone.nodata;
  }
}

/**
 * The node that answers `name` inside `zone`: its own, or the wildcard of its closest encloser
 * when the name does not exist; undefined for an empty non-terminal, a name at or below a
 * delegation, or a name that does not exist and matches no wildcard.
 */
function nodeAt(zone: ZoneModel, name: string): NameNode | undefined {
  return zone.nodes.get(name) ?? (zone.emptyNonTerminals.has(name) ? undefined : wildcardFor(zone, name));
}

/**
 * RFC 4592 §3.3.1: the source of synthesis for `name`, a name of `zone` that does not exist: the
 * wildcard child of its closest encloser (the nearest ancestor that exists, data or empty
 * non-terminal), if that has one. A closer existing name blocks wildcards above it. No wildcard
 * answers at or below a delegation: those names are referred (RFC 1034 §4.3.2 step 3b).
 */
export function wildcardFor(zone: ZoneModel, name: string): NameNode | undefined {
  if (zone.wildcards.size === 0) return undefined;
  const origin = zone.origin;
  let encloser = name;
  while (encloser.length > origin.length) {
    if (zone.cuts.has(encloser)) return undefined;
    encloser = parentName(encloser);
    if (encloser === origin || zone.nodes.has(encloser) || zone.emptyNonTerminals.has(encloser)) return zone.wildcards.get(encloser);
  }
  return undefined;
}

/** `set` as owned by `owner`: itself, or a copy for the name a wildcard answers (RFC 4592 §3.3.1). */
export function ownedBy(set: RRset, owner: string): RRset {
  if (set.owner === owner) return set;
  const records = set.records.map((r) => Object.freeze({ ...r, owner }));
  return Object.freeze({ ...set, owner, records: Object.freeze(records) });
}

function anyType(node: NameNode): number {
  if (node.dynamic !== undefined) return node.dynamic.sites.some((s) => s.v4.length > 0) ? QTYPE.A : QTYPE.AAAA;
  for (const t of ANY_PREFERENCE) if (rrsetOf(node, t) !== undefined || (t === QTYPE.CNAME && node.cname)) return t;
  return node.rrsets.length > 0 ? node.rrsets[0].type : QTYPE.ANY;
}

/** The node's RRset of `type` (not its CNAME: that is `node.cname`). */
export function rrsetOf(node: NameNode, type: number): RRset | undefined {
  const sets = node.rrsets;
  for (let i = 0; i < sets.length; i++) if (sets[i].type === type) return sets[i];
  return undefined;
}

function answerOf(
  zone: ZoneModel,
  answer: RRset[],
  dynamic: DynamicName | undefined,
  family: 4 | 6,
  additional: readonly RRset[],
  dynamicOwner: string,
): LookupResult {
  return Object.freeze({ kind: 'answer', zone, answer: Object.freeze(answer), dynamic, dynamicOwner, family, additional });
}

function negativeOf(kind: 'nodata' | 'nxdomain', zone: ZoneModel, chain: RRset[]): LookupResult {
  return Object.freeze({ kind, zone, answer: Object.freeze(chain) });
}
