/**
 * The only code that reads and writes DNS bytes.
 *
 * Queries: a hand-written decoder for the question and the OPT record, behind a cheap header
 * check. The common query shape (one question, no answer/authority records, at most one OPT)
 * is decoded inline without allocating an object graph; anything else in the answer, authority
 * or additional sections is handed to dns2's `Packet.parse`, which already guards against
 * compression loops and overlong labels, so that odd-but-legal queries are still understood.
 * Why not dns2 for everything: it costs ~2.4 µs and a dozen objects per query (measured with
 * `node bench/micro/parse.js`), a large share of the per-query budget (#8), and it gives no
 * access to the question's original bytes, which we echo to keep the client's letter case.
 *
 * Responses: one writer with RFC 1035 §4.1.4 name compression. dns2's encoder is not used: it
 * writes TXT strings over 255 bytes corruptly, compresses SRV targets (RFC 2782 forbids it) and
 * grows quadratically with the number of records.
 */
import dns2 from 'dns2';
import ipaddr from 'ipaddr.js';
import { CLASSIC_UDP_LIMIT, EDNS_OPTION, HEADER_LEN, MAX_MESSAGE, OPCODE_QUERY, QTYPE } from './constants.js';

// ---------------------------------------------------------------------------------------------
// Query decoding

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
    if (text.length > 0) text += '.';
    for (let i = pos + 1, end = pos + 1 + len; i < end; i++) {
      let c = buf[i];
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c === 0x2e || c === 0x5c) text += '\\' + String.fromCharCode(c);
      else text += String.fromCharCode(c);
    }
    pos += 1 + len;
  }
  nameOut.text = text;
  return pos;
}

/**
 * Stands in for an OPT we could not read, so that the FORMERR still carries an OPT
 * (the client spoke EDNS; RFC 6891 §7) at the classic size.
 */
const MINIMAL_EDNS: EdnsInfo = Object.freeze({ udpSize: CLASSIC_UDP_LIMIT, version: 0, dnssecOk: false, ecs: null });

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
    }
    pos = dataStart + length;
  }
  return { udpSize: Math.max(udpSize, CLASSIC_UDP_LIMIT), version, dnssecOk: (flags & 0x8000) !== 0, ecs };
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
function skipName(raw: Uint8Array, offset: number, length = raw.length): number {
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

// ---------------------------------------------------------------------------------------------
// Record data (compiled once from zone files)

/** A name inside RDATA; `compress` is false where RFC 3597 §4 / RFC 2782 forbid compression. */
export interface NamePart {
  readonly name: string;
  readonly compress: boolean;
}
export type RdataPart = Buffer | NamePart;
export type Rdata = readonly RdataPart[];

export function ipv4Rdata(address: string): Rdata {
  return [Buffer.from(ipaddr.IPv4.parse(address).toByteArray())];
}
export function ipv6Rdata(address: string): Rdata {
  return [Buffer.from(ipaddr.IPv6.parse(address).toByteArray())];
}
export function nameRdata(target: string): Rdata {
  return [{ name: target, compress: true }];
}
// The fixed parts below use Buffer.allocUnsafe (every byte is written): a slice of Node's shared
// pool instead of an ArrayBuffer and native backing store of its own per record, which cost
// ~3 MB for the 16,000 MX records of bench/scale (#8).
export function mxRdata(preference: number, exchange: string): Rdata {
  const pref = Buffer.allocUnsafe(2);
  pref.writeUInt16BE(preference);
  return [pref, { name: exchange, compress: true }];
}
export function srvRdata(priority: number, weight: number, port: number, target: string): Rdata {
  const fixed = Buffer.allocUnsafe(6);
  fixed.writeUInt16BE(priority, 0);
  fixed.writeUInt16BE(weight, 2);
  fixed.writeUInt16BE(port, 4);
  return [fixed, { name: target, compress: false }];
}
/** RFC 1035 §3.3.14: character-strings of at most 255 bytes; longer text is split. */
export function txtRdata(strings: readonly string[]): Rdata {
  const parts: Buffer[] = [];
  for (const text of strings) {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length === 0) parts.push(Buffer.from([0]));
    for (let i = 0; i < bytes.length; i += 255) {
      const chunk = bytes.subarray(i, i + 255);
      parts.push(Buffer.concat([Buffer.from([chunk.length]), chunk]));
    }
  }
  return [Buffer.concat(parts)];
}
/** RFC 8659 §4.1. */
export function caaRdata(flags: number, tag: string, value: string): Rdata {
  const tagBytes = Buffer.from(tag, 'ascii');
  return [Buffer.concat([Buffer.from([flags, tagBytes.length]), tagBytes, Buffer.from(value, 'utf8')])];
}
export function soaRdata(
  mname: string,
  rname: string,
  serial: number,
  refresh: number,
  retry: number,
  expire: number,
  minimum: number,
): Rdata {
  const fixed = Buffer.allocUnsafe(20);
  fixed.writeUInt32BE(serial >>> 0, 0);
  fixed.writeUInt32BE(refresh, 4);
  fixed.writeUInt32BE(retry, 8);
  fixed.writeUInt32BE(expire, 12);
  fixed.writeUInt32BE(minimum, 16);
  return [{ name: mname, compress: true }, { name: rname, compress: true }, fixed];
}

// ---------------------------------------------------------------------------------------------
// Message writing

/** One RR to write: owner, type, TTL and RDATA (class is always IN). */
export interface WireRecord {
  readonly owner: string;
  readonly type: number;
  readonly ttl: number;
  readonly rdata: Rdata;
}

/**
 * Writes one message into a scratch buffer. Names are compressed against every name already
 * written, starting with the question (written from the query's own bytes, so its letter case
 * is echoed: RFC 1035 §7.3 / RFC 4343).
 */
export class MessageWriter {
  readonly buf: Buffer;
  length = 0;
  private readonly offsets = new Map<string, number>();

  constructor(scratch: Buffer) {
    this.buf = scratch;
  }

  reset(): void {
    this.length = 0;
    this.offsets.clear();
  }

  header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): void {
    const b = this.buf;
    b.writeUInt16BE(id, 0);
    b.writeUInt16BE(flags, 2);
    b.writeUInt16BE(qd, 4);
    b.writeUInt16BE(an, 6);
    b.writeUInt16BE(ns, 8);
    b.writeUInt16BE(ar, 10);
    this.length = HEADER_LEN;
  }

  setCounts(an: number, ns: number, ar: number): void {
    this.buf.writeUInt16BE(an, 6);
    this.buf.writeUInt16BE(ns, 8);
    this.buf.writeUInt16BE(ar, 10);
  }

  /** Copies the question from the query and registers its name (lower-cased) for compression. */
  question(raw: Buffer, questionEnd: number, qname: string): void {
    raw.copy(this.buf, HEADER_LEN, HEADER_LEN, questionEnd);
    this.length = questionEnd;
    // A label holding "." or "\\" is escaped in `qname` (readQuestionName), so the text no
    // longer maps onto wire offsets and a pointer computed from it would land inside a label
    // (found by the fuzzer, #7). Such a name matches no zone name: just do not compress against it.
    if (qname.indexOf('\\') < 0) this.registerName(qname, HEADER_LEN);
  }

  private registerName(name: string, offset: number): void {
    // Only offsets below 0x4000 can be pointed at (14-bit pointers).
    let rest = name;
    let at = offset;
    while (rest.length > 0 && at < 0x4000) {
      if (!this.offsets.has(rest)) this.offsets.set(rest, at);
      const dot = rest.indexOf('.');
      const labelLength = dot < 0 ? rest.length : dot;
      at += 1 + labelLength;
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
  }

  /** Writes a (lower-case, validated) name; returns false when it does not fit. */
  name(name: string, compress: boolean): boolean {
    const b = this.buf;
    let rest = name;
    while (rest.length > 0) {
      if (compress) {
        const pointer = this.offsets.get(rest);
        if (pointer !== undefined) {
          if (this.length + 2 > b.length) return false;
          b.writeUInt16BE(0xc000 | pointer, this.length);
          this.length += 2;
          return true;
        }
      }
      const dot = rest.indexOf('.');
      const label = dot < 0 ? rest : rest.slice(0, dot);
      if (this.length + 1 + label.length > b.length) return false;
      if (compress && this.length < 0x4000 && !this.offsets.has(rest)) this.offsets.set(rest, this.length);
      b[this.length] = label.length;
      b.write(label, this.length + 1, 'latin1');
      this.length += 1 + label.length;
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
    if (this.length + 1 > b.length) return false;
    b[this.length++] = 0;
    return true;
  }

  /** Writes one RR; returns false (and restores the length) when it does not fit in `limit`. */
  record(rr: WireRecord, limit: number): boolean {
    const start = this.length;
    const savedLimit = limit;
    if (!this.name(rr.owner, true) || this.length + 10 > savedLimit) return this.rollback(start);
    const b = this.buf;
    b.writeUInt16BE(rr.type, this.length);
    b.writeUInt16BE(1, this.length + 2);
    b.writeUInt32BE(rr.ttl >>> 0, this.length + 4);
    const rdlengthAt = this.length + 8;
    this.length += 10;
    for (const part of rr.rdata) {
      if (Buffer.isBuffer(part)) {
        if (this.length + part.length > savedLimit) return this.rollback(start);
        part.copy(b, this.length);
        this.length += part.length;
      } else if (!this.name(part.name, part.compress) || this.length > savedLimit) {
        return this.rollback(start);
      }
    }
    if (this.length > savedLimit) return this.rollback(start);
    b.writeUInt16BE(this.length - rdlengthAt - 2, rdlengthAt);
    return true;
  }

  private rollback(start: number): false {
    this.truncateTo(start);
    return false;
  }

  /** Forgets everything written past `start` (a whole RRset that did not fit). */
  truncateTo(start: number): void {
    this.length = start;
    // Names registered past `start` would point at bytes that are gone.
    for (const [name, offset] of this.offsets) if (offset >= start) this.offsets.delete(name);
  }

  /** RFC 6891 §6.1.2: the OPT pseudo-RR. Extended RCODE's upper 8 bits go in the TTL. */
  opt(udpPayload: number, extendedRcode: number, dnssecOk: boolean, options: Buffer | null = null): void {
    const b = this.buf;
    b[this.length] = 0;
    b.writeUInt16BE(QTYPE.OPT, this.length + 1);
    b.writeUInt16BE(udpPayload, this.length + 3);
    b[this.length + 5] = extendedRcode >> 4;
    b[this.length + 6] = 0; // version 0
    b.writeUInt16BE(dnssecOk ? 0x8000 : 0, this.length + 7);
    b.writeUInt16BE(options === null ? 0 : options.length, this.length + 9);
    this.length += OPT_RECORD_LEN;
    if (options !== null) {
      options.copy(b, this.length);
      this.length += options.length;
    }
  }

  /** A copy of the written message (the scratch buffer is reused by the next query). */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.buf.copy(out, 0, 0, this.length);
    return out;
  }
}

/** RFC 7871 §6: the ECS option of a response, echoing the query's with our scope. */
export function ecsOption(ecs: ClientSubnet, scopePrefix: number): Buffer {
  const addressLength = Math.ceil(ecs.sourcePrefix / 8);
  const out = Buffer.alloc(8 + addressLength);
  out.writeUInt16BE(EDNS_OPTION.ECS, 0);
  out.writeUInt16BE(4 + addressLength, 2);
  out.writeUInt16BE(ecs.family, 4);
  out[6] = ecs.sourcePrefix;
  out[7] = scopePrefix;
  ecs.address.copy(out, 8, 0, addressLength);
  return out;
}

/** Bytes of an OPT RR with no options. */
export const OPT_RECORD_LEN = 11;

export function newScratch(): Buffer {
  return Buffer.alloc(MAX_MESSAGE);
}

/** Encodes a name (lower-case text) uncompressed, for tests and prebuilt bytes. */
export function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  if (name.length > 0) {
    for (const label of name.split('.')) parts.push(Buffer.from([label.length]), Buffer.from(label, 'latin1'));
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Reading back our own responses, for response rate limiting (#7, src/server/rrl.ts)


/**
 * What makes two responses "identical" for rate limiting, read from a response we built (the
 * classes of BIND's and Knot's RRL): answers by question name and type; NXDOMAIN by zone (the
 * SOA owner), so random names under one zone share one account; referrals by the delegation
 * point; NODATA by name; errors (REFUSED, FORMERR, ...) by RCODE alone.
 *
 * Returned as a number, not text (#8): the UDP transports ask once per response, and building a
 * string per response cost ~1.3 µs per query (allocation, lower-casing, hashing it again in a
 * Map), five times the rest of the answer. The number is the class's kind in bits 27-29 and a
 * 27-bit FNV-1a hash of the name bytes it stands for (ASCII lower-cased, compression followed),
 * so it stays a small integer (a V8 Smi: no allocation as a Map key). Two classes of the same
 * kind whose names collide in 27 bits share an account: stricter for them, never looser.
 * RATE_CLASS_NONE for bytes that are not a response we could have built.
 */
export const RATE_CLASS_NONE = 0;
const RATE_KIND_SHIFT = 2 ** 27;
const RATE_HASH_MASK = RATE_KIND_SHIFT - 1;
/** Class kinds (bits 27-29 of a rate class). */
export const RATE_KIND = Object.freeze({ error: 1, answer: 2, nodata: 3, nxdomain: 4, referral: 5 });

export function responseRateClass(reply: Uint8Array, length: number = reply.length): number {
  if (length < HEADER_LEN) return RATE_CLASS_NONE;
  const rcode = reply[3] & 0xf;
  if (rcode !== 0 && rcode !== 3) return RATE_KIND.error * RATE_KIND_SHIFT + rcode;
  if (reply[4] !== 0 || reply[5] !== 1) return RATE_KIND.error * RATE_KIND_SHIFT + rcode;
  const nameEnd = skipName(reply, HEADER_LEN, length);
  if (nameEnd < 0 || nameEnd + 4 > length) return RATE_CLASS_NONE;
  // The question's own bytes (name and QTYPE) stand for it: label lengths are under 0x41, so
  // lower-casing A-Z leaves them alone.
  const ancount = (reply[6] << 8) | reply[7];
  if (rcode === 0 && ancount > 0) return questionClass(RATE_KIND.answer, reply, nameEnd);
  // Skip the answers (a CNAME chain can precede NXDOMAIN) to the first authority record.
  let pos = nameEnd + 4;
  for (let i = 0; i < ancount; i++) {
    pos = skipName(reply, pos, length);
    if (pos < 0 || pos + 10 > length) return RATE_CLASS_NONE;
    pos += 10 + ((reply[pos + 8] << 8) | reply[pos + 9]);
  }
  // NODATA by the question, like an answer (hashed only when it is the verdict).
  if (reply[8] === 0 && reply[9] === 0) return questionClass(RATE_KIND.nodata, reply, nameEnd);
  const ownerEnd = skipName(reply, pos, length);
  if (ownerEnd < 0 || ownerEnd + 2 > length) return RATE_CLASS_NONE;
  const owner = hashNameAt(reply, pos, length);
  if (owner < 0) return RATE_CLASS_NONE;
  if (rcode === 3) return RATE_KIND.nxdomain * RATE_KIND_SHIFT + (owner & RATE_HASH_MASK);
  return ((reply[ownerEnd] << 8) | reply[ownerEnd + 1]) === QTYPE.NS ? RATE_KIND.referral * RATE_KIND_SHIFT + (owner & RATE_HASH_MASK) : questionClass(RATE_KIND.nodata, reply, nameEnd);
}

/** A class standing for the question (name and QTYPE bytes, lower-cased). */
function questionClass(kind: number, reply: Uint8Array, nameEnd: number): number {
  return kind * RATE_KIND_SHIFT + (hashWireName(reply, HEADER_LEN, nameEnd + 2) & RATE_HASH_MASK);
}

/** The kind of a rate class (RATE_KIND), 0 for RATE_CLASS_NONE. */
export function rateClassKind(rateClass: number): number {
  return Math.floor(rateClass / RATE_KIND_SHIFT);
}

/**
 * FNV-1a over a wire name's bytes from `start` to `end`, ASCII letters folded to lower case
 * (label lengths are under 0x41, so folding leaves them alone). The prebuilt-answer table keys
 * names by it; rate classes hash names with it.
 */
export function hashWireName(buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    let c = buf[i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h;
}

/** hashWireName over the name at `offset` as its labels read (compression followed), or -1. */
function hashNameAt(msg: Uint8Array, offset: number, length: number): number {
  let h = FNV_OFFSET;
  let pos = offset;
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= length) return -1;
    const len = msg[pos];
    if ((len & 0xc0) === 0xc0) {
      if (pos + 2 > length) return -1;
      pos = ((len & 0x3f) << 8) | msg[pos + 1];
      continue;
    }
    if (len > 63 || pos + 1 + len > length) return -1;
    for (let i = pos; i <= pos + len; i++) {
      let c = msg[i];
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    if (len === 0) return h & 0x7fffffff;
    pos += 1 + len;
  }
  return -1;
}
/** FNV-1a (32-bit) offset basis and prime. */
export const FNV_OFFSET = 0x811c9dc5 | 0;
export const FNV_PRIME = 0x01000193;
