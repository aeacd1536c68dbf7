/**
 * A signed zone's signatures and its denial-of-existence chain, as made at load by
 * dnssec/sign-zone.ts, and the pure reads dns/response.ts makes of them for a DO=1 answer:
 * which RRSIG covers an RRset, which NSEC records prove that a name or type does not exist
 * (RFC 4035 §3.1.3). Nothing here signs: every record read on the query path was made at load,
 * except the Pool/Group/Site answers past the precomputed bound (`signVariant`).
 */
import type { Selection } from './selection.js';
import type { RRset, ZoneModel, ZoneSignatures, NsecChain } from './zone-model.js';
import { ownedBy, wildcardFor } from './resolve.js';
import { encodeName, nameLabels, parentName } from '../dns/encode.js';
import { nsec3HashOfWire, spanIndex } from '../dns/canonical-order.js';

export function rrsetKey(owner: string, type: number): string {
  return `${type}/${owner}`;
}

/**
 * RFC 4034 §6.1 canonical name order as a string key: labels from the root down, joined by a
 * byte below every label byte, so that comparing keys as strings orders the names canonically
 * (a name before its descendants, labels compared as octet strings; compiled names are lower case).
 * The labels are the wire labels: a question's "." inside a label is one of its bytes.
 */
export function canonicalKey(name: string): string {
  return name.length === 0 ? '' : nameLabels(name).reverse().join('\u0000') + '\u0000';
}

/**
 * The key of a Pool/Group/Site answer: its family and the ids of the chosen sites that have an
 * address of it, sorted (the set, not the order), or `sorry`.
 */
export function variantKey(selection: Extract<Selection, { kind: 'sites' | 'sorry' }>, family: 4 | 6): string {
  if (selection.kind === 'sorry') return `${family}:sorry`;
  const sites = selection.sites;
  if (sites.length === 1) return `${family}:${sites[0].id}`;
  const ids: string[] = [];
  for (const site of sites) if ((family === 4 ? site.v4 : site.v6).length > 0) ids.push(site.id);
  return `${family}:${ids.sort().join(',')}`;
}

/**
 * The RRSIGs of `set`, an RRset of the zone's data or one a wildcard synthesized (then the
 * wildcard's RRSIGs, owned by the name asked, RFC 4035 §3.1.3.3); `expanded` is set for those.
 */
export function rrsigOf(zone: ZoneModel, signatures: ZoneSignatures, set: RRset): { rrsig: RRset; expanded: boolean } | undefined {
  const own = signatures.rrsigs.get(rrsetKey(set.owner, set.type));
  if (own !== undefined) return { rrsig: own, expanded: false };
  const wildcard = wildcardFor(zone, set.owner);
  if (wildcard === undefined) return undefined;
  const source = signatures.rrsigs.get(rrsetKey(wildcard.name, set.type));
  return source === undefined ? undefined : { rrsig: ownedBy(source, set.owner), expanded: true };
}

/** The NSEC3 hash of `name` (RFC 5155 §5, RFC 9276 §3.1 parameters; dns/canonical-order.ts). */
export function nsec3Hash(name: string): string {
  return nsec3HashOfWire(encodeName(name));
}

function chainKey(chain: NsecChain, name: string): string {
  return chain.hashed ? nsec3Hash(name) : canonicalKey(name);
}

/**
 * The chain index of the record whose owner matches `name` or covers it: the last at or before
 * it, or for a name before the first hash, the last (the NSEC3 chain wraps round, RFC 5155 §7.1).
 */
function coveringIndex(chain: NsecChain, name: string): number {
  return spanIndex(chain.keys, chainKey(chain, name));
}


/** Whether the chain holds a record for `name` itself (an NSEC owned by it, an NSEC3 of its hash). */
function matches(chain: NsecChain, name: string): boolean {
  return chain.keys[coveringIndex(chain, name)] === chainKey(chain, name);
}

/** Appends the record at `index` and its RRSIGs to `out`, once. */
function addNsec(chain: NsecChain, index: number, out: RRset[]): void {
  const nsec = chain.nsec[index];
  if (out.includes(nsec)) return;
  out.push(nsec, chain.rrsig[index]);
}

/** The record matching or covering `name`, with its RRSIGs (RFC 4035 §3.1.3, RFC 5155 §7.2). */
function proveName(signatures: ZoneSignatures, name: string, out: RRset[]): void {
  addNsec(signatures.chain, coveringIndex(signatures.chain, name), out);
}

/** The NSEC RRset owned by `name` and its RRSIGs, or undefined (no NSEC there, or an NSEC3 chain). */
export function nsecAt(signatures: ZoneSignatures, name: string): readonly [RRset, RRset] | undefined {
  const chain = signatures.chain;
  if (chain.hashed) return undefined;
  const i = coveringIndex(chain, name);
  return chain.nsec[i].owner === name ? [chain.nsec[i], chain.rrsig[i]] : undefined;
}

/** The closest encloser of `name` (RFC 4592 §3.3.1): its nearest ancestor that exists in `zone`. */
function closestEncloser(zone: ZoneModel, name: string): string {
  let n = name;
  while (n.length > zone.origin.length) {
    n = parentName(n);
    if (n === zone.origin || zone.nodes.has(n) || zone.emptyNonTerminals.has(n)) return n;
  }
  return zone.origin;
}

/** RFC 5155 §1.3: the name one label longer than the closest encloser `encloser`, toward `name`. */
function nextCloser(name: string, encloser: string): string {
  let n = name;
  for (let up = parentName(n); up.length > encloser.length; up = parentName(up)) n = up;
  return n;
}

/**
 * The closest provable encloser of `name` (RFC 5155 §1.3, §7.2.1): its closest encloser, or
 * with opt-out, where that is an empty non-terminal left out of the chain, the nearest ancestor
 * that has its NSEC3.
 */
function provableEncloser(zone: ZoneModel, chain: NsecChain, name: string): string {
  let encloser = closestEncloser(zone, name);
  if (chain.optOut) while (encloser.length > zone.origin.length && !matches(chain, encloser)) encloser = parentName(encloser);
  return encloser;
}

const wildcardAt = (encloser: string): string => (encloser.length === 0 ? '*' : `*.${encloser}`);

/** RFC 5155 §7.2.1: the closest encloser proof: its NSEC3, and the NSEC3 covering the next closer name. */
function closestEncloserProof(signatures: ZoneSignatures, name: string, encloser: string, out: RRset[]): void {
  proveName(signatures, encloser, out);
  proveName(signatures, nextCloser(name, encloser), out);
}

/**
 * NXDOMAIN proves that `name` does not exist and that no wildcard could have answered it: the
 * NSEC covering the name and the NSEC covering `*.<closest encloser>` (RFC 4035 §3.1.3.2); with
 * NSEC3 the closest encloser proof and the NSEC3 covering the wildcard (RFC 5155 §7.2.2).
 */
export function nxdomainProof(zone: ZoneModel, signatures: ZoneSignatures, name: string, out: RRset[]): void {
  const encloser = provableEncloser(zone, signatures.chain, name);
  if (signatures.chain.hashed) closestEncloserProof(signatures, name, encloser, out);
  else proveName(signatures, name, out);
  proveName(signatures, wildcardAt(encloser), out);
}

/**
 * NODATA proves the type absent: the record of the name itself (RFC 4035 §3.1.3.1, RFC 5155
 * §7.2.3; with NSEC, an empty non-terminal's covering NSEC; with opt-out, `existingNameProof`);
 * for a name a wildcard answers, the proof that the name does not exist and the wildcard's own
 * record (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5).
 */
export function nodataProof(zone: ZoneModel, signatures: ZoneSignatures, name: string, out: RRset[]): void {
  if (zone.nodes.has(name) || zone.emptyNonTerminals.has(name) || zone.cuts.has(name)) {
    existingNameProof(zone, signatures, name, out);
    return;
  }
  const wildcard = wildcardFor(zone, name);
  if (wildcard === undefined) {
    proveName(signatures, name, out);
    return;
  }
  if (signatures.chain.hashed) closestEncloserProof(signatures, name, closestEncloser(zone, name), out);
  else proveName(signatures, name, out);
  proveName(signatures, wildcard.name, out);
}

/**
 * A wildcard expansion proves that the name asked does not exist (RFC 4035 §3.1.3.3): the NSEC
 * covering it, or the NSEC3 covering its next closer name (RFC 5155 §7.2.6).
 */
export function wildcardAnswerProof(zone: ZoneModel, signatures: ZoneSignatures, name: string, out: RRset[]): void {
  proveName(signatures, signatures.chain.hashed ? nextCloser(name, closestEncloser(zone, name)) : name, out);
}

/**
 * The record of `name`, a name of the zone, its types; at a delegation point (a referral without
 * DS, a DS query) it proves no DS (RFC 4035 §3.1.4, RFC 5155 §7.2.7). With opt-out, for a
 * delegation without DS or an empty non-terminal above only such (no NSEC3 of their own), the
 * closest provable encloser proof instead, the next closer name covered by an Opt-Out NSEC3
 * (RFC 5155 §7.2.4, §7.2.7): no signed data exists there, so the delegation is insecure.
 */
export function existingNameProof(zone: ZoneModel, signatures: ZoneSignatures, name: string, out: RRset[]): void {
  const chain = signatures.chain;
  if (chain.optOut && !matches(chain, name)) closestEncloserProof(signatures, name, provableEncloser(zone, chain, name), out);
  else proveName(signatures, name, out);
}

/**
 * A Pool/Group/Site Name's NODATA for `type` (A or AAAA, chosen by its policy): the name's
 * record without that type (dnssec/sign-zone.ts signs one per type at load). For a wildcard
 * Pool/Group/Site Name answering `owner`, first the proof that `owner` does not exist (RFC 4035
 * §3.1.3.4; with NSEC3 the closest encloser proof, RFC 5155 §7.2.5).
 */
export function dynamicNodataProof(zone: ZoneModel, signatures: ZoneSignatures, name: string, owner: string, type: number, out: RRset[]): void {
  if (owner !== name) {
    if (signatures.chain.hashed) closestEncloserProof(signatures, owner, closestEncloser(zone, owner), out);
    else proveName(signatures, owner, out);
  }
  const proof = signatures.chain.withoutAddress.get(rrsetKey(name, type));
  if (proof === undefined) proveName(signatures, name, out);
  else if (!out.includes(proof[0])) out.push(proof[0], proof[1]);
}
