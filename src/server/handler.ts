/**
 * The socket-free request handler: bytes in, bytes (or nothing) out. Transports (udp.ts,
 * tcp.ts, and the batched UDP addon) are thin adapters around it, so most tests call it
 * directly.
 *
 * CONTRACT (shared with the batched UDP path; keep it stable):
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
 *   RequestContext (request-context.ts): the transport and the client's address.
 *
 *   The UDP path is chosen in one place, `listenUdpPath()` in udp.ts (flag `--udp-path`, env
 *   SITEDNS_UDP_PATH: auto | dgram | batched); the addon registers its listener there with the
 *   same signature as `listenUdp()`. bench/qps reads SITEDNS_UDP_PATH the same way.
 *
 * Fast path: names whose answers are compiled to wire bytes (src/dns/prebuilt.ts) cost a
 * header check, a hash lookup on the question's bytes, a policy choice and a copy with ID,
 * RD/CD and the question's letter case patched (an ECS option echoed with scope 0). Everything
 * else (ECS for a name whose answer depends on the client, truncation, odd types, malformed
 * packets) takes the general path through dns/response.ts, which the prebuilt bytes
 * match byte for byte (test/perf/prebuilt-diff.test.ts).
 *
 * The reply options answered per query (RFC 5001 NSID, RFC 7873 COOKIE) are written by both
 * paths from dns/reply-options.ts; the CH-class identity names (RFC 4892) take the general path.
 * `lastCookie` tells the answer step whether the query's source was proven by a valid server
 * cookie (it is then exempt from rate limiting).
 *
 * `handle()`/`handleInto()` never throw: any unexpected error while answering becomes SERVFAIL
 * and a counted event; packets that must not be answered give null / -1.
 */
import { CLASS_ANY, CLASS_CH, CLASS_IN, EDNS_UDP_PAYLOAD, HEADER_LEN, MAX_MESSAGE, QTYPE, RCODE } from '../dns/constants.js';
import type { ServerCookies } from '../dns/cookies.js';
import { PrebuiltAnswer, QueryScan, hashWireName, prebuiltLimit, scanQuery, writePrebuilt } from '../dns/prebuilt.js';
import { QuestionLabels, nsec3CoveringIndex, nsecCoveringIndex, readLabels } from '../dns/canonical-order.js';
import { COOKIE_NONE, ReplyOptions, type CookieProof, type ServerIdentity } from '../dns/reply-options.js';
import { buildResponse, chaosTxtResponse, failureResponse, rcodeResponse } from '../dns/response.js';
import type { WireRecord } from '../dns/records.js';
import { decodeQuery, type DecodedQuery } from '../dns/decode.js';
import type { DynamicName, ZoneModel, ZoneSet } from '../model/zone-model.js';
import { AllDownWatch } from '../policy/all-down-watch.js';
import { selectAnswer } from '../policy/select.js';
import { systemEnv, withMemory, type Family, type PolicyEnv } from '../policy/types.js';
import type { Selection } from '../model/selection.js';
import type { Runtime } from '../state/runtime.js';
import { ClientView } from './client-view.js';
import { chosenRecords, tableOnQueryPath, type DynamicAnswers, type PrebuiltTable, type TypeAnswer } from './fast-path.js';
import { lookup } from './lookup.js';
import { ReusedQueryEvent, type HandlerObserver, type QueryEvent } from './query-event.js';
import { clientAddressBytes, type RequestContext } from './request-context.js';

/** Out buffer sizes a transport must provide to handleInto (see CONTRACT above). */
export const UDP_RESPONSE_MAX = EDNS_UDP_PAYLOAD;
export const TCP_RESPONSE_MAX = MAX_MESSAGE;

export interface HandlerOptions {
  /**
   * Answer from prebuilt bytes where possible (default true; env SITEDNS_PREBUILT=0 turns it off
   * to compare, as the differential test and bench/qps do). Output is the same either way.
   */
  prebuilt?: boolean;
  /** Who this server says it is (NSID and CH TXT); absent: neither is answered. */
  identity?: ServerIdentity;
  /** DNS Cookies (RFC 7873, RFC 9018); absent: COOKIE options are ignored. */
  cookies?: ServerCookies | null;
}

/** Length of an NSEC3 owner's first label: a SHA-1 hash in base32hex (RFC 5155 §3.3). */
const NSEC3_HASH_LABEL = 32;

/** handleInto's internal verdicts besides a length. */
const NO_RESPONSE = -1;
const GENERAL = -2;

export class Handler {
  private readonly recordCache = new WeakMap<DynamicName, Map<string, WireRecord[]>>();
  /** Scratch for handle(): the largest message (TCP). */
  private readonly scratch = Buffer.allocUnsafe(TCP_RESPONSE_MAX);
  private readonly event = new ReusedQueryEvent();
  private readonly scan = new QueryScan();
  private readonly labels = new QuestionLabels();
  private readonly client = new ClientView();
  private tableZones: ZoneSet | null = null;
  private table: PrebuiltTable | null = null;

  private readonly prebuilt: boolean;
  private readonly replyOptions: ReplyOptions;
  private readonly address = new Uint8Array(16);
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
    this.replyOptions = new ReplyOptions(options.identity, options.cookies ?? null);
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
    ev.rcode = 0;
    this.replyOptions.lastCookie = COOKIE_NONE;
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
    // The header holds an RCODE's low 4 bits; an extended one (RFC 6891 §6.1.3) is set where it is chosen.
    if (ev.rcode <= 0xf) ev.rcode = n >= 4 ? out[3] & 0xf : -1;
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
      this.table = tableOnQueryPath(zones);
      this.tableZones = zones;
    }
    const table = this.table!;
    const i = table.find(q, HEADER_LEN, scan.nameEnd, scan.hash);
    if (i >= 0 && table.isMarker(i)) return GENERAL;
    const answer = i >= 0 ? table.answer(i, scan.qtype, scan.dnssecOk) : null;
    if (i >= 0 && answer === null) return GENERAL;
    // The reply options (a cookie's SipHash) once the fast path is likely to answer: a query sent
    // the general way above gets them there, computed once.
    const extra = scan.edns ? this.replyOptionsFor(scan.nsid, scan.cookieStart < 0 ? null : q, scan.cookieStart, scan.cookieLength, ctx) : null;
    const limit = prebuiltLimit(scan, ctx.transport === 'tcp', extra === null ? 0 : extra.length);
    if (answer === null) return this.fastMiss(q, length, ctx, table, limit, out, ev, extra);
    ev.zone = table.zoneOf(i)!.origin;
    ev.qtype = scan.qtype;
    ev.name = table.nameOf(i);
    return this.fastAnswer(q, length, ctx, answer, 0, limit, out, ev, extra);
  }

  /** Writes a prebuilt answer, moved by `delta` when it is a template (see dns/prebuilt.ts). */
  private fastAnswer(q: Buffer, length: number, ctx: RequestContext, answer: PrebuiltAnswer | DynamicAnswers, delta: number, limit: number, out: Buffer, ev: ReusedQueryEvent, extra: Buffer | null): number {
    const scan = this.scan;
    if (answer instanceof PrebuiltAnswer) {
      const n = writePrebuilt(q, scan, answer, delta, limit, out, extra);
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
      const n = writePrebuilt(q, scan, prebuilt, delta, limit, out, extra);
      if (n >= 0) return n;
    }
    // Several sites, or too large for this client: the general encoder, with the same choice.
    return this.generalPath(length === q.length ? q : q.subarray(0, length), ctx, out, ev, selection);
  }

  /**
   * A name not in the table: its closest encloser's wildcard answer (RFC 4592 §3.3.1), NXDOMAIN
   * from its zone's template (DO=1 in a signed zone: fastDenial), or REFUSED (lookup.ts's walk).
   */
  private fastMiss(q: Buffer, length: number, ctx: RequestContext, table: PrebuiltTable, limit: number, out: Buffer, ev: ReusedQueryEvent, extra: Buffer | null): number {
    const scan = this.scan;
    const nameEnd = scan.nameEnd;
    let start = HEADER_LEN;
    // The first name found walking up is the closest encloser: only its wildcard may answer.
    let encloser = -1;
    // The label of the name asked just below the closest encloser (the next closer name, RFC 5155 §1.3).
    let nextCloser = HEADER_LEN;
    while (q[start] !== 0) {
      const child = start;
      start += 1 + q[start];
      const i = table.find(q, start, nameEnd, hashWireName(q, start, nameEnd));
      if (i < 0) continue;
      if (table.stopsWalk(i)) return GENERAL;
      if (encloser < 0) {
        encloser = i;
        nextCloser = child;
        if (table.hasWildcard(i)) return this.fastWildcard(q, length, ctx, table, i, start, child, limit, out, ev, extra);
      }
      if (!table.isApex(i)) continue;
      const zone = table.zoneOf(i)!;
      if (scan.dnssecOk && zone.signatures !== undefined) return this.fastDenial(q, table, zone, encloser, nextCloser, limit, out, ev, extra);
      const template = table.nxdomainTemplate(zone);
      if (template === null) return GENERAL;
      ev.zone = zone.origin;
      ev.qtype = scan.qtype;
      ev.nameFrom(q, nameEnd);
      // The template was built for the apex; this name is `start - 12` bytes longer.
      const n = writePrebuilt(q, scan, template, start - HEADER_LEN, limit, out, extra);
      return n < 0 ? GENERAL : n;
    }
    ev.qtype = scan.qtype;
    ev.nameFrom(q, nameEnd);
    const n = writePrebuilt(q, scan, table.refused, 0, limit, out, extra);
    return n < 0 ? GENERAL : n;
  }

  /**
   * DO=1 NXDOMAIN of a signed zone (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2): the proof depends on the
   * closest encloser and on the record covering the name (NSEC) or its next closer name (NSEC3),
   * found by the name's canonical place in the chain; a template per pair (fast-path.ts).
   * `encloser` is the closest encloser's table index, `nextCloser` where the next closer name
   * starts in the question.
   */
  private fastDenial(q: Buffer, table: PrebuiltTable, zone: ZoneModel, encloser: number, nextCloser: number, limit: number, out: Buffer, ev: ReusedQueryEvent, extra: Buffer | null): number {
    const scan = this.scan;
    const nameEnd = scan.nameEnd;
    const cover = this.coveringIndex(q, zone, nextCloser);
    if (cover < 0) return GENERAL;
    const template = table.denialTemplate(encloser, zone, cover, q, nameEnd);
    if (template === null) return GENERAL;
    ev.zone = zone.origin;
    ev.qtype = scan.qtype;
    ev.nameFrom(q, nameEnd);
    const n = writePrebuilt(q, scan, template.answer, nameEnd - HEADER_LEN - template.nameLength, limit, out, extra);
    return n < 0 ? GENERAL : n;
  }

  /**
   * The index in `zone`'s chain of the record covering the name asked (NSEC) or its next closer
   * name, starting at `nextCloser` (NSEC3): all a proof that the name does not exist depends on
   * besides its closest encloser. -1: the general path.
   */
  private coveringIndex(q: Buffer, zone: ZoneModel, nextCloser: number): number {
    const nameEnd = this.scan.nameEnd;
    const chain = zone.signatures!.chain;
    if (!chain.hashed) {
      readLabels(q, HEADER_LEN, nameEnd, this.labels);
      return nsecCoveringIndex(chain.keys, q, this.labels);
    }
    // A label below the apex as long as a hash label could be an NSEC3 owner's: the general
    // encoder would compress that owner against the question.
    const apexStart = nameEnd - (zone.origin.length === 0 ? 1 : zone.origin.length + 2);
    let below = HEADER_LEN;
    while (below + 1 + q[below] < apexStart) below += 1 + q[below];
    if (q[below] === NSEC3_HASH_LABEL) return -1;
    return nsec3CoveringIndex(chain.digests!, q, nextCloser, nameEnd);
  }

  /** A name the wildcard below table name `i` answers, `i` starting at `start` in the question. */
  private fastWildcard(q: Buffer, length: number, ctx: RequestContext, table: PrebuiltTable, i: number, start: number, nextCloser: number, limit: number, out: Buffer, ev: ReusedQueryEvent, extra: Buffer | null): number {
    const scan = this.scan;
    const zone = table.zoneOf(i)!;
    let answer: TypeAnswer;
    let delta: number;
    if (scan.dnssecOk && zone.signatures !== undefined) {
      // DO=1 in a signed zone: with the proof that the name asked does not exist, built for the
      // first name asked whose proof uses the same covering record.
      const cover = this.coveringIndex(q, zone, nextCloser);
      const proved = cover < 0 ? null : table.provedWildcard(i, cover, q, scan.nameEnd);
      if (proved === null) return GENERAL;
      answer = table.provedWildcardAnswer(i, proved, scan.qtype);
      delta = scan.nameEnd - HEADER_LEN - proved.nameLength;
    } else {
      answer = table.wildcardAnswer(i, scan.qtype);
      // Built for `*.<encloser>`: the encloser sat 2 bytes into that question.
      delta = start - HEADER_LEN - 2;
    }
    if (answer === null) return GENERAL;
    ev.zone = zone.origin;
    ev.qtype = scan.qtype;
    ev.nameFrom(q, scan.nameEnd);
    return this.fastAnswer(q, length, ctx, answer, delta, limit, out, ev, extra);
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
    if (query.edns !== null && query.edns.version > 0) {
      ev.rcode = RCODE.BADVERS;
      return rcodeResponse(query, RCODE.BADVERS);
    }
    const edns = query.edns;
    const extra = edns === null ? null : this.replyOptionsFor(edns.nsid, edns.cookie, 0, edns.cookie?.length ?? 0, ctx);
    // Zone transfers are not offered; meta-types other than ANY are not queries we answer.
    if (query.qtype === QTYPE.AXFR || query.qtype === QTYPE.IXFR) return rcodeResponse(query, RCODE.REFUSED, false, extra);
    if (query.qtype === QTYPE.OPT) return rcodeResponse(query, RCODE.FORMERR, false, extra);
    if (query.qclass === CLASS_CH) return this.chaos(query, ctx, extra);
    if (query.qclass !== CLASS_IN && query.qclass !== CLASS_ANY) return rcodeResponse(query, RCODE.REFUSED, false, extra);

    const result = lookup(this.runtime.zones, query.qname, query.qtype);
    if (result.kind === 'refused') return rcodeResponse(query, RCODE.REFUSED, false, extra);
    ev.zone = result.zone.origin;
    if (result.kind !== 'answer' || result.dynamic === undefined) {
      return buildResponse(query, result, ctx.transport, null, null, extra);
    }
    const dynamic = result.dynamic;
    let selection = chosen;
    if (selection === null) {
      selection = selectAnswer(dynamic, result.family, this.runtime.state, { address: ctx.clientAddress, ecs: query.edns?.ecs ?? null }, this.env);
      this.allDown.observe(dynamic, selection);
      this.observer.onSelection?.(dynamic, selection);
    }
    if (selection.kind === 'drop') return null;
    const records = this.recordsFor(dynamic, result.dynamicOwner, selection, result.family);
    if (selection.kind === 'sites') ev.site = selection.sites.length === 1 ? selection.sites[0].id : selection.sites.map((s) => s.id).join(',');
    return buildResponse(query, result, ctx.transport, records, selection, extra);
  }

  /** What the COOKIE option of the query handled last proved (read by the answer step). */
  get lastCookie(): CookieProof {
    return this.replyOptions.lastCookie;
  }

  private replyOptionsFor(nsidAsked: boolean, cookie: Uint8Array | null, cookieStart: number, cookieLength: number, ctx: RequestContext): Buffer | null {
    // The client's address is read only for a COOKIE option this server answers.
    const addressLength = cookie === null || !this.replyOptions.answersCookies ? 0 : clientAddressBytes(ctx, this.address);
    return this.replyOptions.optionsFor(nsidAsked, cookie, cookieStart, cookieLength, this.address, addressLength);
  }

  /** CH class: the server's identity (RFC 4892 §2) where configured; REFUSED for the rest. */
  private chaos(query: DecodedQuery, ctx: RequestContext, extra: Buffer | null): Buffer {
    const text = this.replyOptions.chaosText(query.qname);
    if (text === null || (query.qtype !== QTYPE.TXT && query.qtype !== QTYPE.ANY)) return rcodeResponse(query, RCODE.REFUSED, false, extra);
    return chaosTxtResponse(query, text, ctx.transport, extra);
  }

  /**
   * A dynamic name's A/AAAA records for the chosen sites, owned by `owner`: built once per
   * (name, choice), or per query for a name a wildcard answers (its owner is the name asked).
   */
  private recordsFor(name: DynamicName, owner: string, selection: Selection, family: Family): readonly WireRecord[] | null {
    if (selection.kind !== 'sites' && selection.kind !== 'sorry') return null;
    if (owner !== name.name) return chosenRecords(name, owner, selection, family);
    let perName = this.recordCache.get(name);
    if (perName === undefined) this.recordCache.set(name, (perName = new Map()));
    const key = selection.kind === 'sorry' ? `sorry/${family}` : selection.sites.length === 1 ? `${selection.sites[0].id}/${family}` : `${selection.sites.map((s) => s.id).join(',')}/${family}`;
    let records = perName.get(key);
    if (records === undefined) perName.set(key, (records = chosenRecords(name, owner, selection, family)));
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
