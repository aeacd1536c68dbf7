/**
 * The prebuilt-answer table of one ZoneSet: question name bytes -> what to answer, without
 * decoding the name to text. Built once per ZoneSet, before the set is published (zones/reload.ts);
 * each (name, type) answer is compiled on its first use by the general encoder and
 * replayed afterwards, so compile time stays proportional to the names, not to names x types x
 * sites, and the memory to what is asked.
 *
 * The table holds every node, empty non-terminal, delegation point and zone apex of the set,
 * keyed by the lower-cased wire name in an open-addressing hash table (FNV-1a, linear probing):
 * a query costs one hash over its name bytes (computed while scanning it) and a byte compare.
 * A name that is not in the table is answered from its closest encloser's wildcard template,
 * NXDOMAIN from its zone's template (with DO=1 in a signed zone, these per closest encloser and
 * covering NSEC/NSEC3), or REFUSED, by walking its suffixes the way lookup.ts does;
 * anything this cannot decide exactly (below a delegation, a name the SOA's names could compress
 * against, a wildcard answer naming what the question could share) goes the general way.
 */
import { HEADER_LEN, QTYPE, RCODE } from '../dns/constants.js';
import { PrebuiltAnswer, hashWireName, questionNameText, syntheticQuery, type TemplateKind } from '../dns/prebuilt.js';
import { buildResponse, rcodeResponse } from '../dns/response.js';
import type { Rdata, WireRecord } from '../dns/records.js';
import type { DynamicName, LookupResult, SiteModel, ZoneModel, ZoneSet } from '../model/zone-model.js';
import type { NameMemory, PolicyMemory } from '../policy/memory.js';
import { PreparedSelection } from '../policy/prepared.js';
import type { Family } from '../policy/types.js';
import type { Selection } from '../model/selection.js';
import { atDelegation, findZone } from '../model/resolve.js';
import { lookup } from './lookup.js';
import { pauseEvery, runAtOnce, runInSlices, type SliceStats, type Steps } from '../util/slices.js';

/** Most (name, type) answers memoized per name: a flood of odd types must not grow memory. */
const MAX_TYPES_PER_NAME = 8;
/** Added to a type's key for the answers of DO=1 queries of a signed zone (types are 16 bits). */
const DO_KEY = 0x10000;
/**
 * Most DO=1 NXDOMAIN templates, wildcard names and their types per table (about 1 KB each; a Pool,
 * Group or Site Name's type one per choice made): a flood of random names below a large zone
 * touches one per interval of its chain, and must not grow memory without bound.
 */
export const MAX_DENIAL_TEMPLATES = 2048;

/**
 * A DO=1 NXDOMAIN of a signed zone (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2), built for the first
 * name asked below one closest encloser whose proof uses one covering record, and replayed for
 * the others: its pointers at the encloser (and above) and into the body move by the difference
 * in name length.
 */
export class DenialTemplate {
  constructor(
    readonly answer: PrebuiltAnswer,
    /** Wire length of the name it was built for. */
    readonly nameLength: number,
  ) {}
}

/** The charge of a memo without a bound: every choice is kept. */
const ALWAYS = (): boolean => true;

/** A Pool/Group/Site Name's answers for one type: chosen per query, bytes per choice. */
export class DynamicAnswers {
  /** Per chosen site (one-site selections: nearly all of them). */
  readonly perSite = new Map<SiteModel, PrebuiltAnswer>();
  sorry: PrebuiltAnswer | null = null;
  nodata: PrebuiltAnswer | null = null;
  servfail: PrebuiltAnswer | null = null;
  /** The policy's choice, worked out once per state snapshot where it can be (prepared.ts). */
  readonly prepared: PreparedSelection;
  // The last selection answered and its bytes: prepared selections are shared objects, so a
  // Site Name (one answer per snapshot) skips the Map lookup below.
  private lastSelection: Selection | null = null;
  private lastAnswer: PrebuiltAnswer | null = null;
  // This name's entry in the PolicyMemory that asked last (the all-down watch reads it per query).
  private memoryOwner: PolicyMemory | null = null;
  private nameMemory: NameMemory | null = null;

  constructor(
    readonly entry: NameEntry,
    readonly qtype: number,
    readonly result: Extract<LookupResult, { kind: 'answer' }>,
    readonly dynamic: DynamicName,
    readonly family: Family,
    /** 'wildcard' when built for a wildcard's own name, to be replayed for the names it answers. */
    private readonly template: TemplateKind | null = null,
    /** Built for DO=1 queries of a signed zone: with the RRSIGs and NSEC records (RFC 4035 §3.1). */
    private readonly dnssecOk = false,
    /** Charged for each choice built; false: the memo is full, that choice goes the general way. */
    private readonly charge: () => boolean = ALWAYS,
  ) {
    this.prepared = new PreparedSelection(dynamic, family);
  }

  /** The bytes for this selection, or null when it has no prebuilt form (several sites, drop). */
  answerFor(selection: Selection): PrebuiltAnswer | null {
    if (selection === this.lastSelection) return this.lastAnswer;
    const answer = this.answerOf(selection);
    this.lastSelection = selection;
    this.lastAnswer = answer;
    return answer;
  }

  /** The name's entry in `memory` (PolicyMemory.of, remembered for the memory that asked last). */
  memoryIn(memory: PolicyMemory): NameMemory {
    if (memory !== this.memoryOwner) {
      this.nameMemory = memory.of(this.dynamic);
      this.memoryOwner = memory;
    }
    return this.nameMemory!;
  }

  private answerOf(selection: Selection): PrebuiltAnswer | null {
    switch (selection.kind) {
      case 'sites': {
        if (selection.sites.length !== 1) return null;
        const site = selection.sites[0];
        const known = this.perSite.get(site);
        if (known !== undefined) return known;
        const answer = this.build(selection, chosenRecords(this.dynamic, this.result.dynamicOwner, selection, this.family));
        if (answer !== null) this.perSite.set(site, answer);
        return answer;
      }
      case 'sorry':
        return (this.sorry ??= this.build(selection, chosenRecords(this.dynamic, this.result.dynamicOwner, selection, this.family)));
      case 'nodata':
        return (this.nodata ??= this.build(selection, null));
      case 'servfail':
        return (this.servfail ??= this.build(selection, null));
      case 'drop':
        return null;
    }
  }

  /** A choice's answer, charged to the memo's bound; null when the memo is full (the general path, and asked again next time). */
  private build(selection: Selection, records: readonly WireRecord[] | null): PrebuiltAnswer | null {
    if (!this.charge()) return null;
    const query = syntheticQuery(this.entry.name, this.qtype, this.dnssecOk);
    const response = buildResponse(query, this.result, 'tcp', records, selection);
    return PrebuiltAnswer.fromResponse(response, query.questionEnd, this.template, this.dnssecOk);
  }
}

/** The A/AAAA records of a 'sites' or 'sorry' selection of `name`, owned by `owner` (both paths build them here). */
export function chosenRecords(name: DynamicName, owner: string, selection: Extract<Selection, { kind: 'sites' | 'sorry' }>, family: Family): WireRecord[] {
  const rdatas = selection.kind === 'sorry'
    ? family === 4 ? name.pool?.sorry4 ?? [] : name.pool?.sorry6 ?? []
    : selection.sites.flatMap((s: SiteModel) => (family === 4 ? s.rdata4 : s.rdata6));
  return ownedRecords(owner, name, rdatas, family);
}

function ownedRecords(owner: string, name: DynamicName, rdatas: readonly Rdata[], family: Family): WireRecord[] {
  const type = family === 4 ? QTYPE.A : QTYPE.AAAA;
  return rdatas.map((rdata) => Object.freeze({ owner, type, ttl: name.ttl, rdata }));
}

/** What a memoized type resolves to. */
export type TypeAnswer = PrebuiltAnswer | DynamicAnswers | null;

/** A name's memoized answers, created the first time the name is asked for. */
export class NameEntry {
  /** Memoized answers by type; null = "general path" for that type. */
  private readonly types: number[] = [];
  private readonly answers: TypeAnswer[] = [];
  constructor(readonly name: string) {}

  /** The answer memoized for `qtype`, or undefined. */
  find(qtype: number): TypeAnswer | undefined {
    const types = this.types;
    for (let k = 0; k < types.length; k++) if (types[k] === qtype) return this.answers[k];
    return undefined;
  }

  /** No more types are memoized: a flood of odd types must not grow memory (general path). */
  get full(): boolean {
    return this.types.length >= MAX_TYPES_PER_NAME;
  }

  remember(qtype: number, answer: TypeAnswer): TypeAnswer {
    this.types.push(qtype);
    this.answers.push(answer);
    return answer;
  }
}

/** A name a wildcard answers with DO=1 in a signed zone, and its wire length (PrebuiltTable.provedWildcard). */
export class ProvedName extends NameEntry {
  constructor(
    name: string,
    readonly nameLength: number,
  ) {
    super(name);
  }
}

// Facts about a name in the table (bit flags).
/** A zone apex (of zoneOf(i)): names below it are NXDOMAIN there. */
const APEX = 1;
/** A delegation point, or a name below one: lookups at or below refer (general path in walks). */
const DELEGATED = 2;
/** Only the suffix walk may use it (an SOA-name suffix that is not a node). */
const MARKER = 4;
/** A suffix of an SOA name: an NXDOMAIN template is not byte-exact below it. */
const SOA_SUFFIX = 8;
/**
 * The parent of a wildcard of its own zone: a name below it that is not in the table is
 * synthesized from the wildcard (RFC 4592 §3.3.1), owned by the name asked.
 */
const WILDCARD_ENCLOSER = 16;

/** Names handled between two pause points of tableSteps. */
const NAMES_PER_STEP = 1024;

/** The hash table and per-name arrays of a PrebuiltTable (tableSteps builds them). */
interface TableParts {
  readonly slots: Int32Array;
  readonly mask: number;
  readonly names: string[];
  readonly zones: (ZoneModel | undefined)[];
  readonly flags: Uint8Array;
  readonly hashes: Int32Array;
  readonly wireStart: Int32Array;
  readonly wire: Uint8Array;
}

/** The table of `zoneSet` as steps that pause every NAMES_PER_STEP names (util/slices.ts runs them). */
function* tableSteps(zoneSet: ZoneSet): Steps<PrebuiltTable> {
  const pause = pauseEvery(NAMES_PER_STEP);
  const collected = yield* collectNames(zoneSet, pause);
  const count = collected.names.length;
  let size = 16;
  while (size < count * 2) size *= 2;
  const slots = new Int32Array(size).fill(-1);
  const mask = size - 1;
  const names = collected.names;
  const hashes = new Int32Array(count);
  const wireStart = new Int32Array(count + 1);
  let bytes = 0;
  for (const name of names) bytes += name.length + 2;
  const wire = new Uint8Array(bytes);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (pause()) yield;
    wireStart[i] = at;
    at = writeWireName(names[i], wire, at);
    const h = hashWireName(wire, wireStart[i], at);
    hashes[i] = h;
    let slot = h & mask;
    while (slots[slot] !== -1) slot = (slot + 1) & mask;
    slots[slot] = i;
  }
  wireStart[count] = at;
  return new PrebuiltTable(zoneSet, { slots, mask, names, zones: collected.zones, flags: collected.flags, hashes, wireStart, wire });
}

export class PrebuiltTable {
  private readonly slots: Int32Array;
  private readonly mask: number;
  /** Per name index: text, zone, flags, hash and wire bytes (in one slab: no object per name). */
  private readonly names: string[];
  private readonly zones: (ZoneModel | undefined)[];
  private readonly flags: Uint8Array;
  private readonly hashes: Int32Array;
  private readonly wireStart: Int32Array;
  private readonly wire: Uint8Array;
  /** Memoized answers, per name index, created on first query. */
  private readonly entries: (NameEntry | undefined)[] = [];
  /** Memoized answers of the wildcard below a name (by the name's index), created on first query. */
  private readonly wildcardEntries: (NameEntry | undefined)[] = [];
  /** Per zone: its NXDOMAIN template (negative answer built for the apex), or null. */
  private readonly nxdomain = new Map<ZoneModel, PrebuiltAnswer | null>();
  /** DO=1 NXDOMAIN templates (null: general path) by closest encloser (name index) and covering record (chain index): pairKey. */
  private readonly denials = new Map<number, DenialTemplate | null>();
  /** DO=1 wildcard answers, the same way (provedWildcard). */
  private readonly provedWildcards = new Map<number, ProvedName>();
  /** Entries of both maps and the types memoized for wildcard names: at most MAX_DENIAL_TEMPLATES. */
  private denialCount = 0;
  readonly refused: PrebuiltAnswer;

  constructor(
    readonly zoneSet: ZoneSet,
    parts: TableParts,
  ) {
    ({ slots: this.slots, mask: this.mask, names: this.names, zones: this.zones, flags: this.flags, hashes: this.hashes, wireStart: this.wireStart, wire: this.wire } = parts);
    const refusedQuery = syntheticQuery('', QTYPE.A);
    this.refused = PrebuiltAnswer.fromResponse(rcodeResponse(refusedQuery, RCODE.REFUSED), refusedQuery.questionEnd);
  }

  get size(): number {
    return this.names.length;
  }

  /** The index of the name whose wire form equals (ASCII case-insensitively) `q[start .. end)`, or -1. */
  find(q: Uint8Array, start: number, end: number, hash: number): number {
    const length = end - start;
    const wire = this.wire;
    for (let slot = hash & this.mask; ; slot = (slot + 1) & this.mask) {
      const i = this.slots[slot];
      if (i === -1) return -1;
      if (this.hashes[i] !== hash) continue;
      const from = this.wireStart[i];
      if (this.wireStart[i + 1] - from !== length) continue;
      let j = 0;
      for (; j < length; j++) {
        let c = q[start + j];
        if (c >= 0x41 && c <= 0x5a) c |= 0x20;
        if (c !== wire[from + j]) break;
      }
      if (j === length) return i;
    }
  }

  nameOf(i: number): string {
    return this.names[i];
  }
  /** The zone lookup.ts would pick for this name (undefined for markers outside every zone). */
  zoneOf(i: number): ZoneModel | undefined {
    return this.zones[i];
  }
  isMarker(i: number): boolean {
    return (this.flags[i] & MARKER) !== 0;
  }
  isApex(i: number): boolean {
    return (this.flags[i] & APEX) !== 0;
  }
  /** Walking up from a name not in the table, this ancestor means "general path". */
  stopsWalk(i: number): boolean {
    return (this.flags[i] & (DELEGATED | SOA_SUFFIX)) !== 0;
  }
  /** Whether a wildcard answers the names below name `i` that are not in the table. */
  hasWildcard(i: number): boolean {
    return (this.flags[i] & WILDCARD_ENCLOSER) !== 0;
  }
  wireLength(i: number): number {
    return this.wireStart[i + 1] - this.wireStart[i];
  }

  /**
   * The memoized answer of name `i` for `qtype`: built on first use; null = general path. A DO=1
   * query of a signed zone has answers of its own, with the RRSIGs and NSEC records, signed at
   * load (memoized under the type with DO_KEY added).
   */
  answer(i: number, qtype: number, dnssecOk = false): TypeAnswer {
    let entry = this.entries[i];
    if (entry === undefined) this.entries[i] = entry = new NameEntry(this.names[i]);
    const signed = dnssecOk && this.zones[i]?.signatures !== undefined;
    const key = signed ? qtype + DO_KEY : qtype;
    const known = entry.find(key);
    if (known !== undefined) return known;
    return entry.full ? null : entry.remember(key, this.build(i, entry, qtype, signed));
  }

  private build(i: number, entry: NameEntry, qtype: number, dnssecOk: boolean): TypeAnswer {
    // Meta types keep their special answers (handler.ts): AXFR/IXFR REFUSED, OPT FORMERR.
    if (this.isMarker(i) || qtype === QTYPE.AXFR || qtype === QTYPE.IXFR || qtype === QTYPE.OPT) return null;
    const result = lookup(this.zoneSet, entry.name, qtype);
    if (result.kind === 'refused') return null;
    // DS at the apex of a zone served inside its parent is the parent's answer (model/resolve.ts
    // parentSideDs), signed or not by the parent: the general path, as rare as it is.
    if (result.zone !== this.zones[i]) return null;
    if (result.kind === 'answer' && result.dynamic !== undefined) return new DynamicAnswers(entry, qtype, result, result.dynamic, result.family, null, dnssecOk);
    const query = syntheticQuery(entry.name, qtype, dnssecOk);
    return PrebuiltAnswer.fromResponse(buildResponse(query, result, 'tcp', null, null), query.questionEnd, null, dnssecOk);
  }

  /**
   * The answer the wildcard below name `i` (its closest encloser) gives for `qtype`: a template
   * built for the wildcard's own name (per choice, for a Pool/Group/Site Name), or null (general
   * path) for a meta type, or a body naming a name below the encloser whose label under it does
   * not exist: a question the wildcard answers could share that label, and the general encoder
   * would compress against more of it than the template did (RFC 1035 §4.1.4). A label that
   * exists cannot be shared: below it, the wildcard answers nothing.
   */
  wildcardAnswer(i: number, qtype: number): TypeAnswer {
    let entry = this.wildcardEntries[i];
    if (entry === undefined) this.wildcardEntries[i] = entry = new NameEntry(wildcardOf(this.names[i]));
    const known = entry.find(qtype);
    if (known !== undefined) return known;
    return entry.full ? null : entry.remember(qtype, this.buildWildcard(i, entry, qtype, false));
  }

  /**
   * A DO=1 wildcard answer of a signed zone carries the proof that the name asked does not exist
   * (RFC 4035 §3.1.3.3, §3.1.3.4; RFC 5155 §7.2.5, §7.2.6), which depends on it only through the
   * record at chain index `cover` (as for NXDOMAIN, denialTemplate): the answers of the wildcard
   * below name `i` for the first name asked with that record, memoized by type and replayed for
   * the others (`provedWildcardAnswer`). Null when the memo is full (general path).
   */
  provedWildcard(i: number, cover: number, q: Buffer, nameEnd: number): ProvedName | null {
    const key = pairKey(i, cover);
    const known = this.provedWildcards.get(key);
    if (known !== undefined) return known;
    if (!this.chargeDenial()) return null;
    const entry = new ProvedName(questionNameText(q, nameEnd), nameEnd - HEADER_LEN);
    this.provedWildcards.set(key, entry);
    return entry;
  }

  /** The answer for `qtype` of `entry`, a name the wildcard below name `i` answers (provedWildcard). */
  provedWildcardAnswer(i: number, entry: ProvedName, qtype: number): TypeAnswer {
    const known = entry.find(qtype);
    if (known !== undefined) return known;
    if (entry.full || !this.chargeDenial()) return null;
    return entry.remember(qtype, this.buildWildcard(i, entry, qtype, true));
  }

  /**
   * The wildcard answer for `entry`'s name: the wildcard's own (DO=0) or, with `dnssecOk`, a name
   * it answers (a ProvedName), built for that name and checked to move with it.
   */
  private buildWildcard(i: number, entry: NameEntry, qtype: number, dnssecOk: boolean): TypeAnswer {
    if (qtype === QTYPE.AXFR || qtype === QTYPE.IXFR || qtype === QTYPE.OPT) return null;
    const encloser = this.names[i];
    const result = lookup(this.zoneSet, entry.name, qtype);
    if (result.kind === 'refused' || result.kind === 'referral') return null;
    // The proof's records are this zone's chain's (`cover` indexes it).
    if (dnssecOk && result.zone !== this.zones[i]) return null;
    // The negative SOA's names need no check: a question below them stops the walk (SOA_SUFFIX).
    const sets = result.kind === 'answer' ? [...result.answer, ...result.additional] : result.answer;
    for (const set of sets) {
      for (const record of set.records) {
        for (const part of record.rdata) if (!Buffer.isBuffer(part) && sharesLabelBelow(result.zone, part.name, encloser)) return null;
      }
    }
    // A Pool/Group/Site Name's choices are built as they are chosen: their bodies hold no name
    // but the owner, which stays (and the SOA of a NODATA choice: see above).
    // A DO=1 one answers a name asked (a ProvedName): each choice it builds counts against the memo's bound.
    if (result.kind === 'answer' && result.dynamic !== undefined) return new DynamicAnswers(entry, qtype, result, result.dynamic, result.family, 'wildcard', dnssecOk, dnssecOk ? this.chargeDenial : ALWAYS);
    const query = syntheticQuery(entry.name, qtype, dnssecOk);
    const built = PrebuiltAnswer.fromResponse(buildResponse(query, result, 'tcp', null, null), query.questionEnd, 'wildcard', dnssecOk);
    // Pointers other than to the whole question (the owner, which stays) must land on the
    // encloser or above (see buildDenial).
    const nameLength = query.questionEnd - 4 - HEADER_LEN;
    return built.movesOnlyFrom(HEADER_LEN + nameLength - this.wireLength(i)) ? built : null;
  }

  /** Counts one more memoized DO=1 answer; false when MAX_DENIAL_TEMPLATES are already. */
  private readonly chargeDenial = (): boolean => {
    if (this.denialCount >= MAX_DENIAL_TEMPLATES) return false;
    this.denialCount++;
    return true;
  };

  /** How many DO=1 NXDOMAIN templates, wildcard names and their types, the choices of those that are Pool/Group/Site Names (or general-path verdicts) are memoized: at most MAX_DENIAL_TEMPLATES. */
  get denialTemplates(): number {
    return this.denialCount;
  }

  /**
   * The DO=1 NXDOMAIN template for a name whose closest encloser is table name `encloser` (of the
   * signed `zone`), proved by the record at index `cover` of the zone's chain (the NSEC covering
   * the name, or the NSEC3 covering its next closer name; the other records of the proof follow
   * from the encloser, as does the closest provable encloser of an opt-out chain, RFC 5155 §7.2.1). The name asked is `q[12 .. nameEnd)`, the template built for it when none is
   * memoized. Null: the general path (the memo full, or a body that would not be byte-exact).
   */
  denialTemplate(encloser: number, zone: ZoneModel, cover: number, q: Buffer, nameEnd: number): DenialTemplate | null {
    const key = pairKey(encloser, cover);
    const known = this.denials.get(key);
    if (known !== undefined) return known;
    if (!this.chargeDenial()) return null;
    const template = this.buildDenial(encloser, zone, questionNameText(q, nameEnd));
    this.denials.set(key, template);
    return template;
  }

  private buildDenial(encloser: number, zone: ZoneModel, name: string): DenialTemplate | null {
    // The encloser must be the one model/signatures.ts finds walking up the name's text: a node,
    // an empty non-terminal or the apex of this zone (not a name of a zone served inside it).
    const encloserName = this.names[encloser];
    if (this.zones[encloser] !== zone || !(encloserName === zone.origin || zone.nodes.has(encloserName) || zone.emptyNonTerminals.has(encloserName))) return null;
    const result = lookup(this.zoneSet, name, QTYPE.A);
    if (result.kind !== 'nxdomain' || result.zone !== zone || result.answer.length > 0) return null;
    const query = syntheticQuery(name, QTYPE.A, true);
    const built = PrebuiltAnswer.fromResponse(buildResponse(query, result, 'tcp', null, null), query.questionEnd, 'suffix', true);
    // RFC 1035 §4.1.4: an NSEC owner exists, so it shares no more with a name asked than the
    // name's closest encloser; an NSEC3 owner could share its hash label only with a name whose
    // label below the apex is as long (the handler sends those the general way); the SOA's names
    // stop the walk (SOA_SUFFIX) where they could share more. So every pointer into the question
    // lands on the encloser or above, for this name (checked here) and for the others.
    const nameLength = query.questionEnd - 4 - HEADER_LEN;
    if (!built.movesOnlyFrom(HEADER_LEN + nameLength - this.wireLength(encloser))) return null;
    return new DenialTemplate(built, nameLength);
  }

  /** NXDOMAIN template of `zone` (built for its apex), or null when the body cannot be moved. */
  nxdomainTemplate(zone: ZoneModel): PrebuiltAnswer | null {
    let template = this.nxdomain.get(zone);
    if (template === undefined) {
      const query = syntheticQuery(zone.origin, QTYPE.A);
      const built = PrebuiltAnswer.fromResponse(buildResponse(query, zone.nxdomain as Exclude<LookupResult, { kind: 'refused' }>, 'tcp', null, null), query.questionEnd, 'suffix');
      template = built.pointers === null ? null : built;
      this.nxdomain.set(zone, template);
    }
    return template;
  }
}

/**
 * One number for (table name index, chain index): both stay below 2^26 (names of a table; records
 * of one zone's chain), so the product is an exact integer and a Map finds the pair in one lookup.
 */
function pairKey(name: number, chainIndex: number): number {
  return name * 0x4000000 + chainIndex;
}

/** Whether `name` is below `encloser` through a label under it that does not exist in `zone`. */
function sharesLabelBelow(zone: ZoneModel, name: string, encloser: string): boolean {
  const suffix = encloser.length === 0 ? 0 : encloser.length + 1;
  if (name.length <= suffix || (suffix > 0 && !name.endsWith(`.${encloser}`))) return false;
  const child = name.slice(name.lastIndexOf('.', name.length - suffix - 1) + 1);
  return !zone.nodes.has(child) && !zone.emptyNonTerminals.has(child) && !zone.cuts.has(child);
}

/** The wildcard whose closest encloser is `encloser` (RFC 4592 §2.1.1). */
function wildcardOf(encloser: string): string {
  return encloser.length === 0 ? '*' : `*.${encloser}`;
}

/** Writes `name` (lower-case text, validated at compile time) as an uncompressed wire name. */
function writeWireName(name: string, out: Uint8Array, at: number): number {
  let pos = at;
  let labelStart = pos++;
  for (let k = 0; k < name.length; k++) {
    const c = name.charCodeAt(k);
    if (c === 0x2e) {
      out[labelStart] = pos - labelStart - 1;
      labelStart = pos++;
    } else out[pos++] = c;
  }
  if (name.length > 0) {
    out[labelStart] = pos - labelStart - 1;
    out[pos++] = 0;
  } else out[labelStart] = 0;
  return pos;
}

/** Every name the table must know, with the facts the fast path needs about it. */
function* collectNames(zoneSet: ZoneSet, pause: () => boolean): Steps<{ names: string[]; zones: (ZoneModel | undefined)[]; flags: Uint8Array }> {
  const index = new Map<string, number>();
  const names: string[] = [];
  const zones: (ZoneModel | undefined)[] = [];
  const flagList: number[] = [];
  const origins = zoneSet.zones;
  // Zones inside other served zones (rare): then a name's zone is found by walking up.
  const nested = zoneSet.nested;
  // At or below a delegation point: a referral for every type but DS at the point itself.
  const isDelegated = (zone: ZoneModel, name: string): boolean => atDelegation(zone, name, QTYPE.A) !== undefined;
  const slot = (name: string): number => {
    let i = index.get(name);
    if (i === undefined) {
      i = names.length;
      index.set(name, i);
      names.push(name);
      zones.push(undefined);
      flagList.push(MARKER);
    }
    return i;
  };
  for (const zone of origins.values()) {
    const add = (name: string) => {
      const i = slot(name);
      const z = nested ? findZone(zoneSet, name) : zone;
      zones[i] = z;
      flagList[i] = (flagList[i] & ~MARKER & ~DELEGATED) | (z !== undefined && isDelegated(z, name) ? DELEGATED : 0);
    };
    for (const name of zone.nodes.keys()) {
      add(name);
      if (pause()) yield;
    }
    for (const name of zone.emptyNonTerminals) {
      add(name);
      if (pause()) yield;
    }
    for (const name of zone.cuts.keys()) add(name);
    add(zone.origin);
    const apex = slot(zone.origin);
    if (zones[apex] === zone) flagList[apex] |= APEX;
    // A name of a zone served inside this one is that zone's: its parent's wildcard never answers there.
    for (const encloser of zone.wildcards.keys()) {
      const i = slot(encloser);
      if (zones[i] === zone) flagList[i] |= WILDCARD_ENCLOSER;
    }
    // RFC 1035 §4.1.4: in an NXDOMAIN for a name below the apex, the SOA's MNAME and RNAME
    // compress against the question. If the question shares a suffix with them that is longer
    // than the apex, the general encoder points there and the template would differ.
    for (const record of zone.negativeSoa.records) {
      for (const part of record.rdata) {
        if (Buffer.isBuffer(part)) continue;
        for (let n = part.name; n.length > zone.origin.length && n.endsWith(`.${zone.origin}`); n = n.slice(n.indexOf('.') + 1)) {
          flagList[slot(n)] |= SOA_SUFFIX;
        }
      }
    }
  }
  return { names, zones, flags: Uint8Array.from(flagList) };
}

/**
 * One table per ZoneSet. The reload path (zones/reload.ts) builds it in slices before it publishes the
 * set, so a query never waits for it (100,000 names: ~0.3 s); a handler finds it here.
 */
const tables = new WeakMap<ZoneSet, PrebuiltTable>();
let builtOnQueryPath = 0;

/** Builds the table of `zones` (once per set) at once. */
export function prebuildTable(zones: ZoneSet): PrebuiltTable {
  let table = tables.get(zones);
  if (table === undefined) tables.set(zones, (table = runAtOnce(tableSteps(zones))));
  return table;
}

/** Builds the table of `zones` (once per set) in slices: before the set is published. */
export async function prebuildTableInSlices(zones: ZoneSet, slices?: SliceStats): Promise<PrebuiltTable> {
  let table = tables.get(zones);
  if (table === undefined) {
    table = await runInSlices(tableSteps(zones), slices);
    // Two loads of one set may have built it side by side: the first one kept is the table.
    table = tables.get(zones) ?? table;
    tables.set(zones, table);
  }
  return table;
}

/**
 * The table a handler answers from. A set that did not come through the reload path (a test's
 * hand-made Runtime) has none yet: it is built here, on the query path, and counted.
 */
export function tableOnQueryPath(zones: ZoneSet): PrebuiltTable {
  const table = tables.get(zones);
  if (table !== undefined) return table;
  builtOnQueryPath++;
  return prebuildTable(zones);
}

/** How many tables were built on the query path in this thread (0 where every set was published by the reload path). */
export function tablesBuiltOnQueryPath(): number {
  return builtOnQueryPath;
}
