/**
 * `GET /v1/explain?name=&type=&client=&ecs=`: the answer sitedns would give right now, and why.
 * It runs the same lookup and the same pure policy (`selectAnswer`) the handler runs, on the same
 * zones and state snapshot, so "why did I get this IP?" has an answer (architecture sketch:
 * "Results, not packets"). Nothing here is on the query path.
 */
import ipaddr from 'ipaddr.js';
import { QTYPE, typeFromName, typeName } from '../dns/constants.js';
import type { Rdata, WireRecord } from '../dns/records.js';
import type { ClientSubnet } from '../dns/decode.js';
import type { DynamicName, LookupResult, RRset, SiteModel } from '../model/zone-model.js';
import { PolicyMemory, type NameMemory } from '../policy/memory.js';
import { selectAnswer } from '../policy/select.js';
import { matchTopology } from '../policy/topology.js';
import { hasFamily, type ClientInfo, type PolicyEnv } from '../policy/types.js';
import type { Selection } from '../model/selection.js';
import type { Runtime } from '../state/runtime.js';
import { lookup } from '../server/lookup.js';
import { siteView } from '../state/status.js';

export interface ExplainQuery {
  name: string;
  type?: string;
  /** The resolver's address (default 127.0.0.1). */
  client?: string;
  /** EDNS Client Subnet, `address/prefix` (RFC 7871), as a resolver would send it. */
  ecs?: string;
}

export interface ExplainedRecord {
  name: string;
  type: string;
  ttl: number;
  data: string;
}

export class ExplainInputError extends Error {
  readonly code = 'EEXPLAIN_INPUT';
}

export function explain(runtime: Runtime, env: PolicyEnv, q: ExplainQuery): Record<string, unknown> {
  const qname = q.name.trim().toLowerCase().replace(/\.$/, '');
  if (qname.length === 0 || qname.length > 253) throw new ExplainInputError('name= is required (a domain name)');
  const qtype = typeFromName(q.type ?? 'A');
  if (qtype === undefined) throw new ExplainInputError(`type=${q.type}: not a record type (A, AAAA, TXT, TYPE65, ...)`);
  const clientAddress = q.client ?? '127.0.0.1';
  if (!ipaddr.isValid(clientAddress)) throw new ExplainInputError(`client=${clientAddress}: not an IP address`);
  const ecs = q.ecs ? parseEcs(q.ecs) : null;
  const client: ClientInfo = { address: clientAddress, ecs };

  // Read both references once, as a query does, so the explanation is of one consistent view.
  const zones = runtime.zones;
  const snapshot = runtime.state;
  const question = { name: qname, type: typeName(qtype), client: clientAddress, ecs: q.ecs ?? null };
  const stateInfo = { version: snapshot.version, fresh: snapshot.fresh, ageSeconds: snapshot.takenAt > 0 ? (env.now() - snapshot.takenAt) / 1000 : null, zonesGeneration: zones.generation };

  const result = lookup(zones, qname, qtype);
  if (result.kind === 'refused') {
    return { question, rcode: 'REFUSED', why: `${qname} is in none of the served zones (${[...zones.zones.keys()].join(', ') || 'none'})`, state: stateInfo };
  }
  const base = { question, zone: result.zone.origin, state: stateInfo };
  switch (result.kind) {
    case 'nxdomain':
      return { ...base, rcode: 'NXDOMAIN', answer: records(result.answer), authority: records([result.zone.negativeSoa]), why: `${viaChain(result.answer)}no such name in the zone` };
    case 'nodata':
      return { ...base, rcode: 'NOERROR', answer: records(result.answer), authority: records([result.zone.negativeSoa]), why: `${viaChain(result.answer)}the name exists but has no ${typeName(qtype)} records (NODATA)` };
    case 'referral':
      return { ...base, rcode: 'NOERROR', authoritative: result.answer.length > 0, answer: records(result.answer), authority: records([result.ns]), additional: records(result.glue), why: `${viaChain(result.answer)}delegated below the zone: referral to ${result.ns.owner}` };
  }
  const staticAnswer = records(result.answer);
  if (result.dynamic === undefined) {
    return { ...base, rcode: 'NOERROR', answer: staticAnswer, why: 'static records from the zone file' };
  }
  return { ...base, ...explainDynamic(result, result.dynamic, staticAnswer, snapshot, client, env) };
}

function explainDynamic(
  result: Extract<LookupResult, { kind: 'answer' }>,
  name: DynamicName,
  staticAnswer: ExplainedRecord[],
  snapshot: Runtime['state'],
  client: ClientInfo,
  env: PolicyEnv,
): Record<string, unknown> {
  const family = result.family;
  // Count the policy's draws so we can say when a tie was broken at random (then another query
  // may get another of the tied sites: explain and the answer agree on the policy, not the dice).
  // The policies' memory (round-robin position, recent answers) is read from the
  // handler's but written to a copy: explaining must not move the next real answer.
  const now = env.now();
  let draws = 0;
  const weights = new Map<SiteModel, number>();
  const observingEnv: PolicyEnv = {
    now: () => now,
    random: () => (draws++, env.random()),
    memory: env.memory ? new MemoryView(env.memory) : undefined,
    observeDraw: (sites, w) => sites.forEach((site, i) => weights.set(site, w[i])),
  };
  const selection = selectAnswer(name, family, snapshot, client, observingEnv);
  const odds = answerOdds(name, family, snapshot, client, env.memory, now, draws, selection);
  const chosen = new Set(selection.kind === 'sites' ? selection.sites : []);
  const candidates = name.sites.map((site, order) => ({
    ...candidate(site, order, family, snapshot, chosen, now),
    weight: weights.get(site) ?? null,
    probability: round4(odds.get(site) ?? 0),
  }));
  const answer = [...staticAnswer, ...dynamicRecords(name, result.dynamicOwner, selection, family)];
  const other = [...odds].filter(([k]) => typeof k === 'string').map(([k, p]) => [k, round4(p)]);
  return {
    rcode: selection.kind === 'servfail' ? 'SERVFAIL' : selection.kind === 'drop' ? '(no reply)' : 'NOERROR',
    answer,
    name: { name: name.name, kind: name.kind, pool: name.pool?.name ?? null, group: name.group?.id ?? null, site: name.site?.id ?? null, ttl: name.ttl, allDown: name.allDown },
    policy: name.kind === 'site' ? 'failover' : (name.pool?.policy ?? 'least-busy'),
    topology: topologyView(name, client),
    family: `IPv${family}`,
    candidates,
    selection: selectionView(selection),
    allDown: selection.allDown === true,
    usedRandom: draws > 0,
    otherOutcomes: Object.fromEntries(other),
    why: describe(name, selection, draws > 0 ? odds : undefined),
  };
}

/** What the first answer may be for this query now, and how likely: site, `sorry` or `drop`. */
type Outcome = SiteModel | 'sorry' | 'nodata' | 'servfail' | 'drop';

/**
 * The chance of each outcome, found by replaying the policy over evenly spaced values of its
 * random draws (the policies are pure: the same draws give the same answer). One draw: 10,000
 * values, so a share is exact to 0.01 %; two or more (offload's share, then its choice among
 * the offload sites): a 100 x 100 grid of the first two, 1 % steps. No draw: the answer is certain.
 */
function answerOdds(
  name: DynamicName,
  family: 4 | 6,
  snapshot: Runtime['state'],
  client: ClientInfo,
  memory: PolicyMemory | undefined,
  now: number,
  draws: number,
  selection: Selection,
): Map<Outcome, number> {
  const odds = new Map<Outcome, number>();
  if (draws === 0) {
    odds.set(outcomeOf(selection), 1);
    return odds;
  }
  const sweep = (steps: number, inner: number): number => {
    odds.clear();
    let mostDraws = 0;
    const share = 1 / (steps * inner);
    for (let i = 0; i < steps; i++) {
      for (let j = 0; j < inner; j++) {
        const values = [(i + 0.5) / steps, (j + 0.5) / inner];
        let n = 0;
        const replay: PolicyEnv = { now: () => now, random: () => (n < 2 ? values[n++] : (n++, 0.5)), memory: memory ? new MemoryView(memory) : undefined };
        const outcome = outcomeOf(selectAnswer(name, family, snapshot, client, replay));
        odds.set(outcome, (odds.get(outcome) ?? 0) + share);
        if (n > mostDraws) mostDraws = n;
      }
    }
    return mostDraws;
  };
  // The real query may have drawn once (offload kept the primary) where others draw twice
  // (offloaded, then the choice among offload sites): sweep two draws if any replay took two.
  if (draws > 1 || sweep(10_000, 1) > 1) sweep(100, 100);
  return odds;
}

function outcomeOf(selection: Selection): Outcome {
  return selection.kind === 'sites' ? selection.sites[0] : selection.kind;
}

function round4(p: number): number {
  return Math.round(p * 10_000) / 10_000;
}

/** A candidate: its place and addresses, then its state as `sitedns status` shows it (state/status.ts). */
function candidate(site: SiteModel, order: number, family: 4 | 6, snapshot: Runtime['state'], chosen: Set<SiteModel>, now: number) {
  const view = siteView(site.key, snapshot.sites.get(site.key), site, now);
  return {
    order,
    site: site.id,
    key: site.key,
    chosen: chosen.has(site),
    up: view.up,
    hasFamily: hasFamily(site, family),
    addresses: family === 4 ? site.v4 : site.v6,
    capacity: site.capacity,
    state: view.state,
    load: view.load ?? null,
    utilization: view.utilization ?? null,
    loadStale: view.loadStale ?? null,
    rttMs: view.rttMs ?? null,
    checkedAt: view.checkedAt ?? null,
    reason: view.reason,
    forced: view.forced ?? null,
  };
}

/** The client's topology group, the same match select.ts makes for a Pool Name (null when none applies). */
function topologyView(name: DynamicName, client: ClientInfo): Record<string, unknown> | null {
  const pool = name.pool;
  if (name.kind !== 'pool' || pool === undefined || pool.policy === 'offload' || (pool.topology.length === 0 && pool.defaultGroup === undefined)) return null;
  const { group, scope } = matchTopology(pool, client);
  return { group: group?.id ?? null, sites: group?.sites.map((s) => s.id) ?? [], ecsScope: scope ?? null, note: 'candidates are narrowed to this group first; the whole pool serves when it has no usable site' };
}

function selectionView(selection: Selection): Record<string, unknown> {
  return {
    kind: selection.kind,
    sites: selection.kind === 'sites' ? selection.sites.map((s) => s.id) : [],
    reason: selection.reason,
    ecsScope: selection.scope ?? null,
  };
}

function describe(name: DynamicName, selection: Selection, odds: Map<Outcome, number> | undefined): string {
  const what = `${name.kind} name ${name.name}`;
  const chance = odds === undefined ? '' : `; chosen partly at random: ${[...odds].sort((a, b) => b[1] - a[1]).map(([o, p]) => `${typeof o === 'string' ? o : o.id} ${(p * 100).toFixed(1)} %`).join(', ')}; another query may get another answer`;
  switch (selection.kind) {
    case 'sites':
      return `${what}: ${selection.sites.map((s) => s.id).join(', ')} (${selection.reason})${chance}`;
    case 'sorry':
      return `${what}: the pool's sorry address (${selection.reason})${chance}`;
    case 'nodata':
      return `${what}: no address (${selection.reason})`;
    case 'servfail':
      return `${what}: SERVFAIL (${selection.reason})`;
    case 'drop':
      return `${what}: no reply (${selection.reason})${chance}`;
  }
}

/** The records the answer carries: owned by the name asked when a wildcard name answers (RFC 4592 §3.3.1). */
function dynamicRecords(name: DynamicName, owner: string, selection: Selection, family: 4 | 6): ExplainedRecord[] {
  const type = family === 4 ? 'A' : 'AAAA';
  if (selection.kind === 'sites') {
    return selection.sites.flatMap((s) => (family === 4 ? s.v4 : s.v6).map((data) => ({ name: owner, type, ttl: name.ttl, data })));
  }
  if (selection.kind === 'sorry') {
    const rdatas = family === 4 ? (name.pool?.sorry4 ?? []) : (name.pool?.sorry6 ?? []);
    return rdatas.map((rdata) => ({ name: owner, type, ttl: name.ttl, data: rdataText(family === 4 ? QTYPE.A : QTYPE.AAAA, rdata) }));
  }
  return [];
}

/** "CNAME to <target>: " when a chain of CNAMEs led to the negative answer or referral. */
function viaChain(chain: readonly RRset[]): string {
  if (chain.length === 0) return '';
  return `CNAME to ${(chain[chain.length - 1].records[0].rdata[0] as { name: string }).name}: `;
}

function records(rrsets: readonly RRset[]): ExplainedRecord[] {
  return rrsets.flatMap((rrset) => rrset.records.map((r: WireRecord) => ({ name: r.owner, type: typeName(r.type), ttl: r.ttl, data: rdataText(r.type, r.rdata) })));
}

/** Presentation form of the RDATA kinds sitedns writes (RFC 1035 §5.1); others as hex. */
export function rdataText(type: number, rdata: Rdata): string {
  const parts = rdata.map((p) => (Buffer.isBuffer(p) ? p : `${p.name}.`));
  const bytes = Buffer.concat(parts.filter((p): p is Buffer => Buffer.isBuffer(p)));
  const names = parts.filter((p): p is string => typeof p === 'string');
  switch (type) {
    case QTYPE.A:
    case QTYPE.AAAA:
      return ipaddr.fromByteArray([...bytes]).toString();
    case QTYPE.CNAME:
    case QTYPE.NS:
    case QTYPE.PTR:
      return names.join(' ');
    case QTYPE.MX:
      return `${bytes.readUInt16BE(0)} ${names[0]}`;
    case QTYPE.TXT: {
      const strings: string[] = [];
      for (let i = 0; i < bytes.length; i += 1 + bytes[i]) strings.push(JSON.stringify(bytes.subarray(i + 1, i + 1 + bytes[i]).toString('latin1')));
      return strings.join(' ');
    }
    case QTYPE.SOA: {
      const n = (i: number) => bytes.readUInt32BE(i * 4);
      return `${names.join(' ')} ${n(0)} ${n(1)} ${n(2)} ${n(3)} ${n(4)}`;
    }
    default:
      return parts.map((p) => (typeof p === 'string' ? p : p.toString('hex'))).join(' ');
  }
}

function parseEcs(text: string): ClientSubnet {
  const slash = text.lastIndexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  if (!ipaddr.isValid(addressText)) throw new ExplainInputError(`ecs=${text}: not address/prefix`);
  const address = ipaddr.parse(addressText);
  const v4 = address.kind() === 'ipv4';
  const max = v4 ? 32 : 128;
  const prefix = slash < 0 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new ExplainInputError(`ecs=${text}: prefix must be 0..${max}`);
  // RFC 7871 §6: address bits past the source prefix are zero.
  const bytes = Buffer.from(address.toByteArray());
  for (let bit = prefix; bit < max; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family: v4 ? 1 : 2, sourcePrefix: prefix, address: bytes };
}


/** Reads a PolicyMemory, keeps the writes to itself (explain's dry run of the policy). */
class MemoryView extends PolicyMemory {
  private readonly copies = new Map<DynamicName, NameMemory>();
  constructor(private readonly source: PolicyMemory) {
    super();
  }
  override of(name: DynamicName): NameMemory {
    let copy = this.copies.get(name);
    if (copy === undefined) {
      const real = this.source.of(name);
      copy = { next: real.next, allDown: real.allDown, drawA: real.drawA, drawAAAA: real.drawAAAA };
      this.copies.set(name, copy);
    }
    return copy;
  }
  override recordAnswer(): void {}
  override answersSince(site: SiteModel, since: number, now: number): number {
    return this.source.answersSince(site, since, now);
  }
}
