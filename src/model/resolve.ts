/**
 * Name resolution inside one zone (RFC 1034 §4.3.2, for an authoritative server): from a node and
 * a query type to a result kind. Pure; used at compile time to precompute the common results and
 * at query time for the rest.
 */
import { QTYPE } from '../dns/constants.js';
import type { DynamicName, LookupResult, NameNode, RRset, ZoneModel } from './zone-model.js';

/** Longest CNAME chain followed inside a zone before answering what we have. */
export const MAX_CNAME_CHAIN = 8;

/** RFC 8482 §4.2: answer ANY with one RRset; these types are preferred, in order. */
const ANY_PREFERENCE = [QTYPE.A, QTYPE.AAAA, QTYPE.CNAME, QTYPE.MX, QTYPE.TXT, QTYPE.NS, QTYPE.SOA];

export function resolveNode(zone: ZoneModel, node: NameNode, qtype: number): LookupResult {
  const chain: RRset[] = [];
  let current: NameNode | undefined = node;
  let type = qtype;
  for (let depth = 0; current !== undefined; depth++) {
    if (type === QTYPE.ANY) type = anyType(current);
    if (current.cname !== undefined && type !== QTYPE.CNAME) {
      chain.push(current.cname);
      if (depth + 1 >= MAX_CNAME_CHAIN) return answerOf(zone, chain, undefined, 4, []);
      const target = current.cname.records[0].rdata[0] as { name: string };
      const next = zone.nodes.get(target.name);
      // Out of zone or missing target: the client's resolver continues from the CNAME.
      if (next === undefined || chain.some((c) => c.owner === target.name)) return chain.length > 0 ? answerOf(zone, chain, undefined, 4, []) : zone.nodata;
      current = next;
      continue;
    }
    if (current.dynamic !== undefined && (type === QTYPE.A || type === QTYPE.AAAA)) {
      return answerOf(zone, chain, current.dynamic, type === QTYPE.A ? 4 : 6, []);
    }
    const rrset = type === QTYPE.CNAME && current.cname !== undefined ? current.cname : rrsetOf(current, type);
    if (rrset !== undefined) {
      chain.push(rrset);
      const additional = type === QTYPE.NS && current.name === zone.origin ? zone.apexGlue : [];
      return answerOf(zone, chain, undefined, 4, additional);
    }
    if (chain.length > 0) return answerOf(zone, chain, undefined, 4, []);
    return zone.nodata;
  }
  return zone.nodata;
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
): LookupResult {
  return Object.freeze({ kind: 'answer', zone, answer: Object.freeze(answer), dynamic, family, additional });
}
