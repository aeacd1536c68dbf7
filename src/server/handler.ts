/**
 * The socket-free request handler: bytes in, bytes (or nothing) out. Transports (udp.ts,
 * tcp.ts) are thin adapters around it, so most tests call it directly.
 *
 * Contract: `handle()` never throws and never awaits. Any unexpected error while answering
 * becomes SERVFAIL and a counted event (#7); packets that must not be answered return null.
 */
import { CLASS_ANY, CLASS_IN, QTYPE, RCODE } from '../dns/constants.js';
import { buildResponse, failureResponse, rcodeResponse, type Transport } from '../dns/response.js';
import { decodeQuery, type DecodedQuery, type WireRecord } from '../dns/wire.js';
import type { DynamicName, SiteModel, ZoneSet } from '../model/zone-model.js';
import { AllDownWatch } from '../policy/all-down-watch.js';
import { selectAnswer } from '../policy/select.js';
import { systemEnv, withMemory, type Family, type PolicyEnv, type Selection } from '../policy/types.js';
import { EMPTY_SNAPSHOT, type StateSnapshot } from '../state/snapshot.js';
import { lookup } from './lookup.js';

export interface RequestContext {
  readonly transport: Transport;
  /** The resolver's address (for topology without ECS, and rate limiting). */
  readonly clientAddress: string;
}

/** What a handled query turned into, for metrics and logs (reused object: copy what you keep). */
export interface QueryEvent {
  transport: Transport;
  zone: string;
  qtype: number;
  rcode: number;
  /** Site ids answered for a dynamic name, or '' */
  site: string;
  name: string;
  dropped: boolean;
  error: Error | null;
}

export interface HandlerObserver {
  onQuery?(event: QueryEvent): void;
  onSelection?(name: DynamicName, selection: Selection): void;
  /** A name entered (true) or left (false) the all-down state; called once per transition. */
  onAllDown?(name: DynamicName, allDown: boolean, selection: Selection): void;
}

/** The mutable holder the server swaps zones and state into, each by one assignment. */
export class Runtime {
  zones: ZoneSet;
  state: StateSnapshot;
  constructor(zones: ZoneSet, state: StateSnapshot = EMPTY_SNAPSHOT) {
    this.zones = zones;
    this.state = state;
  }
}

export class Handler {
  private readonly recordCache = new WeakMap<DynamicName, Map<string, WireRecord[]>>();
  private readonly event: QueryEvent = { transport: 'udp', zone: '', qtype: 0, rcode: 0, site: '', name: '', dropped: false, error: null };
  /** Clock, random source and the policies' memory (one PolicyMemory per handler). */
  readonly env: PolicyEnv;
  private readonly allDown: AllDownWatch;

  constructor(
    readonly runtime: Runtime,
    env: PolicyEnv = systemEnv,
    private readonly observer: HandlerObserver = {},
  ) {
    this.env = withMemory(env);
    this.allDown = new AllDownWatch(this.env.memory!, observer.onAllDown?.bind(observer));
  }

  handle(raw: Buffer, ctx: RequestContext): Buffer | null {
    const ev = this.event;
    ev.transport = ctx.transport;
    ev.zone = '';
    ev.qtype = 0;
    ev.site = '';
    ev.name = '';
    ev.dropped = false;
    ev.error = null;
    let out: Buffer | null;
    try {
      out = this.answer(raw, ctx, ev);
    } catch (error) {
      ev.error = error as Error;
      out = this.servfail(raw);
    }
    ev.dropped = out === null;
    ev.rcode = out !== null && out.length >= 4 ? out[3] & 0xf : -1;
    this.observer.onQuery?.(ev);
    return out;
  }

  private answer(raw: Buffer, ctx: RequestContext, ev: QueryEvent): Buffer | null {
    const decoded = decodeQuery(raw);
    if (!decoded.ok) {
      if (decoded.action === 'drop') return null;
      return failureResponse(raw, decoded);
    }
    const query = decoded.query;
    ev.qtype = query.qtype;
    ev.name = query.qname;
    if (query.edns !== null && query.edns.version > 0) return rcodeResponse(query, RCODE.BADVERS);
    // Zone transfers are not offered; meta-types other than ANY are not queries we answer.
    if (query.qtype === QTYPE.AXFR || query.qtype === QTYPE.IXFR) return rcodeResponse(query, RCODE.REFUSED);
    if (query.qtype === QTYPE.OPT) return rcodeResponse(query, RCODE.FORMERR);
    if (query.qclass !== CLASS_IN && query.qclass !== CLASS_ANY) return rcodeResponse(query, RCODE.REFUSED);

    const result = lookup(this.runtime.zones, query.qname, query.qtype);
    if (result.kind === 'refused') return rcodeResponse(query, RCODE.REFUSED);
    ev.zone = result.zone.origin;
    if (result.kind !== 'answer' || result.dynamic === undefined) {
      return buildResponse(query, result, ctx.transport, null, null);
    }
    const dynamic = result.dynamic;
    const selection = selectAnswer(dynamic, result.family, this.runtime.state, { address: ctx.clientAddress, ecs: query.edns?.ecs ?? null }, this.env);
    this.allDown.observe(dynamic, selection);
    this.observer.onSelection?.(dynamic, selection);
    if (selection.kind === 'drop') return null;
    const records = this.recordsFor(dynamic, selection, result.family);
    if (selection.kind === 'sites') ev.site = selection.sites.length === 1 ? selection.sites[0].id : selection.sites.map((s) => s.id).join(',');
    return buildResponse(query, result, ctx.transport, records, selection);
  }

  /** A dynamic name's A/AAAA records for the chosen sites, built once per (name, choice). */
  private recordsFor(name: DynamicName, selection: Selection, family: Family): readonly WireRecord[] | null {
    if (selection.kind !== 'sites' && selection.kind !== 'sorry') return null;
    let perName = this.recordCache.get(name);
    if (perName === undefined) this.recordCache.set(name, (perName = new Map()));
    const key = selection.kind === 'sorry' ? `sorry/${family}` : selection.sites.length === 1 ? `${selection.sites[0].id}/${family}` : `${selection.sites.map((s) => s.id).join(',')}/${family}`;
    let records = perName.get(key);
    if (records === undefined) {
      records = [];
      const type = family === 4 ? QTYPE.A : QTYPE.AAAA;
      const rdatas = selection.kind === 'sorry'
        ? family === 4 ? name.pool?.sorry4 ?? [] : name.pool?.sorry6 ?? []
        : selection.sites.flatMap((s: SiteModel) => (family === 4 ? s.rdata4 : s.rdata6));
      for (const rdata of rdatas) records.push(Object.freeze({ owner: name.name, type, ttl: name.ttl, rdata }));
      perName.set(key, records);
    }
    return records;
  }

  private servfail(raw: Buffer): Buffer | null {
    try {
      const decoded = decodeQuery(raw);
      return decoded.ok ? rcodeResponse(decoded.query, RCODE.SERVFAIL) : null;
    } catch {
      return null;
    }
  }
}

export type { DecodedQuery };
