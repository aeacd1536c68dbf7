/**
 * Validated zone files -> frozen ZoneModels. Everything a query needs is decided here, once:
 * absolute lower-case names, encoded RDATA, Pool/Group/Site candidate lists in order, topology
 * rules sorted longest-prefix first, and the lookup results of every name's common query types.
 */
import ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';
import { QTYPE, typeName } from '../dns/constants.js';
import { caaRdata, dsRdata, ipv4Rdata, ipv6Rdata, mxRdata, nameRdata, soaRdata, srvRdata, txtRdata, type Rdata, type RdataPart, type WireRecord } from '../dns/records.js';
import type {
  DynamicName,
  GroupModel,
  LookupResult,
  NameNode,
  PoolModel,
  RRset,
  SiteModel,
  TopologyRule,
  ZoneModel,
  ZoneSet,
} from '../model/zone-model.js';
import { formatPath, type ConfigErrorCode, type ConfigProblem } from './errors.js';
import type { LoadedZoneFile } from './load.js';
import { labelProblem } from './names.js';
import { DNSSEC_ALGORITHM_NUMBERS, dnssecSchema, type PoolConfig, type RecordType, type ZoneFile } from './schema.js';
import type { AllDown, DnssecSettings } from '../model/zone-model.js';
import { pauseEvery, runAtOnce, type Steps } from '../util/slices.js';
import { apexKeyRdata } from '../dnssec/sign-zone.js';
import { signOrAdoptSteps, type ZoneSigning } from '../dnssec/signature-bytes.js';
import { KeyError } from '../dnssec/key-file.js';
import type { KeySource } from '../dnssec/keys.js';
import type { ZoneKeySet } from '../dnssec/types.js';
import type { ZoneSignatures } from '../model/zone-model.js';

/** Limits that keep a generated zone from exhausting memory. */
export const MAX_NAMES_PER_ZONE = 50_000;
export const MAX_RECORDS_PER_RRSET = 1000;
/** RFC 1035 §2.3.4: 255 octets on the wire, i.e. 253 characters of text without the final dot. */
export const MAX_NAME_TEXT = 253;
/** RFC 1035 §4.2.2: a TCP message holds at most 65535 bytes; an RRset that cannot fit is never servable. */
export const MAX_RRSET_BYTES = 65535 - 512;

class ProblemSink {
  readonly problems: ConfigProblem[] = [];
  constructor(private readonly loaded: LoadedZoneFile) {}
  add(path: (string | number)[], message: string, code: ConfigErrorCode = 'EZONE_REF'): void {
    this.problems.push({ file: this.loaded.file, line: this.loaded.lineOf(path), path: formatPath(path), message, code });
  }
}

export interface CompileOutcome {
  readonly zones: ZoneModel[];
  readonly problems: ConfigProblem[];
  readonly failedFiles: string[];
}

export function compileZoneFiles(files: readonly LoadedZoneFile[], signing?: KeySource): CompileOutcome {
  const zones: ZoneModel[] = [];
  const problems: ConfigProblem[] = [];
  const failedFiles: string[] = [];
  const compile = zoneSetCompiler(signing);
  for (const loaded of files) {
    const result = compile(loaded);
    if ('problems' in result) {
      problems.push(...result.problems);
      failedFiles.push(loaded.file);
    } else zones.push(result);
  }
  return { zones, problems, failedFiles };
}

/**
 * compileZone for the files of one zone set, one at a time (`sitedns check` keeps no file or zone
 * once it is reported): a zone that an earlier file of the set defines is a conflict.
 */
export function zoneSetCompiler(signing?: KeySource): (loaded: LoadedZoneFile) => ZoneModel | { problems: ConfigProblem[] } {
  const seen = new Map<string, string>();
  return (loaded) => {
    const result = compileZone(loaded, signing);
    if ('problems' in result) return result;
    const other = seen.get(result.origin);
    if (other !== undefined) {
      return { problems: [{ file: loaded.file, line: loaded.lineOf(['zone']), path: 'zone', message: `zone ${result.origin} is also defined in ${other}`, code: 'EZONE_CONFLICT' }] };
    }
    seen.set(result.origin, loaded.file);
    return result;
  };
}

let generationCounter = 0;
export function makeZoneSet(zones: Iterable<ZoneModel>): ZoneSet {
  const map = new Map<string, ZoneModel>();
  for (const z of zones) map.set(z.origin, z);
  return Object.freeze({ zones: map, nested: hasNestedZone(map), generation: ++generationCounter, loadedAt: Date.now() });
}

/** Whether some origin lies below another origin of the set. */
function hasNestedZone(origins: ReadonlyMap<string, ZoneModel>): boolean {
  for (const origin of origins.keys()) {
    for (let n = origin; n.length > 0; ) {
      const dot = n.indexOf('.');
      n = dot < 0 ? '' : n.slice(dot + 1);
      if (origins.has(n)) return true;
    }
  }
  return false;
}

/** The RRsets of every node without any (Pool/Group/Site Names, CNAMEs): one shared array, not an empty one per node. */
const NO_RRSETS: readonly RRset[] = Object.freeze([]);

const STATIC_TYPES: readonly RecordType[] = ['A', 'AAAA', 'CNAME', 'NS', 'MX', 'TXT', 'SRV', 'PTR', 'CAA', 'DS'];

function lower(name: string): string {
  return name.toLowerCase();
}

/** V8 takes substrings of at least this many characters as slices of the original. */
const MIN_SLICE_LENGTH = 13;

/**
 * `text` as a string of its own. The YAML parsers hand out substrings of the zone file's text
 * (and toLowerCase of a lower-case string is the same string), which V8 keeps as slices: one
 * such name in the model keeps the whole file text alive (~37 KB per 1,000-name file) for as
 * long as the zone is served. Concatenating and slicing again copies the characters.
 */
function detached(text: string): string {
  return text.length < MIN_SLICE_LENGTH ? text : (' ' + text).slice(1);
}

export function compileZone(loaded: LoadedZoneFile, signing?: KeySource): ZoneModel | { problems: ConfigProblem[] } {
  return runAtOnce(compileZoneSteps(loaded, signing));
}

/** Names (or sites, records) handled between two pause points of compileZoneSteps: well under a millisecond. */
const NAMES_PER_STEP = 256;

/**
 * compileZone as steps that pause every NAMES_PER_STEP names (util/slices.ts runs them). A zone
 * with `dnssec` is signed when `signing` is given (docs/dnssec.md), adopting the signatures it
 * carries when they match (dnssec/signature-bytes.ts); without it (`sitedns check`, the loader
 * thread's check of an unsigned load) it compiles unsigned.
 */
export function* compileZoneSteps(loaded: LoadedZoneFile, signing?: ZoneSigning): Steps<ZoneModel | { problems: ConfigProblem[] }> {
  const cfg: ZoneFile = loaded.config;
  const sink = new ProblemSink(loaded);
  const pause = pauseEvery(NAMES_PER_STEP);
  const origin = detached(lower(cfg.zone.replace(/\.$/, '')));

  /** Owner/target name -> absolute lower-case name without the trailing dot (sharing no memory with the file's text). */
  const absolute = (name: string): string => {
    if (name === '@') return origin;
    if (name.endsWith('.')) return detached(lower(name.slice(0, -1)));
    if (origin === '') return detached(lower(name));
    // Shorter relative names are copies already; the zone's part is `origin`.
    return name.length < MIN_SLICE_LENGTH ? `${lower(name)}.${origin}` : `${detached(lower(name))}.${origin}`;
  };
  const dotOrigin = `.${origin}`;
  const inZone = (name: string) => origin === '' || name === origin || name.endsWith(dotOrigin);

  // ---- static data -------------------------------------------------------------------------
  const staticSets = new Map<string, Map<number, { ttl: number; rdata: Rdata[] }>>();
  /** Adds one record; false (and nothing added) when its RRset is full: the caller reports it. */
  const addStatic = (owner: string, type: number, ttl: number, rdata: Rdata): boolean => {
    let node = staticSets.get(owner);
    if (!node) staticSets.set(owner, (node = new Map()));
    let set = node.get(type);
    if (!set) node.set(type, (set = { ttl, rdata: [] }));
    if (set.rdata.length >= MAX_RECORDS_PER_RRSET) return false;
    set.rdata.push(rdata);
    return true;
  };
  const tooMany = `more than ${MAX_RECORDS_PER_RRSET} records`;

  const serial = cfg.soa.serial ?? Math.floor((loaded.loadedAt ?? Date.now()) / 1000);
  // SOA and nameserver names are always fully qualified (the trailing dot is optional there).
  const fqdn = (name: string) => detached(lower(name.replace(/\.$/, '')));
  const soa = soaRdata(fqdn(cfg.soa.mname), fqdn(cfg.soa.rname), serial, cfg.soa.refresh, cfg.soa.retry, cfg.soa.expire, cfg.soa.minimum);
  addStatic(origin, QTYPE.SOA, cfg.ttl, soa);
  const negativeTtl = Math.min(cfg.ttl, cfg.soa.minimum);

  for (const [nsName, addresses] of Object.entries(cfg.nameservers)) {
    const target = fqdn(nsName);
    if (!addStatic(origin, QTYPE.NS, cfg.ttl, nameRdata(target))) sink.add(['nameservers', nsName], tooMany, 'EZONE_LIMIT');
    if (inZone(target)) {
      if (addresses.length === 0) sink.add(['nameservers', nsName], 'an in-zone nameserver needs its addresses (glue)');
      for (const [i, address] of addresses.entries()) {
        const v4 = isIP(address) === 4;
        if (!addStatic(target, v4 ? QTYPE.A : QTYPE.AAAA, cfg.ttl, v4 ? ipv4Rdata(address) : ipv6Rdata(address))) sink.add(['nameservers', nsName, i], tooMany, 'EZONE_LIMIT');
      }
    }
  }

  const cnames = new Map<string, string>();
  // Per record: no path, closure or array is made unless a problem is reported (bench/reload:
  // ~27,000 names in the largest file, ~100,000 in a zone set).
  for (const ownerText of Object.keys(cfg.records)) {
    if (pause()) yield;
    const set = cfg.records[ownerText];
    const owner = absolute(ownerText);
    if (!inZone(owner)) {
      sink.add(['records', ownerText], `${owner} is not in zone ${origin}`, 'EZONE_CONFLICT');
      continue;
    }
    const ttl = set.ttl ?? cfg.ttl;
    for (const type of STATIC_TYPES) {
      const value = set[type];
      if (value === undefined) continue;
      const count = Array.isArray(value) ? value.length : 1;
      for (let i = 0; i < count; i++) {
        const rdata = parseRdata(type, String(Array.isArray(value) ? value[i] : value), absolute);
        if (typeof rdata === 'string') {
          sink.add(recordPath(ownerText, type, value, i), rdata, 'EZONE_SCHEMA');
          continue;
        }
        if (type === 'CNAME') {
          if (count > 1 || cnames.has(owner)) sink.add(recordPath(ownerText, type, value, i), 'a name has at most one CNAME', 'EZONE_CONFLICT');
          cnames.set(owner, (rdata[0] as { name: string }).name);
        }
        if (type === 'NS' && owner === origin) {
          sink.add(recordPath(ownerText, type, value, i), 'apex NS records come from `nameservers`', 'EZONE_CONFLICT');
          continue;
        }
        if (!addStatic(owner, QTYPE[type], ttl, rdata)) sink.add(recordPath(ownerText, type, value, i), tooMany, 'EZONE_LIMIT');
      }
    }
    if (cnames.has(owner) && (staticSets.get(owner)?.size ?? 0) > 1) sink.add(['records', ownerText], 'CNAME cannot stand beside other data (RFC 1034 §3.6.2)', 'EZONE_CONFLICT');
  }

  // Delegations: NS below the apex. Below a cut only glue addresses may exist (RFC 1034 §4.2.1).
  const cutNames = [...staticSets.entries()].filter(([name, t]) => name !== origin && t.has(QTYPE.NS)).map(([n]) => n);
  const isBelowCut = (name: string) => cutNames.some((cut) => name !== cut && name.endsWith(`.${cut}`));
  for (const [name, types] of staticSets) {
    if (pause()) yield;
    if (!isBelowCut(name)) continue;
    if (isWildcard(name)) {
      sink.add(['records', relativeKey(name, origin)], `the wildcard ${name} is below a delegation and never matches: every name there is referred (RFC 1034 §4.3.2 step 3b)`, 'EZONE_CONFLICT');
      continue;
    }
    for (const t of types.keys()) {
      if (t !== QTYPE.A && t !== QTYPE.AAAA) sink.add(['records', relativeKey(name, origin)], `${name} is below the delegation and may only hold glue (A/AAAA)`, 'EZONE_CONFLICT');
    }
  }
  for (const cut of cutNames) {
    const types = staticSets.get(cut)!;
    if (isWildcard(cut)) sink.add(['records', relativeKey(cut, origin)], 'a wildcard cannot own NS: synthesized delegations are undefined (RFC 4592 §4.2)', 'EZONE_CONFLICT');
    for (const t of types.keys()) {
      if (t !== QTYPE.NS && t !== QTYPE.DS) sink.add(['records', relativeKey(cut, origin)], `a delegation point holds only NS and DS (and glue below it)`, 'EZONE_CONFLICT');
    }
  }
  // RFC 4035 §2.4: DS records live at a delegation point, in the parent zone.
  for (const [name, types] of staticSets) {
    if (types.has(QTYPE.DS) && !cutNames.includes(name)) sink.add(['records', relativeKey(name, origin), 'DS'], `DS records belong at a delegation point (a name with NS records), not at ${name}`, 'EZONE_CONFLICT');
  }

  yield* checkStaticLimits(staticSets, origin, cfg, sink, pause);

  // ---- sites, groups, pools ---------------------------------------------------------------
  const dynamicTtl = cfg.dynamic_ttl;
  const sites: SiteModel[] = [];
  const siteById = new Map<string, SiteModel>();
  for (const [id, s] of Object.entries(cfg.sites)) {
    if (pause()) yield;
    const name = s.name ? absolute(s.name) : absolute(id);
    const v4 = s.addresses.filter((a) => isIP(a) === 4).map(detached);
    const v6 = s.addresses.filter((a) => isIP(a) === 6).map((a) => ipaddr.IPv6.parse(a).toString());
    const site: SiteModel = Object.freeze({
      zone: origin,
      id,
      key: `${origin}/${id}`,
      name,
      v4: Object.freeze(v4),
      v6: Object.freeze(v6),
      capacity: s.capacity,
      threshold: s.threshold ?? 0.8,
      cost: s.cost ?? 0,
      loadStaleMs: Math.max(5000, 3 * (s.probe?.push_interval ?? s.probe?.interval ?? 1000)),
      probe: s.probe,
      rdata4: Object.freeze(v4.map(ipv4Rdata)),
      rdata6: Object.freeze(v6.map(ipv6Rdata)),
    });
    if (!inZone(name)) sink.add(['sites', id, 'name'], `${name} is not in zone ${origin}`, 'EZONE_CONFLICT');
    sites.push(site);
    siteById.set(id, site);
  }
  const siteRef = (id: string, path: (string | number)[]): SiteModel | undefined => {
    const site = siteById.get(id);
    if (!site) sink.add(path, `unknown site "${id}"`);
    return site;
  };

  const groups: GroupModel[] = [];
  const groupById = new Map<string, GroupModel>();
  for (const [id, g] of Object.entries(cfg.groups)) {
    const list = Array.isArray(g) ? g : g.sites;
    const listPath: (string | number)[] = Array.isArray(g) ? ['groups', id] : ['groups', id, 'sites'];
    const members = list.map((sid, i) => siteRef(sid, [...listPath, i])).filter((s): s is SiteModel => s !== undefined);
    if (new Set(list).size !== list.length) sink.add(listPath, 'a site appears twice in the group', 'EZONE_CONFLICT');
    const group: GroupModel = Object.freeze({
      id,
      name: !Array.isArray(g) && g.name ? absolute(g.name) : absolute(id),
      sites: Object.freeze(members),
      allDown: (!Array.isArray(g) && g.all_down) || 'all',
    });
    groups.push(group);
    groupById.set(id, group);
  }

  const poolConfigs: { cfg: PoolConfig; path: (string | number)[] }[] = [];
  if (cfg.pool) poolConfigs.push({ cfg: cfg.pool, path: ['pool'] });
  for (const [i, p] of (cfg.pools ?? []).entries()) poolConfigs.push({ cfg: p, path: ['pools', i] });
  const pools: PoolModel[] = poolConfigs.map(({ cfg: p, path }) => compilePool(p, path, sites, groups, groupById, siteRef, absolute, sink));

  // ---- dynamic names ----------------------------------------------------------------------
  const dynamicNames: DynamicName[] = [];
  const dynamicByName = new Map<string, { d: DynamicName; path: (string | number)[] }>();
  const addDynamic = (d: DynamicName, path: (string | number)[]) => {
    if (d.name.length > MAX_NAME_TEXT) {
      sink.add(path, `${d.name.slice(0, 40)}... is ${d.name.length} characters with the zone; a DNS name holds at most ${MAX_NAME_TEXT}`, 'EZONE_LIMIT');
      return;
    }
    const existing = dynamicByName.get(d.name);
    if (existing) {
      sink.add(path, `${d.name} is already the ${existing.d.kind} name at ${formatPath(existing.path)}`, 'EZONE_CONFLICT');
      return;
    }
    const statics = staticSets.get(d.name);
    if (statics && (statics.has(QTYPE.A) || statics.has(QTYPE.AAAA) || cnames.has(d.name))) {
      sink.add(path, `${d.name} is a ${d.kind} name and cannot also hold static A/AAAA/CNAME records`, 'EZONE_CONFLICT');
      return;
    }
    if (isBelowCut(d.name) || cutNames.includes(d.name)) {
      sink.add(path, `${d.name} is at or below a delegation`, 'EZONE_CONFLICT');
      return;
    }
    dynamicByName.set(d.name, { d, path });
    dynamicNames.push(d);
  };
  for (const [i, pool] of pools.entries()) {
    const path = [...poolConfigs[i].path, 'name'];
    if (!inZone(pool.name)) sink.add(path, `${pool.name} is not in zone ${origin}`, 'EZONE_CONFLICT');
    addDynamic(Object.freeze({ kind: 'pool', name: pool.name, zone: origin, pool, sites: pool.sites, group: undefined, site: undefined, allDown: pool.allDown, ttl: dynamicTtl }), path);
  }
  const poolOfGroup = (g: GroupModel) => pools.find((p) => p.groups.includes(g));
  for (const g of groups) {
    addDynamic(Object.freeze({ kind: 'group', name: g.name, zone: origin, pool: poolOfGroup(g), sites: g.sites, group: g, site: undefined, allDown: g.allDown, ttl: dynamicTtl }), ['groups', g.id]);
  }
  for (const site of sites) {
    if (pause()) yield;
    const sCfg = cfg.sites[site.id];
    const order = failoverOrder(site, sCfg.failover, groups, pools, siteRef);
    addDynamic(
      Object.freeze({
        kind: 'site',
        name: site.name,
        zone: origin,
        pool: pools.find((p) => p.sites.includes(site)),
        sites: Object.freeze(order),
        group: groups.find((g) => g.sites.includes(site)),
        site,
        allDown: sCfg.all_down ?? 'first',
        ttl: dynamicTtl,
      }),
      ['sites', site.id],
    );
  }

  // The file's own problems first: its keys are read (and, under serve, made when missing) only
  // for a zone that compiles, so a typo'd origin gets no key files and its typo is what is told.
  if (sink.problems.length > 0) return { problems: sink.problems };

  // ---- keys: the apex DNSKEY, CDS and CDNSKEY of a signed zone -------------------------------
  const dnssec = dnssecSettings(cfg.dnssec);
  let keys: ZoneKeySet | undefined;
  if (dnssec !== undefined && signing !== undefined) {
    try {
      keys = signing.keysFor(origin, dnssec);
    } catch (error) {
      // Refused as the zone store refuses a zone whose keys fail: the problem names the key file.
      if (!(error instanceof KeyError)) throw error;
      return { problems: [{ file: error.file, line: 0, path: 'dnssec', message: `zone ${origin}: ${error.reason}`, code: error.code }] };
    }
    if (keys !== undefined) for (const [type, rdatas] of apexKeyRdata(origin, keys, dnssec)) for (const rdata of rdatas) addStatic(origin, type, cfg.ttl, rdata);
  }
  // The key records may clash with the file's own at the apex.
  if (sink.problems.length > 0) return { problems: sink.problems };

  // ---- nodes ------------------------------------------------------------------------------
  const allNames = new Set<string>([...staticSets.keys(), ...dynamicByName.keys()]);
  if (allNames.size > MAX_NAMES_PER_ZONE) {
    sink.add(['records'], `${allNames.size} names; the limit is ${MAX_NAMES_PER_ZONE}`, 'EZONE_LIMIT');
    return { problems: sink.problems };
  }
  // Names below a delegation point are not the zone's (RFC 4035 §2.2, RFC 5155 §7.1): glue two
  // labels below a cut makes no empty non-terminal (the cut itself climbs to the apex for its own).
  const emptyNonTerminals = new Set<string>();
  for (const name of allNames) {
    if (pause()) yield;
    if (cutNames.length > 0 && isBelowCut(name)) continue;
    let parent = name;
    while (parent !== origin) {
      const dot = parent.indexOf('.');
      if (dot < 0) break;
      parent = parent.slice(dot + 1);
      if (parent === origin || allNames.has(parent) || emptyNonTerminals.has(parent)) break;
      emptyNonTerminals.add(parent);
    }
  }

  /** The RRsets of a name in zone-file order (arrays of exact length: `map`, not `push`). */
  const rrsetsOf = (name: string): RRset[] => {
    const types = staticSets.get(name);
    if (types === undefined) return [];
    return [...types].map(([type, set]) => {
      const records: WireRecord[] = set.rdata.map((rdata) => Object.freeze({ owner: name, type, ttl: set.ttl, rdata }));
      return Object.freeze({ owner: name, type, ttl: set.ttl, records: Object.freeze(records) });
    });
  };
  const rrsetOfName = (name: string, type: number): RRset | undefined => rrsetsOf(name).find((set) => set.type === type);

  const nodes = new Map<string, NameNode>();
  // RFC 4592 §3.3.1: every wildcard by the closest encloser it answers below.
  const wildcards = new Map<string, NameNode>();
  for (const name of allNames) {
    if (pause()) yield;
    if (isBelowCut(name) || cutNames.includes(name)) continue; // answered by referral
    const all = rrsetsOf(name);
    const cname = all.find((set) => set.type === QTYPE.CNAME);
    // A CNAME stands alone (checked above): its node holds no other RRset.
    const rrsets = cname === undefined ? all : all.filter((set) => set !== cname);
    const node: NameNode = Object.seal({ name, rrsets: rrsets.length === 0 ? NO_RRSETS : Object.freeze(rrsets), cname, dynamic: dynamicByName.get(name)?.d, results: undefined });
    nodes.set(name, node);
    if (isWildcard(name)) wildcards.set(wildcardEncloser(name), node);
  }
  // RFC 4592 §4.9: an empty non-terminal wildcard (`*.x` with names only below it) answers
  // NODATA for the names it matches: a node without data.
  for (const name of emptyNonTerminals) {
    if (isWildcard(name) && !isBelowCut(name)) wildcards.set(wildcardEncloser(name), Object.seal({ name, rrsets: NO_RRSETS, cname: undefined, dynamic: undefined, results: undefined }));
  }

  const soaSet = rrsetOfName(origin, QTYPE.SOA)!;
  const negativeSoa: RRset = Object.freeze({
    owner: origin,
    type: QTYPE.SOA,
    ttl: negativeTtl,
    records: Object.freeze([Object.freeze({ ...soaSet.records[0], ttl: negativeTtl })]),
  });
  const glueFor = (nsSet: RRset | undefined): RRset[] => {
    const glue: RRset[] = [];
    for (const rec of nsSet?.records ?? []) {
      const target = (rec.rdata[0] as { name: string }).name;
      for (const t of [QTYPE.A, QTYPE.AAAA]) {
        const s = rrsetOfName(target, t);
        if (s) glue.push(s);
      }
    }
    return glue;
  };
  const apexGlue = Object.freeze(glueFor(rrsetOfName(origin, QTYPE.NS)));

  // A zone object with results filled afterwards: resolveNode reads nodes, nodata and apexGlue.
  const zone = {
    origin,
    file: loaded.file,
    soa: soaSet,
    negativeTtl,
    negativeSoa,
    nodes,
    emptyNonTerminals,
    wildcards,
    cuts: new Map<string, Extract<LookupResult, { kind: 'referral' }>>(),
    apexGlue,
    sites: Object.freeze(sites),
    pools: Object.freeze(pools),
    groups: Object.freeze(groups),
    dynamicNames: Object.freeze(dynamicNames),
    nodata: undefined as unknown as LookupResult,
    nxdomain: undefined as unknown as LookupResult,
    dnssec,
    signatures: undefined as ZoneSignatures | undefined,
  } satisfies Record<keyof ZoneModel, unknown>;
  zone.nodata = Object.freeze({ kind: 'nodata', zone, answer: Object.freeze([]) });
  zone.nxdomain = Object.freeze({ kind: 'nxdomain', zone, answer: Object.freeze([]) });
  for (const cut of cutNames) {
    const ns = rrsetOfName(cut, QTYPE.NS)!;
    zone.cuts.set(cut, Object.freeze({ kind: 'referral', zone, answer: Object.freeze([]), ns, ds: rrsetOfName(cut, QTYPE.DS), glue: Object.freeze(glueFor(ns)) }));
  }
  if (keys !== undefined) zone.signatures = yield* signOrAdoptSteps(zone, keys, dnssec!, signing!);
  // Lookup results are memoized per node on first use (lookup.ts), not computed here for every
  // name: prebuilt answers serve the hot path without them, and precomputing them would
  // cost a third of the compile time and ~60 MB per 100,000 names (bench/scale).
  return Object.freeze(zone);
}

const DEFAULT_DNSSEC = dnssecSchema.options[1].parse({});

function dnssecSettings(value: ZoneFile['dnssec']): DnssecSettings | undefined {
  if (value === undefined || value === false) return undefined;
  const d = value === true ? DEFAULT_DNSSEC : value;
  return Object.freeze({ algorithm: DNSSEC_ALGORITHM_NUMBERS[d.algorithm], keys: d.keys, validityMs: d.validity, refreshMs: d.refresh, denial: d.denial });
}

/**
 * Absurd static data: names that only become too long once the zone is appended, and
 * RDATA or RRsets too big for any DNS message, are errors here rather than broken answers later.
 */
function* checkStaticLimits(
  staticSets: Map<string, Map<number, { ttl: number; rdata: Rdata[] }>>,
  origin: string,
  cfg: ZoneFile,
  sink: ProblemSink,
  pause: () => boolean,
): Steps<void> {
  const pathOf = (owner: string): (string | number)[] => {
    const key = relativeKey(owner, origin);
    if (key in cfg.records) return ['records', key];
    const fq = Object.keys(cfg.records).find((k) => k.toLowerCase().replace(/\.$/, '') === owner || (k === '@' && owner === origin));
    if (fq !== undefined) return ['records', fq];
    return owner === origin ? ['soa'] : ['nameservers'];
  };
  const nameLength = (part: RdataPart) => (Buffer.isBuffer(part) ? part.length : part.name.length + 2);
  for (const [owner, types] of staticSets) {
    if (pause()) yield;
    if (owner.length > MAX_NAME_TEXT) {
      sink.add(pathOf(owner), `${owner.slice(0, 40)}... is ${owner.length} characters with the zone; a DNS name holds at most ${MAX_NAME_TEXT}`, 'EZONE_LIMIT');
      continue;
    }
    for (const [type, set] of types) {
      let total = 0;
      for (const rdata of set.rdata) {
        const size = rdata.reduce((n, part) => n + nameLength(part), 0);
        for (const part of rdata) {
          if (!Buffer.isBuffer(part) && part.name.length > MAX_NAME_TEXT) {
            sink.add(pathOf(owner), `target ${part.name.slice(0, 40)}... is ${part.name.length} characters; a DNS name holds at most ${MAX_NAME_TEXT}`, 'EZONE_LIMIT');
          }
        }
        if (size > 65535) sink.add(pathOf(owner), `a ${typeName(type)} record of ${size} bytes; a DNS record holds at most 65535`, 'EZONE_LIMIT');
        total += owner.length + 2 + 10 + size;
      }
      if (total > MAX_RRSET_BYTES) sink.add(pathOf(owner), `the ${typeName(type)} records come to ${total} bytes; no DNS message could carry them (at most ${MAX_RRSET_BYTES})`, 'EZONE_LIMIT');
    }
  }
}

/** RFC 4592 §2.1.1: a wildcard domain name is one whose first label is `*` (only the first). */
export function isWildcard(name: string): boolean {
  return name.charCodeAt(0) === 0x2a && (name.length === 1 || name.charCodeAt(1) === 0x2e);
}

/** The name below which wildcard `name` answers: its parent (`*.cdn.example.com` -> `cdn.example.com`). */
function wildcardEncloser(name: string): string {
  return name.length === 1 ? '' : name.slice(2);
}

function relativeKey(name: string, origin: string): string {
  if (name === origin) return '@';
  return name.endsWith(`.${origin}`) ? name.slice(0, -origin.length - 1) : `${name}.`;
}

/**
 * A Site Name's candidates (seed 004, "Site Name"): the site, then the next sites of its group
 * in order, wrapping. Its group is the first group listing it; a site in no group fails over
 * within its pool ("if all client bases are handled by all Sites, the Group is the Pool").
 */
function failoverOrder(
  site: SiteModel,
  explicit: string[] | undefined,
  groups: readonly GroupModel[],
  pools: readonly PoolModel[],
  siteRef: (id: string, path: (string | number)[]) => SiteModel | undefined,
): SiteModel[] {
  if (explicit) {
    const rest = explicit.map((id, i) => siteRef(id, ['sites', site.id, 'failover', i])).filter((s): s is SiteModel => !!s && s !== site);
    return [site, ...rest];
  }
  const ring = groups.find((g) => g.sites.includes(site))?.sites ?? pools.find((p) => p.sites.includes(site))?.sites ?? [site];
  const at = ring.indexOf(site);
  return [...ring.slice(at), ...ring.slice(0, at)];
}

function compilePool(
  p: PoolConfig,
  path: (string | number)[],
  allSites: readonly SiteModel[],
  allGroups: readonly GroupModel[],
  groupById: Map<string, GroupModel>,
  siteRef: (id: string, path: (string | number)[]) => SiteModel | undefined,
  absolute: (name: string) => string,
  sink: ProblemSink,
): PoolModel {
  const sites = p.sites
    ? p.sites.map((id, i) => siteRef(id, [...path, 'sites', i])).filter((s): s is SiteModel => s !== undefined)
    : [...allSites];
  if (sites.length === 0) sink.add(path, 'a pool needs at least one site');
  const groups = allGroups.filter((g) => g.sites.every((s) => sites.includes(s)));

  const topology: TopologyRule[] = [];
  let defaultGroup: GroupModel | undefined;
  for (const [groupId, nets] of Object.entries(p.topology ?? {})) {
    if (groupId === 'default') {
      if (typeof nets !== 'string') {
        sink.add([...path, 'topology', 'default'], 'default names one group', 'EZONE_SCHEMA');
        continue;
      }
      defaultGroup = groupById.get(nets);
      if (!defaultGroup) sink.add([...path, 'topology', 'default'], `unknown group "${nets}"`);
      continue;
    }
    const group = groupById.get(groupId);
    if (!group) {
      sink.add([...path, 'topology', groupId], `unknown group "${groupId}"`);
      continue;
    }
    if (!groups.includes(group)) sink.add([...path, 'topology', groupId], `group "${groupId}" has sites outside this pool`);
    for (const [i, net] of (Array.isArray(nets) ? nets : [nets]).entries()) {
      try {
        const [addr, prefix] = ipaddr.parseCIDR(net);
        // Zero the host bits so a rule compares whole bytes of the network.
        const bytes = Uint8Array.from(addr.toByteArray());
        for (let bit = prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
        topology.push(Object.freeze({ family: addr.kind() === 'ipv4' ? 4 : 6, bytes, prefix, group }));
      } catch {
        sink.add([...path, 'topology', groupId, i], `"${net}" is not a network (use e.g. 198.51.100.0/24)`, 'EZONE_SCHEMA');
      }
    }
  }
  topology.sort((a, b) => b.prefix - a.prefix);

  const thresholds = {
    offload: p.thresholds?.offload ?? 0.7,
    throttle: p.thresholds?.throttle ?? 0.9,
    drop: p.thresholds?.drop ?? 0.97,
  };
  if (!(thresholds.offload < thresholds.throttle && thresholds.throttle < thresholds.drop)) {
    sink.add([...path, 'thresholds'], 'thresholds must rise: offload < throttle < drop', 'EZONE_SCHEMA');
  }
  const primary = p.primary ? siteRef(p.primary, [...path, 'primary']) : undefined;
  const offload = (p.offload ?? []).map((id, i) => siteRef(id, [...path, 'offload', i])).filter((s): s is SiteModel => !!s);
  if (p.policy === 'offload') {
    if (!primary) sink.add([...path, 'primary'], 'policy offload needs a primary site', 'EZONE_SCHEMA');
    if (offload.length === 0) sink.add([...path, 'offload'], 'policy offload needs offload sites', 'EZONE_SCHEMA');
  } else if (p.primary || p.offload || p.thresholds) {
    sink.add([...path, 'policy'], 'primary, offload and thresholds apply to policy offload only', 'EZONE_SCHEMA');
  }
  for (const [i, s] of [primary, ...offload].entries()) {
    if (s && !sites.includes(s)) sink.add([...path, i === 0 ? 'primary' : 'offload'], `site "${s.id}" is not in this pool`);
  }
  if (primary && offload.includes(primary)) sink.add([...path, 'offload'], `the primary "${primary.id}" cannot also be an offload site`, 'EZONE_CONFLICT');
  if (new Set(offload).size !== offload.length) sink.add([...path, 'offload'], 'a site appears twice in offload', 'EZONE_CONFLICT');
  if (p.offload_choice !== undefined && p.policy !== 'offload') sink.add([...path, 'offload_choice'], 'offload_choice applies to policy offload only', 'EZONE_SCHEMA');
  if (p.primary_keeps !== undefined && p.policy !== 'offload') sink.add([...path, 'primary_keeps'], 'primary_keeps applies to policy offload only', 'EZONE_SCHEMA');
  if (p.load_per_answer !== undefined && p.policy !== 'least-busy' && p.policy !== 'offload') {
    sink.add([...path, 'load_per_answer'], 'load_per_answer applies to policies least-busy and offload only', 'EZONE_SCHEMA');
  }
  const sorry = p.sorry === undefined ? [] : Array.isArray(p.sorry) ? p.sorry : [p.sorry];
  const allDown: AllDown = p.all_down ?? 'all';
  if (allDown === 'sorry' && sorry.length === 0) sink.add([...path, 'all_down'], 'all_down: sorry needs a sorry address', 'EZONE_SCHEMA');
  return Object.freeze({
    name: absolute(p.name),
    policy: p.policy,
    sites: Object.freeze(sites),
    groups: Object.freeze(groups),
    topology: Object.freeze(topology),
    defaultGroup,
    hysteresis: p.hysteresis ? Object.freeze({ stayBelow: p.hysteresis.stay_below, differential: p.hysteresis.differential }) : undefined,
    primary,
    offload: Object.freeze(offload),
    thresholds: Object.freeze(thresholds),
    offloadChoice: p.offload_choice ?? 'load',
    primaryKeeps: p.primary_keeps ?? 0.05,
    sorry4: Object.freeze(sorry.filter((a) => isIP(a) === 4).map(ipv4Rdata)),
    sorry6: Object.freeze(sorry.filter((a) => isIP(a) === 6).map(ipv6Rdata)),
    allDown,
    answers: p.answers ?? 1,
    loadPerAnswer: p.load_per_answer ?? 0,
  });
}

/** The path of the `i`th value of a record (a list) or of its only value. */
function recordPath(ownerText: string, type: RecordType, value: unknown, i: number): (string | number)[] {
  return Array.isArray(value) ? ['records', ownerText, type, i] : ['records', ownerText, type];
}

/** One static record value of a given type as RDATA, or what is wrong with it. */
function parseRdata(type: RecordType, text: string, absolute: (n: string) => string): Rdata | string {
  // A name in RDATA (a CNAME, NS, PTR, MX or SRV target) has the owner names' labels, without
  // wildcards; its length is judged with the zone appended, with the records.
  const target = (t: string): string | { problem: string } => (labelProblem(t) === undefined && !t.includes('*') ? (t === '.' ? '' : absolute(t)) : { problem: `"${t}" is not a domain name` });
  switch (type) {
    case 'A':
      return isIP(text) === 4 ? ipv4Rdata(text) : `"${text}" is not an IPv4 address`;
    case 'AAAA':
      // A zone index (fe80::1%eth0) names a link of this host, nothing in DNS data (RFC 4007 §11).
      return isIP(text) === 6 && !text.includes('%') ? ipv6Rdata(text) : `"${text}" is not an IPv6 address`;
    case 'CNAME':
    case 'NS':
    case 'PTR': {
      const t = target(text);
      return typeof t === 'string' ? nameRdata(t) : t.problem;
    }
    case 'MX': {
      const m = /^(\d{1,5})\s+(\S+)$/.exec(text);
      if (!m || Number(m[1]) > 65535) return `"${text}" is not "preference exchange"`;
      const t = target(m[2]);
      return typeof t === 'string' ? mxRdata(Number(m[1]), t) : t.problem;
    }
    case 'SRV': {
      const m = /^(\d{1,5})\s+(\d{1,5})\s+(\d{1,5})\s+(\S+)$/.exec(text);
      if (!m || [m[1], m[2], m[3]].some((n) => Number(n) > 65535)) return `"${text}" is not "priority weight port target"`;
      const t = target(m[4]);
      return typeof t === 'string' ? srvRdata(Number(m[1]), Number(m[2]), Number(m[3]), t) : t.problem;
    }
    case 'TXT':
      return txtRdata([text]);
    case 'CAA': {
      const m = /^(\d{1,3})\s+([A-Za-z0-9]+)\s+"?([^"]*)"?$/.exec(text);
      if (!m || Number(m[1]) > 255) return `"${text}" is not 'flags tag "value"'`;
      return caaRdata(Number(m[1]), m[2].toLowerCase(), m[3]);
    }
    case 'DS': {
      // RFC 4034 §5.3: the digest in hexadecimal, which may hold spaces.
      const m = /^(\d{1,5})\s+(\d{1,3})\s+(\d{1,3})\s+([0-9A-Fa-f\s]+)$/.exec(text);
      const hex = m?.[4].replace(/\s+/g, '') ?? '';
      if (!m || Number(m[1]) > 65535 || Number(m[2]) > 255 || Number(m[3]) > 255 || hex.length === 0 || hex.length % 2 !== 0) return `"${text}" is not "keytag algorithm digest-type digest"`;
      return dsRdata(Number(m[1]), Number(m[2]), Number(m[3]), Buffer.from(hex, 'hex'));
    }
  }
}


