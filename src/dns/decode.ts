/**
 * Reading queries: a hand-written decoder for the question and the OPT record, behind a cheap
 * header check. The common query shape (one question, no answer/authority records, at most one
 * OPT) is decoded inline without allocating an object graph; anything else in the answer,
 * authority or additional sections is handed to dns2's `Packet.parse`, which already guards
 * against compression loops and overlong labels, so that odd-but-legal queries are still
 * understood. Why not dns2 for everything: it costs ~2.4 µs and a dozen objects per query, a
 * large share of the per-query budget, and it gives no access to the question's original bytes,
 * which we echo to keep the client's letter case.
 */
import dns2 from 'dns2';
import { CLASSIC_UDP_LIMIT, EDNS_OPTION, HEADER_LEN, OPCODE_QUERY, QTYPE } from './constants.js';
import { cookieLengthProblem } from './cookies.js';

export interface ClientSubnet {
  /** 1 = IPv4, 2 = IPv6 (RFC 7871 §6). */
  readonly family: 1 | 2;
  readonly sourcePrefix: number;
  /** The address, zero-padded to 4 or 16 bytes. */
  readonly address: Buffer;
}

export interface EdnsInfo {
  /** Requestor's UDP payload size, raised to 512 when smaller (RFC 6891 §6.2.3). */
  readonly udpSize: number;
  readonly version: number;
  /** DNSSEC OK bit; echoed, never acted on (we do not sign). */
  readonly dnssecOk: boolean;
  /** EDNS Client Subnet, validated (RFC 7871 §7.1.2); null when absent. */
  readonly ecs: ClientSubnet | null;
  /** The query asked for our name server identifier (RFC 5001 §2.3). */
  readonly nsid: boolean;
  /** The COOKIE option's data (RFC 7873 §4: client cookie, then any server cookie), its length checked; null when absent. */
  readonly cookie: Buffer | null;
}

export interface DecodedQuery {
  readonly raw: Buffer;
  readonly id: number;
  /** Header flags word of the query (QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE). */
  readonly flags: number;
  /** Lower-cased question name without the trailing dot ("" is the root). */
  readonly qname: string;
  readonly qtype: number;
  readonly qclass: number;
  /** Offset just past the question (QNAME, QTYPE, QCLASS) in `raw`. */
  readonly questionEnd: number;
  readonly edns: EdnsInfo | null;
}

/** Why a packet is not a query we answer normally. */
export type DecodeFailure =
  /** No reply at all: a response (QR=1), or under 12 bytes. */
  | { readonly action: 'drop'; readonly reason: string }
  /** Reply with this RCODE; `questionEnd` > 12 when the question could be read and is echoed. */
  | {
      readonly action: 'reply';
      readonly rcode: number;
      readonly reason: string;
      readonly id: number;
      readonly flags: number;
      readonly questionEnd: number;
      readonly edns: EdnsInfo | null;
    };

export type DecodeResult = { readonly ok: true; readonly query: DecodedQuery } | ({ readonly ok: false } & DecodeFailure);

const DROP_SHORT = Object.freeze({ ok: false, action: 'drop', reason: 'short' } as const);
const DROP_RESPONSE = Object.freeze({ ok: false, action: 'drop', reason: 'qr' } as const);

function replyFailure(
  raw: Buffer,
  rcode: number,
  reason: string,
  questionEnd: number,
  edns: EdnsInfo | null,
): DecodeResult {
  return { ok: false, action: 'reply', rcode, reason, id: raw.readUInt16BE(0), flags: raw.readUInt16BE(2), questionEnd, edns };
}

/** Result of reading a name: the lower-cased text, or a negative error code. */
const NAME_BAD_LABEL = -1;
const NAME_TOO_LONG = -2;
const NAME_POINTER = -3;
const NAME_TRUNCATED = -4;

/**
 * `text` with the label at `buf[pos]` (its length byte) appended, after a "." when `text` has a
 * label already: lower case, with "." and "\\" inside the label escaped (the one spelling of a
 * question name's text, decoded here or read by the fast path from its wire bytes).
 */
export function appendLabelText(text: string, buf: Uint8Array, pos: number): string {
  if (text.length > 0) text += '.';
  for (let i = pos + 1, end = pos + 1 + buf[pos]; i < end; i++) {
    let c = buf[i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    text += c === 0x2e || c === 0x5c ? '\\' + String.fromCharCode(c) : String.fromCharCode(c);
  }
  return text;
}

/**
 * Reads an uncompressed name starting at `offset`. Returns the offset past it, or a negative
 * error code; the lower-cased text is left in `nameOut.text`. Bytes that cannot occur in a
 * host name ("." inside a label, "\\") are escaped so that such a name never matches a zone name.
 */
const nameOut = { text: '' };
function readQuestionName(buf: Buffer, offset: number): number {
  let text = '';
  let wireLength = 1;
  let pos = offset;
  for (;;) {
    if (pos >= buf.length) return NAME_TRUNCATED;
    const len = buf[pos];
    if (len === 0) {
      pos += 1;
      break;
    }
    // A compression pointer in the question can only point into the header (RFC 1035 §4.1.4).
    if ((len & 0xc0) === 0xc0) return NAME_POINTER;
    if (len > 63) return NAME_BAD_LABEL;
    wireLength += len + 1;
    if (wireLength > 255) return NAME_TOO_LONG;
    if (pos + 1 + len > buf.length) return NAME_TRUNCATED;
    text = appendLabelText(text, buf, pos);
    pos += 1 + len;
  }
  nameOut.text = text;
  return pos;
}

/**
 * Stands in for an OPT we could not read, so that the FORMERR still carries an OPT
 * (the client spoke EDNS; RFC 6891 §7) at the classic size.
 */
const MINIMAL_EDNS: EdnsInfo = Object.freeze({ udpSize: CLASSIC_UDP_LIMIT, version: 0, dnssecOk: false, ecs: null, nsid: false, cookie: null });

/** Parses the OPT RR whose TYPE field is at `typeOffset` (owner is the root). */
function readOpt(raw: Buffer, typeOffset: number): EdnsInfo | string {
  if (typeOffset + 10 > raw.length) return 'OPT record truncated';
  const udpSize = raw.readUInt16BE(typeOffset + 2);
  const version = raw[typeOffset + 5];
  const flags = raw.readUInt16BE(typeOffset + 6);
  const rdlength = raw.readUInt16BE(typeOffset + 8);
  const start = typeOffset + 10;
  const end = start + rdlength;
  if (end > raw.length) return 'OPT RDATA overruns the message';
  let ecs: ClientSubnet | null = null;
  let nsid = false;
  let cookie: Buffer | null = null;
  let pos = start;
  while (pos < end) {
    if (pos + 4 > end) return 'EDNS option header truncated';
    const code = raw.readUInt16BE(pos);
    const length = raw.readUInt16BE(pos + 2);
    const dataStart = pos + 4;
    if (dataStart + length > end) return 'EDNS option overruns OPT RDATA';
    if (code === EDNS_OPTION.ECS) {
      if (ecs !== null) return 'more than one ECS option';
      const parsed = readClientSubnet(raw, dataStart, length);
      if (typeof parsed === 'string') return parsed;
      ecs = parsed;
    } else if (code === EDNS_OPTION.NSID) {
      nsid = true;
    } else if (code === EDNS_OPTION.COOKIE && cookie === null) {
      // RFC 7873 §5.2.2: a malformed length is a FORMERR. Only the first COOKIE option counts.
      const problem = cookieLengthProblem(length);
      if (problem !== null) return problem;
      cookie = Buffer.from(raw.subarray(dataStart, dataStart + length));
    }
    pos = dataStart + length;
  }
  return { udpSize: Math.max(udpSize, CLASSIC_UDP_LIMIT), version, dnssecOk: (flags & 0x8000) !== 0, ecs, nsid, cookie };
}

/**
 * RFC 7871 §6 and §7.1.2: why the ECS option data raw[start, start + length) is inconsistent
 * (a FORMERR), or null when it is valid. Shared with the fast path's scan (prebuilt.ts).
 */
export function clientSubnetProblem(raw: Uint8Array, start: number, length: number): string | null {
  if (length < 4) return 'ECS option too short';
  const family = (raw[start] << 8) | raw[start + 1];
  const sourcePrefix = raw[start + 2];
  const max = family === 1 ? 32 : family === 2 ? 128 : 0;
  if (max === 0) return `ECS family ${family} unknown`;
  if (sourcePrefix > max) return 'ECS source prefix too long';
  if (raw[start + 3] !== 0) return 'ECS scope prefix must be 0 in a query';
  const addressLength = Math.ceil(sourcePrefix / 8);
  if (length - 4 !== addressLength) return 'ECS address length does not match its prefix';
  if (sourcePrefix % 8 !== 0 && addressLength > 0 && (raw[start + 4 + addressLength - 1] & (0xff >> sourcePrefix % 8)) !== 0) {
    return 'ECS address has bits beyond its prefix';
  }
  return null;
}

function readClientSubnet(raw: Buffer, start: number, length: number): ClientSubnet | string {
  const problem = clientSubnetProblem(raw, start, length);
  if (problem !== null) return problem;
  const family = raw.readUInt16BE(start) as 1 | 2;
  const address = Buffer.alloc(family === 1 ? 4 : 16);
  raw.copy(address, 0, start + 4, start + length);
  return { family, sourcePrefix: raw[start + 2], address };
}

/**
 * Decodes a query. Never throws: every malformed packet becomes a DecodeFailure.
 */
export function decodeQuery(raw: Buffer): DecodeResult {
  if (raw.length < HEADER_LEN) return DROP_SHORT;
  const flags = raw.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) return DROP_RESPONSE;
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== OPCODE_QUERY) return replyFailure(raw, 4 /* NOTIMP */, 'opcode', HEADER_LEN, null);
  const qdcount = raw.readUInt16BE(4);
  const ancount = raw.readUInt16BE(6);
  const nscount = raw.readUInt16BE(8);
  const arcount = raw.readUInt16BE(10);
  if (qdcount !== 1) return replyFailure(raw, 1, 'qdcount', HEADER_LEN, seemsToHaveOpt(raw) ? MINIMAL_EDNS : null);
  const nameEnd = readQuestionName(raw, HEADER_LEN);
  if (nameEnd < 0 || nameEnd + 4 > raw.length) return replyFailure(raw, 1, 'question', HEADER_LEN, seemsToHaveOpt(raw) ? MINIMAL_EDNS : null);
  const qname = nameOut.text;
  const qtype = raw.readUInt16BE(nameEnd);
  const qclass = raw.readUInt16BE(nameEnd + 2);
  const questionEnd = nameEnd + 4;

  let edns: EdnsInfo | null = null;
  if (ancount === 0 && nscount === 0 && arcount === 0) {
    if (questionEnd !== raw.length) return replyFailure(raw, 1, 'trailing bytes', questionEnd, null);
  } else if (ancount === 0 && nscount === 0 && arcount === 1 && raw[questionEnd] === 0 && questionEnd + 3 <= raw.length && raw.readUInt16BE(questionEnd + 1) === QTYPE.OPT) {
    // Fast path: one OPT record with the root owner, the shape of nearly every EDNS query.
    const opt = readOpt(raw, questionEnd + 1);
    if (typeof opt === 'string') return replyFailure(raw, 1, opt, questionEnd, MINIMAL_EDNS);
    edns = opt;
    const optEnd = questionEnd + 1 + 10 + raw.readUInt16BE(questionEnd + 9);
    if (optEnd !== raw.length) return replyFailure(raw, 1, 'trailing bytes', questionEnd, edns);
  } else {
    const found = decodeOtherRecords(raw);
    if (typeof found === 'string') return replyFailure(raw, 1, found, questionEnd, raw.readUInt16BE(10) > 0 ? MINIMAL_EDNS : null);
    edns = found;
  }
  return { ok: true, query: { raw, id: raw.readUInt16BE(0), flags, qname, qtype, qclass, questionEnd, edns } };
}

/**
 * The unusual shapes: records in the answer/authority sections, several additional records
 * (e.g. a TSIG we do not verify). dns2 walks them; we then find and re-read the OPT ourselves.
 */
function decodeOtherRecords(raw: Buffer): EdnsInfo | null | string {
  let packet: ReturnType<typeof dns2.Packet.parse>;
  try {
    packet = dns2.Packet.parse(raw);
  } catch (error) {
    return `undecodable: ${(error as Error).message}`;
  }
  if (packet.errors && packet.errors.length > 0) return `undecodable record: ${packet.errors[0].message}`;
  const expected = raw.readUInt16BE(6) + raw.readUInt16BE(8) + raw.readUInt16BE(10);
  const got = packet.answers.length + packet.authorities.length + packet.additionals.length;
  if (got !== expected) return 'record counts do not match the message';
  const opts = packet.additionals.filter((r: { type: number }) => r.type === QTYPE.OPT);
  if (opts.length === 0) return null;
  if (opts.length > 1) return 'more than one OPT record'; // RFC 6891 §6.1.1
  if (opts[0].name !== '') return 'OPT owner is not the root';
  // Locate the OPT's bytes: walk the records again with our own length arithmetic.
  const typeOffset = findOptTypeOffset(raw);
  if (typeOffset < 0) return 'OPT record not found';
  return readOpt(raw, typeOffset);
}

/** Skips a possibly compressed name; returns the offset past it or -1. */
export function skipName(raw: Uint8Array, offset: number, length = raw.length): number {
  let pos = offset;
  for (let guard = 0; guard < 128; guard++) {
    if (pos >= length) return -1;
    const len = raw[pos];
    if (len === 0) return pos + 1;
    if ((len & 0xc0) === 0xc0) return pos + 2 <= length ? pos + 2 : -1;
    if (len > 63) return -1;
    pos += 1 + len;
  }
  return -1;
}

/**
 * For a packet we reject before reading its OPT (bad QDCOUNT or question): does it carry one?
 * Then the FORMERR gets an OPT too, as every reply to an EDNS query must (RFC 6891 §7). The
 * counts of such a packet cannot be trusted, so look for an OPT's first bytes (root owner,
 * TYPE 41) anywhere after the header.
 */
const OPT_SIGNATURE = Buffer.from([0, 0, QTYPE.OPT]);
function seemsToHaveOpt(raw: Buffer): boolean {
  return raw.readUInt16BE(10) > 0 && raw.indexOf(OPT_SIGNATURE, HEADER_LEN) >= 0;
}

function findOptTypeOffset(raw: Buffer): number {
  let pos = skipName(raw, HEADER_LEN);
  if (pos < 0) return -1;
  pos += 4;
  const records = raw.readUInt16BE(6) + raw.readUInt16BE(8) + raw.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    const nameStart = pos;
    pos = skipName(raw, pos);
    if (pos < 0 || pos + 10 > raw.length) return -1;
    if (raw.readUInt16BE(pos) === QTYPE.OPT && raw[nameStart] === 0) return pos;
    pos += 10 + raw.readUInt16BE(pos + 8);
  }
  return -1;
}
