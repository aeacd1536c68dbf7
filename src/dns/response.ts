/**
 * The only response builder: a lookup result (and, for Pool/Group/Site Names, the policy's
 * Selection) -> response bytes. Header flags, EDNS (RFC 6891), negative answers (RFC 2308),
 * referrals, and truncation to the transport's size all live here.
 *
 * `extra`: EDNS options the handler adds to the reply's OPT after the ECS echo (NSID, RFC 5001;
 * COOKIE, RFC 7873), as encoded option bytes; written only when the query spoke EDNS.
 */
import type { LookupResult, RRset, ZoneModel, ZoneSignatures } from '../model/zone-model.js';
import type { Selection } from '../model/selection.js';
import { dynamicNodataProof, existingNameProof, nodataProof, nsecAt, nxdomainProof, rrsigOf, rrsetKey, variantKey, wildcardAnswerProof } from '../model/signatures.js';
import { CLASS_CH, CLASSIC_UDP_LIMIT, DNSSEC_TYPE, EDNS_UDP_PAYLOAD, HEADER_LEN, MAX_MESSAGE, QTYPE, RCODE } from './constants.js';
import { MessageWriter, OPT_RECORD_LEN, ecsOption, newScratch } from './encode.js';
import { txtRdata, type WireRecord } from './records.js';
import { skipName } from './decode.js';
import type { DecodeFailure, DecodedQuery, EdnsInfo } from './decode.js';

export type Transport = 'udp' | 'tcp';

// Flags (RFC 1035 §4.1.1): QR=1 always; RD is copied from the query, and CD too for QUERY (CD
// means something only there: RFC 4035 §3.1.6); RA stays clear (no recursion here).
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_CD = 0x0010;

const writer = new MessageWriter(newScratch());

/** Largest response for this query and transport (RFC 6891 §6.2.5, RFC 1035 §4.2.1). */
export function responseLimit(edns: EdnsInfo | null, transport: Transport): number {
  if (transport === 'tcp') return MAX_MESSAGE;
  if (edns === null) return CLASSIC_UDP_LIMIT;
  return Math.min(edns.udpSize, EDNS_UDP_PAYLOAD);
}

// RFC 1035 §4.1.1: the OPCODE "is set by the originator of a query and copied into the
// response" (it matters for NOTIMP replies to other opcodes; a case bench/fuzz found).
const OPCODE_MASK = 0x7800;

function responseFlags(queryFlags: number, aa: boolean, rcode: number): number {
  const copied = (queryFlags & OPCODE_MASK) === 0 ? OPCODE_MASK | FLAG_RD | FLAG_CD : OPCODE_MASK | FLAG_RD;
  return FLAG_QR | (queryFlags & copied) | (aa ? FLAG_AA : 0) | (rcode & 0xf);
}

/** Appends the OPT (with the ECS option when the query had one, then `extra`) if the query spoke EDNS. */
function finishOpt(edns: EdnsInfo | null, rcode: number, arcount: number, scope: number | undefined, extra: Buffer | null): number {
  if (edns === null) return arcount;
  const ecs = edns.ecs === null ? null : ecsOption(edns.ecs, scope ?? 0);
  writer.opt(EDNS_UDP_PAYLOAD, rcode, edns.dnssecOk, ecs, extra);
  return arcount + 1;
}

function optLength(edns: EdnsInfo | null, extra: Buffer | null): number {
  if (edns === null) return 0;
  return OPT_RECORD_LEN + (edns.ecs === null ? 0 : 8 + Math.ceil(edns.ecs.sourcePrefix / 8)) + (extra === null ? 0 : extra.length);
}

/** A reply to a packet we could not take as a query (FORMERR, NOTIMP). */
export function failureResponse(raw: Buffer, failure: Extract<DecodeFailure, { action: 'reply' }>): Buffer {
  writer.reset();
  const hasQuestion = failure.questionEnd > HEADER_LEN;
  writer.header(failure.id, responseFlags(failure.flags, false, failure.rcode), hasQuestion ? 1 : 0, 0, 0, 0);
  if (hasQuestion) {
    raw.copy(writer.buf, HEADER_LEN, HEADER_LEN, failure.questionEnd);
    writer.length = failure.questionEnd;
  }
  // FORMERR for a bad OPT is answered without ECS (we could not read it).
  const edns = failure.edns === null ? null : { ...failure.edns, ecs: null };
  writer.setCounts(0, 0, finishOpt(edns, failure.rcode, 0, undefined, null));
  return writer.finish();
}

/** A reply with just a header, the question and an RCODE (REFUSED, SERVFAIL, BADVERS, NOTIMP). */
export function rcodeResponse(query: DecodedQuery, rcode: number, aa = false, extra: Buffer | null = null): Buffer {
  writer.reset();
  writer.header(query.id, responseFlags(query.flags, aa, rcode), 1, 0, 0, 0);
  writer.question(query.raw, query.questionEnd, query.qname);
  // BADVERS (RFC 6891 §6.1.3) answers with our version (0) and no options.
  const badvers = rcode === RCODE.BADVERS && query.edns !== null;
  const edns = badvers ? { ...query.edns, ecs: null } : query.edns;
  writer.setCounts(0, 0, finishOpt(edns, rcode, 0, undefined, badvers ? null : extra));
  return writer.finish();
}

/**
 * A CH-class TXT answer about this server (RFC 4892 §2: `id.server`, `hostname.bind`,
 * `version.bind`): authoritative, the question's name as owner, TTL 0 (it describes the server
 * that answered, not a name a resolver may cache for another).
 */
export function chaosTxtResponse(query: DecodedQuery, text: string, transport: Transport, extra: Buffer | null): Buffer {
  const record: WireRecord = { owner: query.qname, type: QTYPE.TXT, ttl: 0, rdata: txtRdata([text]), rrClass: CLASS_CH };
  const answer: RRset = { owner: record.owner, type: record.type, ttl: record.ttl, records: [record] };
  return write(query, transport, RCODE.NOERROR, true, { answer: [answer], dynamic: null, dynamicRrsig: null, authority: [], additional: [], glueRequired: false }, undefined, extra);
}

interface Sections {
  answer: readonly RRset[];
  dynamic: readonly WireRecord[] | null;
  /** The RRSIGs of `dynamic` (a DO=1 answer of a signed zone). */
  dynamicRrsig: RRset | null;
  authority: readonly RRset[];
  additional: readonly RRset[];
  /** Whether additional RRsets are required (referral glue: RFC 9471) or optional. */
  glueRequired: boolean;
}

/**
 * Builds the response to a query from its lookup result. `dynamicRecords` are the A/AAAA records
 * the policy chose, when the result ends at a Pool/Group/Site Name.
 */
export function buildResponse(
  query: DecodedQuery,
  result: Exclude<LookupResult, { kind: 'refused' }>,
  transport: Transport,
  dynamicRecords: readonly WireRecord[] | null,
  selection: Selection | null,
  extra: Buffer | null = null,
): Buffer {
  let rcode: number = RCODE.NOERROR;
  let aa = true;
  const sections: Sections = { answer: [], dynamic: null, dynamicRrsig: null, authority: [], additional: [], glueRequired: false };
  switch (result.kind) {
    case 'answer':
      sections.answer = result.answer;
      sections.additional = result.additional;
      if (result.dynamic !== undefined && selection !== null) {
        if (selection.kind === 'servfail') return rcodeResponse(query, RCODE.SERVFAIL, false, extra);
        // No address: NODATA, with the SOA after any CNAMEs that led here (RFC 2308 §3).
        if (selection.kind === 'nodata' || dynamicRecords === null || dynamicRecords.length === 0) sections.authority = [result.zone.negativeSoa];
        else sections.dynamic = dynamicRecords;
      }
      break;
    case 'nodata':
      sections.answer = result.answer;
      sections.authority = [result.zone.negativeSoa];
      break;
    case 'nxdomain':
      rcode = RCODE.NXDOMAIN;
      sections.answer = result.answer;
      sections.authority = [result.zone.negativeSoa];
      break;
    case 'referral':
      // RFC 1034 §4.3.2 step 3b: a referral is not authoritative; after CNAMEs (step 3a) it is,
      // as AA speaks for the question name, the first owner in the answer (RFC 1035 §4.1.1).
      aa = result.answer.length > 0;
      sections.answer = result.answer;
      sections.authority = [result.ns];
      sections.additional = result.glue;
      sections.glueRequired = true;
      break;
  }
  const signatures = query.edns !== null && query.edns.dnssecOk ? result.zone.signatures : undefined;
  if (signatures !== undefined) addSignatures(sections, result, query.qname, query.qtype, selection, signatures);
  return write(query, transport, rcode, aa, sections, selection?.scope, extra);
}

/**
 * RFC 4035 §3.1.1-§3.1.4: a DO=1 answer of a signed zone carries the RRSIGs of its answer and
 * authority RRsets, the NSEC records that prove a name or type absent, a wildcard expansion's
 * proof that the name asked does not exist, and at a delegation the DS or the NSEC proving none
 * (the NS and glue there are the child's: unsigned).
 */
function addSignatures(s: Sections, result: Exclude<LookupResult, { kind: 'refused' }>, qname: string, qtype: number, selection: Selection | null, signatures: ZoneSignatures): void {
  const zone = result.zone;
  const answer: RRset[] = [];
  const authority: RRset[] = [];
  /** Names a wildcard answered (RFC 4035 §3.1.3.3: their NSEC goes in the authority section). */
  const expanded: string[] = [];
  for (const set of s.answer) {
    answer.push(set);
    const signed = rrsigOf(zone, signatures, set);
    if (signed === undefined) continue;
    answer.push(signed.rrsig);
    if (signed.expanded) expanded.push(set.owner);
  }
  s.answer = answer;
  // The name a negative answer is about: the last CNAME's target, or the name asked (RFC 6604 §3).
  const chain = result.answer;
  const denied = chain.length > 0 ? (chain[chain.length - 1].records[0].rdata[0] as { name: string }).name : qname;
  switch (result.kind) {
    case 'answer':
      if (result.dynamic !== undefined && result.dynamicOwner !== result.dynamic.name) expanded.push(result.dynamicOwner);
      if (s.dynamic !== null && selection !== null && (selection.kind === 'sites' || selection.kind === 'sorry')) {
        s.dynamicRrsig = dynamicRrsig(result, selection, s.dynamic, signatures);
      } else if (result.dynamic !== undefined && selection !== null) {
        authority.push(signatures.negativeSoa);
        dynamicNodataProof(zone, signatures, result.dynamic.name, result.dynamicOwner, result.family === 4 ? QTYPE.A : QTYPE.AAAA, authority);
      }
      break;
    case 'nodata': {
      // An NSEC query of a name in the chain: its NSEC RRset is the answer (RFC 4034 §4).
      const nsec = qtype === DNSSEC_TYPE.NSEC && chain.length === 0 ? nsecAt(signatures, denied) : undefined;
      if (nsec !== undefined) {
        answer.push(...nsec);
        s.authority = [];
        break;
      }
      authority.push(signatures.negativeSoa);
      nodataProof(zone, signatures, denied, authority);
      break;
    }
    case 'nxdomain':
      authority.push(signatures.negativeSoa);
      nxdomainProof(zone, signatures, denied, authority);
      break;
    case 'referral': {
      const ds = result.ds;
      if (ds !== undefined) authority.push(ds, signatures.rrsigs.get(rrsetKey(ds.owner, ds.type))!);
      else existingNameProof(zone, signatures, result.ns.owner, authority);
      break;
    }
  }
  for (const name of expanded) wildcardAnswerProof(zone, signatures, name, authority);
  s.authority = [...interleaveRrsigs(s.authority, zone, signatures), ...authority];
  s.additional = interleaveRrsigs(s.additional, zone, signatures);
}

/** Each RRset followed by its RRSIGs, where the zone signs it (not the NS and glue of a delegation). */
function interleaveRrsigs(sets: readonly RRset[], zone: ZoneModel, signatures: ZoneSignatures): RRset[] {
  const out: RRset[] = [];
  for (const set of sets) {
    out.push(set);
    // The negative SOA gets its RRSIGs from addSignatures, at the negative TTL.
    if (set === zone.negativeSoa) continue;
    const signed = rrsigOf(zone, signatures, set);
    if (signed !== undefined && !(set.type === QTYPE.NS && set.owner !== zone.origin)) out.push(signed.rrsig);
  }
  return out;
}

/** The RRSIGs of a Pool/Group/Site answer: made at load for its set of sites, or on first use past them. */
function dynamicRrsig(
  result: Extract<LookupResult, { kind: 'answer' }>,
  selection: Extract<Selection, { kind: 'sites' | 'sorry' }>,
  records: readonly WireRecord[],
  signatures: ZoneSignatures,
): RRset {
  const name = result.dynamic!;
  const key = variantKey(selection, result.family);
  let rrsig = signatures.variants.get(name.name)?.get(key);
  if (rrsig === undefined) {
    const set: RRset = { owner: name.name, type: records[0].type, ttl: name.ttl, records };
    rrsig = signatures.signVariant(name, result.family, key, set);
  }
  if (result.dynamicOwner === name.name) return rrsig;
  const owner = result.dynamicOwner;
  return { ...rrsig, owner, records: rrsig.records.map((r) => ({ ...r, owner })) };
}

function write(query: DecodedQuery, transport: Transport, rcode: number, aa: boolean, s: Sections, scope: number | undefined, extra: Buffer | null): Buffer {
  const limit = responseLimit(query.edns, transport) - optLength(query.edns, extra);
  writer.reset();
  writer.header(query.id, responseFlags(query.flags, aa, rcode), 1, 0, 0, 0);
  writer.question(query.raw, query.questionEnd, query.qname);
  let truncated = false;
  let an = 0;
  let ns = 0;
  let ar = 0;
  for (const set of s.answer) {
    const n = writeSet(set.records, limit);
    if (n < 0) {
      truncated = true;
      break;
    }
    an += n;
  }
  if (!truncated && s.dynamic !== null) {
    const n = writeSet(s.dynamic, limit);
    if (n < 0) truncated = true;
    else an += n;
  }
  if (!truncated && s.dynamicRrsig !== null) {
    const n = writeSet(s.dynamicRrsig.records, limit);
    if (n < 0) truncated = true;
    else an += n;
  }
  if (!truncated) {
    for (const set of s.authority) {
      const n = writeSet(set.records, limit);
      if (n < 0) {
        truncated = true;
        break;
      }
      ns += n;
    }
  }
  if (!truncated) {
    for (const set of s.additional) {
      const n = writeSet(set.records, limit);
      if (n < 0) {
        // Optional additional data is left out silently (RFC 2181 §9); missing glue of a
        // referral makes the referral unusable, so the client must retry over TCP (RFC 9471).
        if (s.glueRequired) truncated = true;
        break;
      }
      ar += n;
    }
  }
  if (truncated) writer.buf.writeUInt16BE(writer.buf.readUInt16BE(2) | FLAG_TC, 2);
  ar = finishOpt(query.edns, rcode, ar, scope, extra);
  writer.setCounts(an, ns, ar);
  return writer.finish();
}

/** Writes a whole RRset or nothing; returns the number of records, or -1 when it did not fit. */
function writeSet(records: readonly WireRecord[], limit: number): number {
  const start = writer.length;
  for (const rr of records) {
    if (!writer.record(rr, limit)) {
      writer.truncateTo(start);
      return -1;
    }
  }
  return records.length;
}

/** Names of RCODEs for logs and metrics. */
export function rcodeOf(response: Buffer): number {
  return response.length >= 4 ? response[3] & 0xf : -1;
}

export { QTYPE };
export type { ZoneModel };

/**
 * Response rate limiting's "slip": the header and question of a response we built, with
 * TC=1 and no records but its OPT, so a real client retries over TCP while a spoofed victim
 * gets no amplification.
 */
export function slipResponse(reply: Buffer): Buffer {
  return emptiedReply(reply, FLAG_TC, -1);
}

/**
 * RFC 7873 §5.2.3: BADCOOKIE, the slip for a query that carried a client cookie but no valid
 * server cookie: the header and question of a response we built, with no records but its OPT,
 * whose COOKIE option holds the fresh server cookie the client retries with (over UDP, and then
 * exempt from rate limiting).
 */
export function badCookieResponse(reply: Buffer): Buffer {
  return emptiedReply(reply, 0, RCODE.BADCOOKIE);
}

/**
 * `reply` (built here, so well-formed) without its records, the OPT kept (our writer puts it
 * last), `flags` set in the header; with `rcode` >= 0, the RCODE replaced (its upper 8 bits in
 * the OPT, RFC 6891 §6.1.3; no OPT, no extended RCODE: then nothing but the flags changes).
 */
function emptiedReply(reply: Buffer, flags: number, rcode: number): Buffer {
  let pos = HEADER_LEN;
  const nameEnd = reply.readUInt16BE(4) === 1 ? skipName(reply, pos) : -1;
  if (nameEnd > 0) pos = Math.min(reply.length, nameEnd + 4);
  const questionEnd = pos;
  let opt: Buffer | null = null;
  const records = reply.readUInt16BE(6) + reply.readUInt16BE(8) + reply.readUInt16BE(10);
  for (let i = 0; i < records && pos > 0 && pos < reply.length; i++) {
    const start = pos;
    pos = skipName(reply, pos);
    if (pos < 0 || pos + 10 > reply.length) break;
    const next = pos + 10 + reply.readUInt16BE(pos + 8);
    if (i === records - 1 && reply[start] === 0 && reply.readUInt16BE(pos) === QTYPE.OPT && next === reply.length) opt = reply.subarray(start);
    pos = next;
  }
  const out = Buffer.allocUnsafe(questionEnd + (opt?.length ?? 0));
  reply.copy(out, 0, 0, questionEnd);
  if (opt) opt.copy(out, questionEnd);
  let headerFlags = out.readUInt16BE(2) | flags;
  if (rcode >= 0 && opt !== null) {
    headerFlags = (headerFlags & ~0xf) | (rcode & 0xf);
    out[questionEnd + 5] = rcode >> 4;
  }
  out.writeUInt16BE(headerFlags, 2);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(opt ? 1 : 0, 10);
  return out;
}
