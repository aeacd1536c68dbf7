/**
 * Signs a compiled zone at load (config/compile.ts calls this before it freezes the zone): every
 * RRset of the zone's own data, the apex DNSKEY, CDS and CDNSKEY RRsets with the key-signing
 * keys (RFC 4035 §2.1, RFC 7344 §4.1), the NSEC chain (RFC 4034 §4, RFC 4035 §2.3) and the
 * answers of each Pool/Group/Site Name up to MAX_VARIANTS_PER_FAMILY; past those, a query signs
 * the one answer it chose, once, kept in a cache of VARIANT_CACHE_SIZE (`signVariant`).
 *
 * Not signed (RFC 4035 §2.2): the NS RRset at a delegation and glue below it, which the parent
 * side does not own.
 */
import { DNSSEC_TYPE, QTYPE } from '../dns/constants.js';
import { dnskeyRdata, type Rdata } from '../dns/records.js';
import { keyDsRdata } from './dnskey.js';
import type { DnssecSettings, DynamicName, NsecChain, RRset, SiteModel, ZoneModel, ZoneSignatures } from '../model/zone-model.js';
import { canonicalKey, nsec3Hash, rrsetKey } from '../model/signatures.js';
import { base32hexInto, NSEC3_DIGEST_BYTES, spanIndex } from '../dns/canonical-order.js';
import { parentName } from '../dns/encode.js';
import { pauseEvery, type Steps } from '../util/slices.js';
import { INCEPTION_SKEW_MS, signatureWindow, signNow, signRRset, type SignatureSource, type SignatureWindow } from './sign.js';
import type { SigningKey, ZoneKeySet } from './types.js';

/** RRsets signed between two pause points: a few milliseconds of signing. */
const SETS_PER_STEP = 32;

/**
 * Precomputed answers per Pool/Group/Site Name and family, beyond which site combinations of
 * `answers: N` are signed on first use instead (a pool of 20 sites answering 3 has 1,350
 * combinations: signing them all at every load would cost more than the zone's other data).
 */
export const MAX_VARIANTS_PER_FAMILY = 64;
/** Answers past the precomputed ones kept signed per zone (least recently made out first). */
export const VARIANT_CACHE_SIZE = 1024;

/** The RRset types whose RRSIGs the key-signing keys make (RFC 7344 §4.1, RFC 4035 §2.1). */
const KEY_SIGNED = new Set<number>([DNSSEC_TYPE.DNSKEY, DNSSEC_TYPE.CDS, DNSSEC_TYPE.CDNSKEY]);

/**
 * The apex RRsets signing adds: DNSKEY (every published key), CDS (SHA-256, RFC 4509) and
 * CDNSKEY for the keys the parent should hold (RFC 7344 §3, RFC 8078), and with NSEC3 the
 * NSEC3PARAM (RFC 5155 §4: SHA-1, flags 0, no extra iterations, no salt), as type -> RDATA.
 */
export function apexKeyRdata(origin: string, keys: ZoneKeySet, settings: DnssecSettings): [number, Rdata[]][] {
  const dnskey = (key: SigningKey): Rdata => dnskeyRdata(key.flags, key.algorithm, key.publicKey);
  const out: [number, Rdata[]][] = [[DNSSEC_TYPE.DNSKEY, keys.published.map(dnskey)]];
  if (keys.parentSignals.length > 0) out.push([DNSSEC_TYPE.CDS, keys.parentSignals.map((key) => keyDsRdata(origin, key))], [DNSSEC_TYPE.CDNSKEY, keys.parentSignals.map(dnskey)]);
  // Flags 0 with opt-out too: Opt-Out is a flag of NSEC3 records only (RFC 5155 §4.1.2).
  if (settings.denial !== 'nsec') out.push([DNSSEC_TYPE.NSEC3PARAM, [[Buffer.from([1, 0, 0, 0, 0])]]]);
  return out;
}

/** What signing reads of the zone being compiled (config/compile.ts, before the zone is frozen). */
export type ZoneToSign = Pick<ZoneModel, 'origin' | 'nodes' | 'emptyNonTerminals' | 'wildcards' | 'cuts' | 'dynamicNames' | 'negativeSoa' | 'negativeTtl'>;

/**
 * The zone's signatures at `nowMs`. `signatures` gives the signature field of each RRSIG made at
 * load, in the order made here (the same zone and keys: the same order; dnssec/signature-bytes.ts
 * records and replays them); an answer signed on first use (`signVariant`) is always signed now.
 */
export function* signZoneSteps(zone: ZoneToSign, keys: ZoneKeySet, settings: DnssecSettings, nowMs: number, signatures: SignatureSource = signNow): Steps<Omit<ZoneSignatures, 'bytes'>> {
  const pause = pauseEvery(SETS_PER_STEP);
  const window = signatureWindow(nowMs, settings.validityMs);
  const signer = zone.origin;
  const signWith = (source: SignatureSource) => (set: RRset, originalTtl = set.ttl): RRset => {
    const signing = KEY_SIGNED.has(set.type) && set.owner === signer ? keys.keySigning : keys.zoneSigning;
    return rrsigSet(set, signing, signer, window, originalTtl, source);
  };
  const sign = signWith(signatures);
  const signOnUse = signWith(signNow);

  const rrsigs = new Map<string, RRset>();
  for (const node of zone.nodes.values()) {
    if (pause()) yield;
    for (const set of node.rrsets) rrsigs.set(rrsetKey(set.owner, set.type), sign(set));
    if (node.cname !== undefined) rrsigs.set(rrsetKey(node.cname.owner, node.cname.type), sign(node.cname));
  }
  // RFC 4035 §2.4: the DS RRset at a delegation point is the parent's, signed here.
  for (const referral of zone.cuts.values()) if (referral.ds !== undefined) rrsigs.set(rrsetKey(referral.ds.owner, referral.ds.type), sign(referral.ds));
  const soa = rrsigs.get(rrsetKey(signer, QTYPE.SOA))!;
  // The SOA of a negative answer carries the negative TTL; its RRSIGs vouch for the zone's TTL.
  const negativeSoa = withTtl(soa, zone.negativeSoa.ttl);

  const chain = yield* chainSteps(zone, settings.denial, sign, pause);

  const variants = new Map<string, Map<string, RRset>>();
  for (const name of zone.dynamicNames) {
    if (pause()) yield;
    const perName = new Map<string, RRset>();
    for (const family of [4, 6] as const) for (const [key, set] of variantSets(name, family)) perName.set(key, sign(set, name.ttl));
    variants.set(name.name, perName);
  }

  const cache = new Map<string, RRset>();
  const signVariant = (name: DynamicName, family: 4 | 6, key: string, set: RRset): RRset => {
    const cacheKey = `${name.name}/${key}`;
    let rrsig = cache.get(cacheKey);
    if (rrsig === undefined) {
      rrsig = signOnUse({ ...set, owner: name.name }, name.ttl);
      if (cache.size >= VARIANT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      cache.set(cacheKey, rrsig);
    }
    return rrsig;
  };

  return Object.freeze({
    rrsigs,
    negativeSoa,
    chain,
    variants,
    signVariant,
    refreshAt: refreshTime(nowMs, window.expiration * 1000, settings.refreshMs),
    signedAt: nowMs,
    expiresAt: window.expiration * 1000,
  });
}

/**
 * When signatures made at `nowMs` are made again: once less than `refreshMs` of them is left,
 * but at the earliest an hour later, or half of what they had left when that is shorter.
 * Signatures start an hour back, so a `refresh` within an hour of `validity` would otherwise be
 * due at once, at every load.
 */
export function refreshTime(nowMs: number, expirationMs: number, refreshMs: number): number {
  return Math.max(expirationMs - refreshMs, nowMs + Math.min(INCEPTION_SKEW_MS, (expirationMs - nowMs) / 2));
}

/** One RRSIG per key, as an RRset owned like `set`. */
function rrsigSet(set: RRset, signing: readonly SigningKey[], signer: string, window: SignatureWindow, originalTtl: number, source: SignatureSource): RRset {
  const rdatas = set.records.map((r) => r.rdata);
  const records = signing.map((key) => signRRset({ owner: set.owner, type: set.type, ttl: set.ttl, rdatas }, key, signer, window, originalTtl, source));
  return Object.freeze({ owner: set.owner, type: DNSSEC_TYPE.RRSIG, ttl: set.ttl, records: Object.freeze(records) });
}

function withTtl(set: RRset, ttl: number): RRset {
  return Object.freeze({ ...set, ttl, records: Object.freeze(set.records.map((r) => Object.freeze({ ...r, ttl }))) });
}

/**
 * The denial chain, in the order of its owners, each record naming the next and the types at its
 * name (RFC 4034 §4.1), TTL the negative TTL (RFC 4035 §2.3, RFC 9077):
 * - NSEC: every name holding data and every delegation point, in canonical order; the types
 *   include RRSIG and NSEC (the NSEC lives at the name); at a delegation point NS, and DS when
 *   present. Empty non-terminals and glue below a cut hold no NSEC.
 * - NSEC3 (RFC 5155 §5.2, §7.1 with the RFC 9276 §3.1 parameters: SHA-1, no extra iterations, no
 *   salt): the same names and every empty non-terminal, in hash order, flags 0. The NSEC3 lives
 *   at the hashed name, so the types include RRSIG only where the name has signed data.
 * - NSEC3 with opt-out (RFC 5155 §6, §7.1): as NSEC3 but without the delegations that have no
 *   DS and the empty non-terminals that exist only above them (a wildcard keeps its record: it
 *   answers names, RFC 4592 §4.9). The records whose span holds such a left-out name have the
 *   Opt-Out flag (1); the others keep flags 0 (a zone may mix them, RFC 5155 §6), so that a
 *   name denied outside those spans, a wildcard's next closer name included, still validates as
 *   secure: validators take a name covered by an Opt-Out record as insecure (it may be an
 *   unsigned delegation).
 * A Pool/Group/Site Name also gets its record without A, and without AAAA, for the NODATA its
 * policy may choose (model/signatures.ts dynamicNodataProof).
 */
function* chainSteps(zone: ZoneToSign, denial: DnssecSettings['denial'], sign: (set: RRset) => RRset, pause: () => boolean): Steps<NsecChain> {
  const hashed = denial !== 'nsec';
  const optOut = denial === 'nsec3-opt-out';
  const owners: { key: string; name: string; types: number[]; dynamic: boolean; signed: boolean }[] = [];
  const keyOf = hashed ? nsec3Hash : canonicalKey;
  for (const node of zone.nodes.values()) {
    if (pause()) yield;
    const types = node.rrsets.map((s) => s.type);
    if (node.cname !== undefined) types.push(node.cname.type);
    if (node.dynamic !== undefined) {
      if (hasAddresses(node.dynamic, 4)) types.push(QTYPE.A);
      if (hasAddresses(node.dynamic, 6)) types.push(QTYPE.AAAA);
    }
    owners.push({ key: keyOf(node.name), name: node.name, types, dynamic: node.dynamic !== undefined, signed: types.length > 0 });
  }
  /** The hashes of the names opt-out leaves out of the chain. */
  const leftOut: string[] = [];
  const entsKept = optOut ? yield* entsAboveOptedIn(zone, pause) : zone.emptyNonTerminals;
  if (hashed) for (const name of entsKept) owners.push({ key: keyOf(name), name, types: [], dynamic: false, signed: false });
  if (optOut) for (const name of zone.emptyNonTerminals) if (!entsKept.has(name)) leftOut.push(keyOf(name));
  for (const [cut, referral] of zone.cuts) {
    if (optOut && referral.ds === undefined) leftOut.push(keyOf(cut));
    else owners.push({ key: keyOf(cut), name: cut, types: referral.ds === undefined ? [QTYPE.NS] : [QTYPE.NS, DNSSEC_TYPE.DS], dynamic: false, signed: referral.ds !== undefined });
  }
  owners.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const keys = owners.map((o) => o.key);
  const digests = hashed ? new Uint8Array(keys.length * NSEC3_DIGEST_BYTES) : null;
  if (digests !== null) {
    for (let i = 0; i < keys.length; i++) {
      if (pause()) yield;
      base32hexInto(keys[i], digests, i * NSEC3_DIGEST_BYTES);
    }
  }
  // RFC 5155 §6: an Opt-Out record may cover only left-out names; one without the flag none.
  const optedOutSpans = new Set(leftOut.map((key) => spanIndex(keys, key)));

  const type = hashed ? DNSSEC_TYPE.NSEC3 : DNSSEC_TYPE.NSEC;
  const recordOf = (index: number, types: readonly number[]): RRset => {
    const owner = owners[index];
    const next = owners[(index + 1) % owners.length];
    let name: string;
    let rdata: Rdata;
    if (hashed) {
      name = zone.origin.length === 0 ? owner.key : `${owner.key}.${zone.origin}`;
      // Hash algorithm 1 (SHA-1), flags (bit 0: Opt-Out), iterations 0, salt length 0, hash length 20.
      const flags = optedOutSpans.has(index) ? OPT_OUT : 0;
      const at = ((index + 1) % owners.length) * NSEC3_DIGEST_BYTES;
      rdata = [Buffer.concat([Buffer.from([1, flags, 0, 0, 0, NSEC3_DIGEST_BYTES]), digests!.subarray(at, at + NSEC3_DIGEST_BYTES)]), typeBitmap(owner.signed ? [...types, DNSSEC_TYPE.RRSIG] : types)];
    } else {
      name = owner.name;
      rdata = [{ name: next.name, compress: false }, typeBitmap([...types, DNSSEC_TYPE.RRSIG, DNSSEC_TYPE.NSEC])];
    }
    const record = Object.freeze({ owner: name, type, ttl: zone.negativeTtl, rdata: Object.freeze(rdata) });
    return Object.freeze({ owner: name, type, ttl: zone.negativeTtl, records: Object.freeze([record]) });
  };
  const nsec: RRset[] = [];
  const rrsig: RRset[] = [];
  const withoutAddress = new Map<string, readonly [RRset, RRset]>();
  for (let i = 0; i < owners.length; i++) {
    if (pause()) yield;
    const owner = owners[i];
    const set = recordOf(i, owner.types);
    nsec.push(set);
    rrsig.push(sign(set));
    if (!owner.dynamic) continue;
    for (const address of [QTYPE.A, QTYPE.AAAA]) {
      if (!owner.types.includes(address)) continue;
      const without = recordOf(i, owner.types.filter((t) => t !== address));
      withoutAddress.set(rrsetKey(owner.name, address), [without, sign(without)]);
    }
  }
  return Object.freeze({ hashed, optOut, keys, digests, nsec, rrsig, withoutAddress });
}

/** The NSEC3 Opt-Out flag (RFC 5155 §3.1.2.1). */
const OPT_OUT = 1;

/**
 * The empty non-terminals an opt-out chain keeps (RFC 5155 §7.1): those above a name with data,
 * a delegation with DS or a wildcard; those above nothing but delegations without DS are left
 * out, covered by an opt-out span like the delegations.
 */
function* entsAboveOptedIn(zone: ZoneToSign, pause: () => boolean): Steps<ReadonlySet<string>> {
  const kept = new Set<string>();
  const keepAncestors = (name: string): void => {
    for (let n = name; n.length > zone.origin.length; ) {
      n = parentName(n);
      if (!zone.emptyNonTerminals.has(n) || kept.has(n)) return;
      kept.add(n);
    }
  };
  for (const name of zone.nodes.keys()) {
    if (pause()) yield;
    keepAncestors(name);
  }
  for (const [cut, referral] of zone.cuts) if (referral.ds !== undefined) keepAncestors(cut);
  for (const { name } of zone.wildcards.values()) {
    if (!zone.emptyNonTerminals.has(name) || kept.has(name)) continue;
    kept.add(name);
    keepAncestors(name);
  }
  return kept;
}

/** RFC 4034 §4.1.2: the type bit maps field. */
export function typeBitmap(types: readonly number[]): Buffer {
  const sorted = [...new Set(types)].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let i = 0;
  while (i < sorted.length) {
    const window = sorted[i] >> 8;
    const bits = Buffer.alloc(32);
    let length = 0;
    for (; i < sorted.length && sorted[i] >> 8 === window; i++) {
      const low = sorted[i] & 0xff;
      bits[low >> 3] |= 0x80 >> (low & 7);
      length = (low >> 3) + 1;
    }
    parts.push(Buffer.from([window, length]), bits.subarray(0, length));
  }
  return Buffer.concat(parts);
}

function addressesOf(site: SiteModel, family: 4 | 6): readonly Rdata[] {
  return family === 4 ? site.rdata4 : site.rdata6;
}

/** Whether any answer of the name can hold an address of `family` (its sites' or its sorry address). */
function hasAddresses(name: DynamicName, family: 4 | 6): boolean {
  if (name.sites.some((s) => addressesOf(s, family).length > 0)) return true;
  return ((family === 4 ? name.pool?.sorry4 : name.pool?.sorry6)?.length ?? 0) > 0;
}

/**
 * Every answer of `name` for `family` worth signing ahead, by model/signatures.ts variantKey:
 * each site alone, every site together (all_down: all), the sorry address, and, for `answers: N`,
 * within MAX_VARIANTS_PER_FAMILY, first the sets the policies answer (policy/candidates.ts
 * answerWith: N sites in a row of the usable list, read cyclically) for every site up and then
 * for each single site down (a failover), then the other combinations of up to N sites.
 */
function* variantSets(name: DynamicName, family: 4 | 6): Generator<[string, RRset]> {
  const type = family === 4 ? QTYPE.A : QTYPE.AAAA;
  const set = (rdatas: readonly Rdata[]): RRset =>
    Object.freeze({ owner: name.name, type, ttl: name.ttl, records: Object.freeze(rdatas.map((rdata) => Object.freeze({ owner: name.name, type, ttl: name.ttl, rdata }))) });
  const candidates = name.sites.filter((s) => addressesOf(s, family).length > 0);
  for (const site of candidates) yield [`${family}:${site.id}`, set(addressesOf(site, family))];
  const sorry = family === 4 ? name.pool?.sorry4 : name.pool?.sorry6;
  if (sorry !== undefined && sorry.length > 0) yield [`${family}:sorry`, set(sorry)];
  if (candidates.length < 2) return;
  const keyOf = (sites: readonly SiteModel[]): string => `${family}:${sites.map((s) => s.id).sort().join(',')}`;
  const signed = new Set<string>([keyOf(candidates)]);
  yield [keyOf(candidates), set(candidates.flatMap((s) => addressesOf(s, family)))];
  const most = Math.min(candidates.length, Math.max(name.pool?.answers ?? 1, 1));
  if (most < 2) return;
  let budget = MAX_VARIANTS_PER_FAMILY - candidates.length - signed.size;
  for (const sites of aheadOfUse(candidates, most)) {
    if (budget <= 0) return;
    const key = keyOf(sites);
    if (signed.has(key)) continue;
    signed.add(key);
    budget--;
    yield [key, set(sites.flatMap((s) => addressesOf(s, family)))];
  }
}

/**
 * The site sets of `answers: count` in the order they are worth signing, made as they are read
 * (duplicates included): the answers from every site up, from each list with one site down, then
 * every combination of 2 to `count` sites.
 */
function* aheadOfUse(candidates: readonly SiteModel[], count: number): Generator<SiteModel[]> {
  yield* answerRuns(candidates, count);
  for (let down = 0; down < candidates.length; down++) yield* answerRuns(candidates.filter((_, i) => i !== down), count);
  yield* smallerCombinations(candidates, count);
}

/** The sets policy/candidates.ts answerWith can answer from `list`: `count` sites in a row, read cyclically. */
function* answerRuns(list: readonly SiteModel[], count: number): Generator<SiteModel[]> {
  if (list.length <= count) {
    yield [...list];
    return;
  }
  for (let start = 0; start < list.length; start++) yield Array.from({ length: count }, (_, j) => list[(start + j) % list.length]);
}

/** The k-combinations of `items` for k from 2 to `most`, in order, made as they are read. */
function* smallerCombinations<T>(items: readonly T[], most: number): Generator<T[]> {
  function* pick(k: number, from: number, chosen: T[]): Generator<T[]> {
    if (chosen.length === k) {
      yield [...chosen];
      return;
    }
    for (let i = from; i <= items.length - (k - chosen.length); i++) {
      chosen.push(items[i]);
      yield* pick(k, i + 1, chosen);
      chosen.pop();
    }
  }
  for (let k = 2; k <= most && k < items.length; k++) yield* pick(k, 0, []);
}
