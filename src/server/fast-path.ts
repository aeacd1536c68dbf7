/**
 * The prebuilt-answer table of one ZoneSet (#8): question name bytes -> what to answer, without
 * decoding the name to text. Built once per ZoneSet (at load or on the first query after a
 * swap); each (name, type) answer is compiled on its first use by the general encoder and
 * replayed afterwards, so compile time stays proportional to the names, not to names x types x
 * sites, and the memory to what is asked.
 *
 * The table holds every node, empty non-terminal, delegation point and zone apex of the set,
 * keyed by the lower-cased wire name in an open-addressing hash table (FNV-1a, linear probing):
 * a query costs one hash over its name bytes (computed while scanning it) and a byte compare.
 * A name that is not in the table is answered NXDOMAIN from its zone's template, or REFUSED,
 * by walking its suffixes the way lookup.ts does; anything this cannot decide exactly (below a
 * delegation, a name the SOA's names could compress against) goes the general way.
 */
import { QTYPE, RCODE } from '../dns/constants.js';
import { PrebuiltAnswer, hashWireName, syntheticQuery } from '../dns/prebuilt.js';
import { buildResponse, rcodeResponse } from '../dns/response.js';
import { encodeName, type WireRecord } from '../dns/wire.js';
import type { DynamicName, LookupResult, SiteModel, ZoneModel, ZoneSet } from '../model/zone-model.js';
import type { Family, Selection } from '../policy/types.js';
import { lookup } from './lookup.js';

/** Most (name, type) answers memoized per name: a flood of odd types must not grow memory. */
const MAX_TYPES_PER_NAME = 8;

/** A Pool/Group/Site Name's answers for one type: chosen per query, bytes per choice. */
export class DynamicAnswers {
  /** Per chosen site (one-site selections: nearly all of them). */
  readonly perSite = new Map<SiteModel, PrebuiltAnswer>();
  sorry: PrebuiltAnswer | null = null;
  nodata: PrebuiltAnswer | null = null;
  servfail: PrebuiltAnswer | null = null;

  constructor(
    readonly entry: NameEntry,
    readonly qtype: number,
    readonly result: Extract<LookupResult, { kind: 'answer' }>,
    readonly dynamic: DynamicName,
    readonly family: Family,
  ) {}

  /** The bytes for this selection, or null when it has no prebuilt form (several sites, drop). */
  answerFor(selection: Selection): PrebuiltAnswer | null {
    switch (selection.kind) {
      case 'sites': {
        if (selection.sites.length !== 1) return null;
        const site = selection.sites[0];
        let answer = this.perSite.get(site);
        if (answer === undefined) {
          answer = this.build(selection, siteRecords(this.dynamic, site, this.family));
          this.perSite.set(site, answer);
        }
        return answer;
      }
      case 'sorry':
        return (this.sorry ??= this.build(selection, sorryRecords(this.dynamic, this.family)));
      case 'nodata':
        return (this.nodata ??= this.build(selection, null));
      case 'servfail':
        return (this.servfail ??= this.build(selection, null));
      case 'drop':
        return null;
    }
  }

  private build(selection: Selection, records: readonly WireRecord[] | null): PrebuiltAnswer {
    const query = syntheticQuery(this.entry.name, this.qtype);
    const response = buildResponse(query, this.result, 'tcp', records, selection);
    return PrebuiltAnswer.fromResponse(response, query.questionEnd);
  }
}

/** The A/AAAA records of one chosen site (the same records handler.ts builds on its general path). */
export function siteRecords(name: DynamicName, site: SiteModel, family: Family): WireRecord[] {
  const type = family === 4 ? QTYPE.A : QTYPE.AAAA;
  return (family === 4 ? site.rdata4 : site.rdata6).map((rdata) => Object.freeze({ owner: name.name, type, ttl: name.ttl, rdata }));
}

export function sorryRecords(name: DynamicName, family: Family): WireRecord[] {
  const type = family === 4 ? QTYPE.A : QTYPE.AAAA;
  const rdatas = family === 4 ? name.pool?.sorry4 ?? [] : name.pool?.sorry6 ?? [];
  return rdatas.map((rdata) => Object.freeze({ owner: name.name, type, ttl: name.ttl, rdata }));
}

/** What a memoized type resolves to. */
export type TypeAnswer = PrebuiltAnswer | DynamicAnswers | null;

export class NameEntry {
  /** Memoized answers by type; null = "general path" for that type. */
  readonly types: number[] = [];
  readonly answers: TypeAnswer[] = [];
  /** The zone lookup.ts would pick for this exact name (undefined for marker entries). */
  zone: ZoneModel | undefined;
  /** Whether this name is a zone apex (of `zone`): names below it are NXDOMAIN there. */
  apex = false;
  /** A delegation point, or a name below one: lookups at or below refer (general path in walks). */
  delegated = false;
  /** Whether only the suffix walk may use this entry (an SOA-name suffix, not a node). */
  marker = false;
  /** A suffix of an SOA name: an NXDOMAIN template is not byte-exact below it. */
  soaSuffix = false;
  constructor(
    readonly name: string,
    readonly wire: Buffer,
    readonly hash: number,
  ) {}
}

export class PrebuiltTable {
  private readonly slots: Int32Array;
  private readonly mask: number;
  readonly entries: NameEntry[] = [];
  /** Per zone: its NXDOMAIN template (negative answer built for the apex), or null. */
  private readonly nxdomain = new Map<ZoneModel, PrebuiltAnswer | null>();
  readonly refused: PrebuiltAnswer;

  constructor(readonly zones: ZoneSet) {
    const names = collectNames(zones);
    let size = 16;
    while (size < names.size * 2) size *= 2;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    for (const [name, info] of names) {
      const wire = encodeName(name);
      const entry = new NameEntry(name, wire, hashWireName(wire, 0, wire.length));
      entry.zone = info.zone;
      entry.apex = info.apex;
      entry.delegated = info.delegated;
      entry.marker = info.marker;
      entry.soaSuffix = info.soaSuffix;
      this.insert(entry);
    }
    const refusedQuery = syntheticQuery('', QTYPE.A);
    this.refused = PrebuiltAnswer.fromResponse(rcodeResponse(refusedQuery, RCODE.REFUSED), refusedQuery.questionEnd);
  }

  get size(): number {
    return this.entries.length;
  }

  private insert(entry: NameEntry): void {
    let i = entry.hash & this.mask;
    while (this.slots[i] !== -1) i = (i + 1) & this.mask;
    this.slots[i] = this.entries.length;
    this.entries.push(entry);
  }

  /** The entry whose wire name equals (ASCII case-insensitively) `q[start .. end)`, if any. */
  find(q: Uint8Array, start: number, end: number, hash: number): NameEntry | undefined {
    const length = end - start;
    for (let i = hash & this.mask; ; i = (i + 1) & this.mask) {
      const slot = this.slots[i];
      if (slot === -1) return undefined;
      const entry = this.entries[slot];
      if (entry.hash !== hash || entry.wire.length !== length) continue;
      const wire = entry.wire;
      let j = 0;
      for (; j < length; j++) {
        let c = q[start + j];
        if (c >= 0x41 && c <= 0x5a) c |= 0x20;
        if (c !== wire[j]) break;
      }
      if (j === length) return entry;
    }
  }

  /** The memoized answer of `entry` for `qtype`: built on first use; null = general path. */
  answer(entry: NameEntry, qtype: number): TypeAnswer {
    const types = entry.types;
    for (let i = 0; i < types.length; i++) if (types[i] === qtype) return entry.answers[i];
    if (types.length >= MAX_TYPES_PER_NAME) return null;
    const built = this.build(entry, qtype);
    types.push(qtype);
    entry.answers.push(built);
    return built;
  }

  private build(entry: NameEntry, qtype: number): TypeAnswer {
    // Meta types keep their special answers (handler.ts): AXFR/IXFR REFUSED, OPT FORMERR.
    if (entry.marker || qtype === QTYPE.AXFR || qtype === QTYPE.IXFR || qtype === QTYPE.OPT) return null;
    const result = lookup(this.zones, entry.name, qtype);
    if (result.kind === 'refused') return null;
    const query = syntheticQuery(entry.name, qtype);
    if (result.kind === 'answer' && result.dynamic !== undefined) return new DynamicAnswers(entry, qtype, result, result.dynamic, result.family);
    return PrebuiltAnswer.fromResponse(buildResponse(query, result, 'tcp', null, null), query.questionEnd);
  }

  /** NXDOMAIN template of `zone` (built for its apex), or null when the body cannot be moved. */
  nxdomainTemplate(zone: ZoneModel): PrebuiltAnswer | null {
    let template = this.nxdomain.get(zone);
    if (template === undefined) {
      const query = syntheticQuery(zone.origin, QTYPE.A);
      const built = PrebuiltAnswer.fromResponse(buildResponse(query, zone.nxdomain as Exclude<LookupResult, { kind: 'refused' }>, 'tcp', null, null), query.questionEnd, true);
      template = built.pointers === null ? null : built;
      this.nxdomain.set(zone, template);
    }
    return template;
  }
}

interface NameInfo {
  zone: ZoneModel | undefined;
  apex: boolean;
  delegated: boolean;
  marker: boolean;
  soaSuffix: boolean;
}

/** Every name the table must know, with the facts the fast path needs about it. */
function collectNames(zones: ZoneSet): Map<string, NameInfo> {
  const names = new Map<string, NameInfo>();
  const get = (name: string): NameInfo => {
    let info = names.get(name);
    if (info === undefined) names.set(name, (info = { zone: undefined, apex: false, delegated: false, marker: true, soaSuffix: false }));
    return info;
  };
  const zoneOf = (name: string): ZoneModel | undefined => {
    for (let n = name; ; ) {
      const z = zones.zones.get(n);
      if (z !== undefined) return z;
      if (n.length === 0) return undefined;
      const dot = n.indexOf('.');
      n = dot < 0 ? '' : n.slice(dot + 1);
    }
  };
  const isDelegated = (zone: ZoneModel, name: string): boolean => {
    for (let n = name; n.length > zone.origin.length; ) {
      if (zone.cuts.has(n)) return true;
      const dot = n.indexOf('.');
      if (dot < 0) break;
      n = n.slice(dot + 1);
    }
    return false;
  };
  const add = (name: string) => {
    const info = get(name);
    info.marker = false;
    info.zone = zoneOf(name);
    info.delegated = info.zone !== undefined && isDelegated(info.zone, name);
  };
  for (const zone of zones.zones.values()) {
    for (const name of zone.nodes.keys()) add(name);
    for (const name of zone.emptyNonTerminals) add(name);
    for (const name of zone.cuts.keys()) add(name);
    add(zone.origin);
    get(zone.origin).apex = zoneOf(zone.origin) === zone;
    // RFC 1035 §4.1.4: in an NXDOMAIN for a name below the apex, the SOA's MNAME and RNAME
    // compress against the question. If the question shares a suffix with them that is longer
    // than the apex, the general encoder points there and the template would differ.
    for (const record of zone.negativeSoa.records) {
      for (const part of record.rdata) {
        if (Buffer.isBuffer(part)) continue;
        for (let n = part.name; n.length > zone.origin.length && n.endsWith(`.${zone.origin}`); n = n.slice(n.indexOf('.') + 1)) {
          get(n).soaSuffix = true;
        }
      }
    }
  }
  return names;
}

/** One table per ZoneSet; built on first use by any handler. */
const tables = new WeakMap<ZoneSet, PrebuiltTable>();
export function prebuiltTable(zones: ZoneSet): PrebuiltTable {
  let table = tables.get(zones);
  if (table === undefined) tables.set(zones, (table = new PrebuiltTable(zones)));
  return table;
}
