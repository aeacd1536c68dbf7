/**
 * The socket-free request handler: bytes in, bytes (or nothing) out. Transports (udp.ts,
 * tcp.ts, and the batched UDP addon of #9) are thin adapters around it, so most tests call it
 * directly.
 *
 * CONTRACT (#8, shared with the batched UDP path of #9; keep it stable):
 *
 *   handler.handleInto(query, ctx, out, queryLength = query.length): number
 *
 *   - The single core. Reads the query from `query[0 .. queryLength)`, writes the response into
 *     `out[0 .. n)` and returns n, or -1 when nothing must be sent (QR=1, under 12 bytes, a policy
 *     drop). `queryLength` lets a transport pass a fixed-size slot view of a shared buffer
 *     without creating a subarray per datagram.
 *   - `out` must hold at least UDP_RESPONSE_MAX (1232) bytes for UDP and TCP_RESPONSE_MAX
 *     (65535) for TCP; UDP replies never exceed min(client's EDNS size, 1232) or 512 (RFC 6891
 *     §6.2.5, RFC 1035 §4.2.1). `query` and `out` must not overlap.
 *   - Synchronous, never throws, never awaits; it keeps no reference to `query`, `out` or `ctx`
 *     after returning, so transports may reuse all three for the next datagram.
 *   - `handle(query, ctx)` is a thin allocating wrapper (handleInto into a scratch buffer, then
 *     a copy of the n bytes, or null): same behaviour, for tests and the TCP framing.
 *
 *   RequestContext: `transport` and the client's address. `clientAddress` is the text form
 *   (as node:dgram reports it); it may be a lazy getter. A transport that has raw sockaddr bytes
 *   (the addon) reuses one `PeerContext` and calls `setBytes(family, bytes, offset, port)` per
 *   datagram: the text is then computed only if something reads `clientAddress` (topology
 *   without ECS, RRL keys), and `clientFamily` + `clientBytes` (first 4 or 16 bytes, network
 *   order) let consumers match prefixes without parsing text. Consumers must not keep
 *   `clientBytes` past the call (it is overwritten by the next datagram); copy what they keep.
 *
 *   The UDP path is chosen in one place, `listenUdpPath()` in udp.ts (flag `--udp-path`, env
 *   SITEDNS_UDP_PATH: auto | dgram | batched); the addon registers its listener there with the
 *   same signature as `listenUdp()`. bench/qps reads SITEDNS_UDP_PATH the same way.
 *
 * Fast path (#8): names whose answers are compiled to wire bytes (src/dns/prebuilt.ts) cost a
 * header check, a hash lookup on the question's bytes, a policy choice and a copy with ID,
 * RD/CD and the question's letter case patched (an ECS option echoed with scope 0). Everything
 * else (ECS for a name whose answer depends on the client, truncation, odd types, malformed
 * packets) takes the general path through dns/response.ts, which the prebuilt bytes
 * match byte for byte (test/perf/prebuilt-diff.test.ts).
 *
 * `handle()`/`handleInto()` never throw: any unexpected error while answering becomes SERVFAIL
 * and a counted event (#7); packets that must not be answered give null / -1.
 */
import ipaddr from 'ipaddr.js';
import { CLASS_ANY, CLASS_IN, EDNS_UDP_PAYLOAD, HEADER_LEN, MAX_MESSAGE, QTYPE, RCODE } from '../dns/constants.js';
import { PrebuiltAnswer, QueryScan, hashWireName, prebuiltLimit, questionNameText, scanQuery, writePrebuilt } from '../dns/prebuilt.js';
import { buildResponse, failureResponse, rcodeResponse, type Transport } from '../dns/response.js';
import { decodeQuery, type DecodedQuery, type WireRecord } from '../dns/wire.js';
import type { DynamicName, SiteModel, ZoneSet } from '../model/zone-model.js';
import { AllDownWatch } from '../policy/all-down-watch.js';
import { selectAnswer } from '../policy/select.js';
import { systemEnv, withMemory, type ClientInfo, type Family, type PolicyEnv, type Selection } from '../policy/types.js';
import type { Runtime } from '../state/runtime.js';
import { prebuiltTable, type PrebuiltTable } from './fast-path.js';
import { lookup } from './lookup.js';

/** Out buffer sizes a transport must provide to handleInto (see CONTRACT above). */
export const UDP_RESPONSE_MAX = EDNS_UDP_PAYLOAD;
export const TCP_RESPONSE_MAX = MAX_MESSAGE;

export interface RequestContext {
  readonly transport: Transport;
  /** The resolver's address as text (for topology without ECS, and rate limiting); may be lazy. */
  readonly clientAddress: string;
  /** When the transport has the raw address: 4 or 6, with the bytes in `clientBytes`. */
  readonly clientFamily?: 4 | 6;
  /**
   * The raw address: the first 4 (IPv4) or 16 (IPv6) bytes, network order; meaningful only when
   * `clientFamily` is set. Valid during the call only.
   */
  readonly clientBytes?: Uint8Array;
  /** The client's source port, when known (0 otherwise). */
  readonly clientPort?: number;
}

/**
 * A reusable RequestContext for transports that hold raw socket addresses: one per socket,
 * refilled per datagram without allocating; the text form is built only when read.
 */
export class PeerContext implements RequestContext {
  transport: Transport;
  /** 4 or 6 after setBytes(); undefined after setText() (then `clientBytes` means nothing). */
  clientFamily: 4 | 6 | undefined = undefined;
  clientPort = 0;
  readonly clientBytes = new Uint8Array(16);
  private text: string | null = '';

  constructor(transport: Transport = 'udp') {
    this.transport = transport;
  }

  /** Copies the 4 (family 4) or 16 (family 6) address bytes at `offset` of `source`. */
  setBytes(family: 4 | 6, source: Uint8Array, offset: number, port = 0): void {
    const n = family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) this.clientBytes[i] = source[offset + i];
    this.clientFamily = family;
    this.clientPort = port;
    this.text = null;
  }

  /** For transports that only have text (node:dgram, node:net): bytes are then not provided. */
  setText(address: string, port = 0): void {
    this.text = address;
    this.clientFamily = undefined;
    this.clientPort = port;
  }

  get clientAddress(): string {
    if (this.text === null) {
      const b = this.clientBytes;
      this.text = this.clientFamily === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : ipaddr.fromByteArray(Array.from(b)).toString();
    }
    return this.text;
  }
}

/** What a handled query turned into, for metrics and logs (reused object: copy what you keep). */
export interface QueryEvent {
  transport: Transport;
  zone: string;
  qtype: number;
  rcode: number;
  /** Site ids answered for a dynamic name, or '' */
  site: string;
  /** The question name, lower case (computed on first read when the fast path did not need it). */
  name: string;
  dropped: boolean;
  error: Error | null;
  /** The resolver's address (for sampled query logs); read during onQuery only. */
  readonly client: string;
  /** performance.now() when the handler got the packet, on 1 query in observer.timeEvery; else 0. */
  startedAt: number;
}

/** The one QueryEvent a handler reuses; `name` is decoded from the query only if read. */
class ReusedQueryEvent implements QueryEvent {
  transport: Transport = 'udp';
  zone = '';
  qtype = 0;
  rcode = 0;
  site = '';
  dropped = false;
  error: Error | null = null;
  startedAt = 0;
  /** The request, during onQuery only: `client` reads its (possibly lazy) address on demand. */
  ctx: RequestContext | null = null;
  get client(): string {
    return this.ctx === null ? '' : this.ctx.clientAddress;
  }
  private nameText = '';
  private nameQuery: Buffer | null = null;
  private nameEnd = 0;

  get name(): string {
    if (this.nameQuery !== null) {
      this.nameText = questionNameText(this.nameQuery, this.nameEnd);
      this.nameQuery = null;
    }
    return this.nameText;
  }
  set name(text: string) {
    this.nameText = text;
    this.nameQuery = null;
  }
  /** Valid during onQuery only (the query bytes are the transport's). */
  nameFrom(query: Buffer, nameEnd: number): void {
    this.nameQuery = query;
    this.nameEnd = nameEnd;
  }
}

export interface HandlerObserver {
  /**
   * Read the clock for 1 query in this many (a power of two; unset: never). A clock read costs
   * more than all the counting (bench/observer.mjs), so latency is measured on a sample.
   */
  readonly timeEvery?: number;
  onQuery?(event: QueryEvent): void;
  onSelection?(name: DynamicName, selection: Selection): void;
  /** A name entered (true) or left (false) the all-down state; called once per transition. */
  onAllDown?(name: DynamicName, allDown: boolean, selection: Selection): void;
}

/** The ClientInfo policies see on the fast path: reused, the address text read only on demand. */
class ClientView implements ClientInfo {
  ctx: RequestContext | null = null;
  readonly ecs = null;
  get address(): string {
    return this.ctx === null ? '' : this.ctx.clientAddress;
  }
}

export interface HandlerOptions {
  /**
   * Answer from prebuilt bytes where possible (default true; env SITEDNS_PREBUILT=0 turns it off
   * to compare, as the differential test and bench/qps do). Output is the same either way.
   */
  prebuilt?: boolean;
}

/** handleInto's internal verdicts besides a length. */
const NO_RESPONSE = -1;
const GENERAL = -2;

export class Handler {
  private readonly recordCache = new WeakMap<DynamicName, Map<string, WireRecord[]>>();
  /** Scratch for handle(): the largest message (TCP). */
  private readonly scratch = Buffer.allocUnsafe(TCP_RESPONSE_MAX);
  private readonly event = new ReusedQueryEvent();
  private readonly scan = new QueryScan();
  private readonly client = new ClientView();
  private tableZones: ZoneSet | null = null;
  private table: PrebuiltTable | null = null;

  private readonly prebuilt: boolean;
  /** How many responses came from prebuilt bytes and how many from the general encoder. */
  readonly answeredBy = { prebuilt: 0, general: 0 };
  /** Clock, random source and the policies' memory (one PolicyMemory per handler). */
  readonly env: PolicyEnv;
  private readonly allDown: AllDownWatch;
  /** Clock reads only for a sample of queries, when someone listens (admin/query-metrics.ts); -1: never. */
  private readonly timeMask: number;
  private queryCount = 0;

  constructor(
    readonly runtime: Runtime,
    env: PolicyEnv = systemEnv,
    private readonly observer: HandlerObserver = {},
    options: HandlerOptions = {},
  ) {
    this.prebuilt = options.prebuilt ?? process.env.SITEDNS_PREBUILT !== '0';
    const every = observer.onQuery !== undefined ? (observer.timeEvery ?? 0) : 0;
    this.timeMask = every > 0 ? 2 ** Math.round(Math.log2(every)) - 1 : -1;
    this.env = withMemory(env);
    this.allDown = new AllDownWatch(this.env.memory!, observer.onAllDown?.bind(observer));
  }

  /** Allocating wrapper around handleInto (see CONTRACT): the response bytes, or null. */
  handle(raw: Buffer, ctx: RequestContext): Buffer | null {
    const n = this.handleInto(raw, ctx, this.scratch);
    if (n < 0) return null;
    const out = Buffer.allocUnsafe(n);
    this.scratch.copy(out, 0, 0, n);
    return out;
  }

  /** The core (see CONTRACT): writes the response into `out`, returns its length or -1. */
  handleInto(query: Buffer, ctx: RequestContext, out: Buffer, queryLength = query.length): number {
    const ev = this.event;
    if (this.timeMask >= 0) ev.startedAt = (++this.queryCount & this.timeMask) === 0 ? performance.now() : 0;
    ev.transport = ctx.transport;
    ev.ctx = ctx;
    ev.zone = '';
    ev.qtype = 0;
    ev.site = '';
    ev.name = '';
    ev.dropped = false;
    ev.error = null;
    let n: number;
    try {
      n = this.prebuilt ? this.fastPath(query, queryLength, ctx, out, ev) : GENERAL;
      if (n !== GENERAL) this.answeredBy.prebuilt++;
      else this.answeredBy.general++;
      if (n === GENERAL) n = this.generalPath(queryLength === query.length ? query : query.subarray(0, queryLength), ctx, out, ev, null);
    } catch (error) {
      ev.error = error as Error;
      n = this.servfail(queryLength === query.length ? query : query.subarray(0, queryLength), out);
    }
    this.client.ctx = null;
    ev.dropped = n < 0;
    ev.rcode = n >= 4 ? out[3] & 0xf : -1;
    this.observer.onQuery?.(ev);
    ev.ctx = null;
    return n < 0 ? NO_RESPONSE : n;
  }

  /** Prebuilt answers (see the module comment); GENERAL when this query needs the general path. */
  private fastPath(q: Buffer, length: number, ctx: RequestContext, out: Buffer, ev: ReusedQueryEvent): number {
    const scan = this.scan;
    scanQuery(q, length, scan);
    // Meta types keep their special answers on the general path: OPT FORMERR, AXFR/IXFR REFUSED.
    if (!scan.ok || scan.qtype === QTYPE.OPT || scan.qtype === QTYPE.AXFR || scan.qtype === QTYPE.IXFR) return GENERAL;
    const zones = this.runtime.zones;
    if (this.tableZones !== zones) {
      this.table = prebuiltTable(zones);
      this.tableZones = zones;
    }
    const table = this.table!;
    const limit = prebuiltLimit(scan, ctx.transport === 'tcp');
    const i = table.find(q, HEADER_LEN, scan.nameEnd, scan.hash);
    if (i < 0) return this.fastMiss(q, table, limit, out, ev);
    if (table.isMarker(i)) return GENERAL;
    const answer = table.answer(i, scan.qtype);
    if (answer === null) return GENERAL;
    ev.zone = table.zoneOf(i)!.origin;
    ev.qtype = scan.qtype;
    ev.name = table.nameOf(i);
    if (answer instanceof PrebuiltAnswer) {
      const n = writePrebuilt(q, scan, answer, 0, limit, out);
      return n < 0 ? GENERAL : n;
    }
    // A Pool/Group/Site Name: the policy chooses, the bytes of the choice are prebuilt. A
    // policy that may read the client (topology, offload by client, ...) needs its ECS: general.
    if (scan.ecsStart >= 0 && answer.prepared.kind === 'per-query') return GENERAL;
    this.client.ctx = ctx;
    const selection = answer.prepared.select(this.runtime.state, this.client, this.env);
    this.allDown.observe(answer.dynamic, selection, answer.memoryIn(this.allDown.memory));
    this.observer.onSelection?.(answer.dynamic, selection);
    if (selection.kind === 'drop') return NO_RESPONSE;
    if (selection.kind === 'sites') ev.site = selection.sites.length === 1 ? selection.sites[0].id : selection.sites.map((s) => s.id).join(',');
    const prebuilt = answer.answerFor(selection);
    if (prebuilt !== null) {
      const n = writePrebuilt(q, scan, prebuilt, 0, limit, out);
      if (n >= 0) return n;
    }
    // Several sites, or too large for this client: the general encoder, with the same choice.
    return this.generalPath(length === q.length ? q : q.subarray(0, length), ctx, out, ev, selection);
  }

  /** A name not in the table: NXDOMAIN from its zone's template, or REFUSED (lookup.ts's walk). */
  private fastMiss(q: Buffer, table: PrebuiltTable, limit: number, out: Buffer, ev: ReusedQueryEvent): number {
    const scan = this.scan;
    const nameEnd = scan.nameEnd;
    let start = HEADER_LEN;
    while (q[start] !== 0) {
      start += 1 + q[start];
      const i = table.find(q, start, nameEnd, hashWireName(q, start, nameEnd));
      if (i < 0) continue;
      if (table.stopsWalk(i)) return GENERAL;
      if (!table.isApex(i)) continue;
      const zone = table.zoneOf(i)!;
      const template = table.nxdomainTemplate(zone);
      if (template === null) return GENERAL;
      ev.zone = zone.origin;
      ev.qtype = scan.qtype;
      ev.nameFrom(q, nameEnd);
      // The template was built for the apex; this name is `start - 12` bytes longer.
      const n = writePrebuilt(q, scan, template, start - HEADER_LEN, limit, out);
      return n < 0 ? GENERAL : n;
    }
    ev.qtype = scan.qtype;
    ev.nameFrom(q, nameEnd);
    const n = writePrebuilt(q, scan, table.refused, 0, limit, out);
    return n < 0 ? GENERAL : n;
  }

  /** The general path: decode, look up, build with response.ts, copy into `out`. */
  private generalPath(raw: Buffer, ctx: RequestContext, out: Buffer, ev: QueryEvent, chosen: Selection | null): number {
    const response = this.answer(raw, ctx, ev, chosen);
    if (response === null || response.length > out.length) return NO_RESPONSE;
    response.copy(out, 0);
    return response.length;
  }

  private answer(raw: Buffer, ctx: RequestContext, ev: QueryEvent, chosen: Selection | null): Buffer | null {
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
    let selection = chosen;
    if (selection === null) {
      selection = selectAnswer(dynamic, result.family, this.runtime.state, { address: ctx.clientAddress, ecs: query.edns?.ecs ?? null }, this.env);
      this.allDown.observe(dynamic, selection);
      this.observer.onSelection?.(dynamic, selection);
    }
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

  private servfail(raw: Buffer, out: Buffer): number {
    try {
      const decoded = decodeQuery(raw);
      if (!decoded.ok) return NO_RESPONSE;
      const response = rcodeResponse(decoded.query, RCODE.SERVFAIL);
      if (response.length > out.length) return NO_RESPONSE;
      response.copy(out, 0);
      return response.length;
    } catch {
      return NO_RESPONSE;
    }
  }
}

export type { DecodedQuery };
