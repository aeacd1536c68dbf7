/**
 * The compiled, frozen form of the zone files: what a query reads. Built by config/compile.ts,
 * read by server/lookup.ts and the policies. Nothing here changes after compilation; a reload
 * builds a new ZoneSet and swaps it in with one assignment.
 */
import type { Rdata, WireRecord } from '../dns/records.js';

/** What a name answers when none of its sites is up (docs/zones.md, `all_down`). */
export const ALL_DOWN_RULES = ['all', 'first', 'sorry', 'nodata', 'servfail'] as const;
export type AllDown = (typeof ALL_DOWN_RULES)[number];

/** The selection policies of a pool (docs/policies.md). */
export const POLICY_NAMES = ['least-busy', 'round-robin', 'weighted', 'random', 'first', 'offload'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/**
 * A site's health check as the zone file gives it (docs/zones.md), durations in milliseconds.
 * config/schema.ts validates it and checks at compile time that its output has these keys.
 */
export interface ProbeConfig {
  readonly http?: string;
  readonly https?: string;
  readonly tcp?: string;
  readonly interval?: number;
  readonly timeout?: number;
  readonly rise?: number;
  readonly fall?: number;
  readonly flap_half_life?: number;
  readonly load?: string;
  readonly load_header?: string;
  readonly expect_status?: readonly number[];
  readonly expect_body?: string;
  readonly host?: string;
  readonly insecure?: boolean;
  readonly follow_redirects?: boolean;
  readonly push_interval?: number;
}

/** An RRset: records of one owner and type, all with the same TTL (RFC 2181 §5.2). */
export interface RRset {
  readonly owner: string;
  readonly type: number;
  readonly ttl: number;
  readonly records: readonly WireRecord[];
}

export interface SiteModel {
  readonly zone: string;
  readonly id: string;
  /** `zone/id`: the key of this site's state in snapshots, Redis and metrics. */
  readonly key: string;
  /** The Site Name (lower-case fqdn without the trailing dot). */
  readonly name: string;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  readonly capacity: number;
  /** Offload threshold when this site is an offload target (seeds 000/001). */
  readonly threshold: number;
  readonly cost: number;
  /**
   * A load measured longer ago than this is stale and policies ignore it (policy/load.ts):
   * 3 report intervals (push_interval, else the probe interval, else 1 s), at least 5 s.
   */
  readonly loadStaleMs: number;
  readonly probe: ProbeConfig | undefined;
  /** RDATA of this site's addresses, per family, encoded once. */
  readonly rdata4: readonly Rdata[];
  readonly rdata6: readonly Rdata[];
}

export interface GroupModel {
  readonly id: string;
  readonly name: string;
  /** Ordered (the seed's Group is ordered for failover and overflow). */
  readonly sites: readonly SiteModel[];
  readonly allDown: AllDown;
}

export interface TopologyRule {
  /** Parsed network: address bytes and prefix length. */
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
  readonly group: GroupModel;
}

export interface PoolModel {
  readonly name: string;
  readonly policy: PolicyName;
  readonly sites: readonly SiteModel[];
  readonly groups: readonly GroupModel[];
  /** Longest prefix first. */
  readonly topology: readonly TopologyRule[];
  readonly defaultGroup: GroupModel | undefined;
  readonly hysteresis: { readonly stayBelow: number; readonly differential: number } | undefined;
  readonly primary: SiteModel | undefined;
  readonly offload: readonly SiteModel[];
  readonly thresholds: { readonly offload: number; readonly throttle: number; readonly drop: number };
  readonly offloadChoice: 'client' | 'cost' | 'load';
  /** Offload: the smallest share of new answers the primary keeps while it is up, below T3. */
  readonly primaryKeeps: number;
  readonly sorry4: readonly Rdata[];
  readonly sorry6: readonly Rdata[];
  readonly allDown: AllDown;
  readonly answers: number;
  /** Least-busy: load one answer adds until the next report shows it (0: not counted). */
  readonly loadPerAnswer: number;
}

/** A Pool, Group or Site Name: answered by a policy at query time. */
export interface DynamicName {
  readonly kind: 'pool' | 'group' | 'site';
  readonly name: string;
  readonly zone: string;
  /** The pool whose policy settings apply (a Site Name in no pool has none). */
  readonly pool: PoolModel | undefined;
  /** Candidate sites in order: the pool's sites, the group's, or the site then its failover order. */
  readonly sites: readonly SiteModel[];
  readonly group: GroupModel | undefined;
  readonly site: SiteModel | undefined;
  readonly allDown: AllDown;
  readonly ttl: number;
}

/** What a lookup finds: a result kind, turned into a message only by dns/response.ts. */
export type LookupResult =
  | { readonly kind: 'refused' }
  | {
      readonly kind: 'answer';
      readonly zone: ZoneModel;
      /** Static RRsets in answer order (CNAMEs first when chased). */
      readonly answer: readonly RRset[];
      /** When the chain ends at a Pool/Group/Site Name: its A or AAAA is chosen per query. */
      readonly dynamic: DynamicName | undefined;
      /**
       * The owner of those chosen records: the dynamic name itself, or the name a wildcard
       * Pool/Group/Site Name answers for (RFC 4592 §3.3.1: the owner is the name asked).
       */
      readonly dynamicOwner: string;
      readonly family: 4 | 6;
      readonly additional: readonly RRset[];
    }
  | { readonly kind: 'nodata'; readonly zone: ZoneModel; readonly answer: readonly RRset[] }
  | { readonly kind: 'nxdomain'; readonly zone: ZoneModel; readonly answer: readonly RRset[] }
  | {
      readonly kind: 'referral';
      readonly zone: ZoneModel;
      /** CNAMEs followed to the delegated name (RFC 1034 §4.3.2 step 3b after 3a); empty for a plain referral. */
      readonly answer: readonly RRset[];
      readonly ns: RRset;
      /** The DS RRset at the delegation point (RFC 4034 §5), when the zone holds one. */
      readonly ds: RRset | undefined;
      readonly glue: readonly RRset[];
    };

export interface NameNode {
  readonly name: string;
  /**
   * The node's RRsets but its CNAME, in zone-file order; find one with `rrsetOf` (model/resolve.ts).
   * An array, not a Map: a node holds one or two types, and a Map costs ~180 bytes even when
   * empty (100,000 names: ~13 MB). Nodes without any share one empty array.
   */
  readonly rrsets: readonly RRset[];
  readonly cname: RRset | undefined;
  readonly dynamic: DynamicName | undefined;
  /**
   * Lookup results memoized on first use (server/lookup.ts) for the types this node is likely
   * asked for (A, AAAA, ANY, CNAME and every type it holds); other types are resolved per query.
   * Undefined until the name is first looked up: most names of a large zone set never are (the
   * prebuilt table answers them), and an empty Map per name costs ~18 MB at 100,000 names.
   * The one field written after compilation: nodes are sealed, not frozen.
   */
  results: Map<number, LookupResult> | undefined;
}

export interface ZoneModel {
  readonly origin: string;
  readonly file: string;
  readonly soa: RRset;
  /** TTL of negative answers: min(SOA TTL, SOA minimum) (RFC 2308 §5). */
  readonly negativeTtl: number;
  /** The SOA as used in the authority section of negative answers. */
  readonly negativeSoa: RRset;
  readonly nodes: ReadonlyMap<string, NameNode>;
  /** Names that exist only because something lies below them (empty non-terminals). */
  readonly emptyNonTerminals: ReadonlySet<string>;
  /**
   * Closest encloser -> its wildcard node `*.<encloser>` (RFC 4592 §3.3.1): the source of
   * synthesis for the names below the encloser that do not exist. An empty non-terminal
   * wildcard is a node without data (RFC 4592 §4.9: NODATA).
   */
  readonly wildcards: ReadonlyMap<string, NameNode>;
  /** Delegation points below the apex -> referral result (its `answer` empty). */
  readonly cuts: ReadonlyMap<string, Extract<LookupResult, { kind: 'referral' }>>;
  /** Additional-section glue for the apex NS RRset. */
  readonly apexGlue: readonly RRset[];
  readonly sites: readonly SiteModel[];
  readonly pools: readonly PoolModel[];
  readonly groups: readonly GroupModel[];
  readonly dynamicNames: readonly DynamicName[];
  readonly nodata: LookupResult;
  readonly nxdomain: LookupResult;
  /** Set when the zone is signed; undefined: unsigned. */
  readonly dnssec: DnssecSettings | undefined;
  /** The signatures made at load (DNSSEC answers to DO=1 queries); undefined: unsigned. */
  readonly signatures: ZoneSignatures | undefined;
}

/** A signed zone's settings, compiled from its `dnssec:` key (config/schema.ts dnssecSchema). */
export interface DnssecSettings {
  /** DNSSEC algorithm number (RFC 8624): 13 ECDSA P-256 SHA-256, 15 Ed25519. */
  readonly algorithm: 13 | 15;
  readonly keys: 'csk' | 'ksk+zsk';
  readonly validityMs: number;
  readonly refreshMs: number;
  readonly denial: 'nsec' | 'nsec3' | 'nsec3-opt-out';
}

/** A signed zone's signatures (dnssec/sign-zone.ts makes them; model/signatures.ts reads them). */
/**
 * The denial chain: NSEC (RFC 4034 §4), owners in canonical order (RFC 4034 §6.1), or NSEC3 (RFC
 * 5155), owners in hash order; each with its NSEC/NSEC3 RRset and RRSIGs.
 */
export interface NsecChain {
  /** NSEC3 (RFC 5155): owners are hashed names, `keys` their base32hex hashes. */
  readonly hashed: boolean;
  /**
   * NSEC3 with opt-out (RFC 5155 §6): delegations without DS (and empty non-terminals above
   * nothing else) have no record of their own, covered by records with the Opt-Out flag.
   */
  readonly optOut: boolean;
  /** canonicalKey of each owner (NSEC), or the base32hex hash of each name (NSEC3), ascending. */
  readonly keys: readonly string[];
  /** NSEC3: the digests of `keys`, back to back (dns/canonical-order.ts nsec3Digests); NSEC: null. */
  readonly digests: Uint8Array | null;
  readonly nsec: readonly RRset[];
  readonly rrsig: readonly RRset[];
  /**
   * A Pool/Group/Site Name's NSEC without A (or AAAA), and its RRSIGs, by `rrsetKey(name, type)`:
   * the proof of a NODATA answer its policy chose (all down with `all_down: nodata`, or no site
   * of the family up), which the chain's NSEC, listing the type, would contradict.
   */
  readonly withoutAddress: ReadonlyMap<string, readonly [RRset, RRset]>;
}

export interface ZoneSignatures {
  /** The RRSIG RRset of each RRset of the zone's own data, by `rrsetKey` (model/signatures.ts). */
  readonly rrsigs: ReadonlyMap<string, RRset>;
  /** The SOA's RRSIGs at the TTL of negative answers (RFC 2308 §5, RFC 4035 §3.1.3). */
  readonly negativeSoa: RRset;
  readonly chain: NsecChain;
  /**
   * RRSIGs of each possible answer of a Pool/Group/Site Name, made at load: by name, then by
   * `variantKey`. An RRSIG covers the set, not its order, so one per distinct set of sites.
   */
  readonly variants: ReadonlyMap<string, ReadonlyMap<string, RRset>>;
  /**
   * The RRSIGs of an answer past the precomputed variants (many sites with `answers: N`):
   * signed on first use and kept in a bounded cache (dnssec/sign-zone.ts).
   */
  readonly signVariant: (name: DynamicName, family: 4 | 6, key: string, set: RRset) => RRset;
  /** When these signatures are due to be made again (ms since the epoch): expiration - refresh. */
  readonly refreshAt: number;
  /** The signing time they were made at (ms since the epoch): inception is an hour before it. */
  readonly signedAt: number;
  /** When they expire (ms since the epoch): a zone whose signatures cannot be made again is refused before then. */
  readonly expiresAt: number;
  /** The signatures made at load as bytes, for another thread's compile of the same zone to adopt (dnssec/signature-bytes.ts). */
  readonly bytes: ZoneSignatureBytes;
}

/**
 * The signature field of every RRSIG one signing made, in the order it made them, in shared
 * memory chunks of 64-byte signatures (postMessage neither copies nor clones them), with what
 * they were made from.
 */
export interface ZoneSignatureBytes {
  /** textDigest of the zone file signed (config/changed-files.ts); undefined: not known. */
  readonly digest: string | undefined;
  /** The signing time (ms since the epoch). */
  readonly signedAt: number;
  /** The tags of the keys that signed, zone-signing then key-signing, in order. */
  readonly keyTags: string;
  readonly count: number;
  readonly chunks: readonly SharedArrayBuffer[];
}

export interface ZoneSet {
  readonly zones: ReadonlyMap<string, ZoneModel>;
  /** Some served zone lies inside another: a name's zone is then found by walking up (findZone). */
  readonly nested: boolean;
  /** Increases with every successful (re)load. */
  readonly generation: number;
  readonly loadedAt: number;
}
