/**
 * Writing messages: one writer with RFC 1035 §4.1.4 name compression. dns2's encoder is not
 * used: it writes TXT strings over 255 bytes corruptly, compresses SRV targets (RFC 2782 forbids
 * it) and grows quadratically with the number of records.
 */
import { EDNS_OPTION, HEADER_LEN, MAX_MESSAGE, QTYPE } from './constants.js';
import type { ClientSubnet } from './decode.js';
import type { WireRecord } from './records.js';

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
    this.registerName(qname, HEADER_LEN);
  }

  private registerName(name: string, offset: number): void {
    // Only offsets below 0x4000 can be pointed at (14-bit pointers).
    let rest = name;
    let at = offset;
    while (rest.length > 0 && at < 0x4000) {
      if (!this.offsets.has(rest)) this.offsets.set(rest, at);
      const end = firstLabelEnd(rest);
      at += 1 + labelBytes(rest, end).length;
      rest = end === rest.length ? '' : rest.slice(end + 1);
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
      const end = firstLabelEnd(rest);
      const label = labelBytes(rest, end);
      if (this.length + 1 + label.length > b.length) return false;
      if (compress && this.length < 0x4000 && !this.offsets.has(rest)) this.offsets.set(rest, this.length);
      b[this.length] = label.length;
      b.write(label, this.length + 1, 'latin1');
      this.length += 1 + label.length;
      rest = end === rest.length ? '' : rest.slice(end + 1);
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
    b.writeUInt16BE(rr.rrClass ?? 1, this.length + 2);
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

  /** RFC 6891 §6.1.2: the OPT pseudo-RR, its options `options` then `more`. Extended RCODE's upper 8 bits go in the TTL. */
  opt(udpPayload: number, extendedRcode: number, dnssecOk: boolean, options: Buffer | null = null, more: Buffer | null = null): void {
    const b = this.buf;
    b[this.length] = 0;
    b.writeUInt16BE(QTYPE.OPT, this.length + 1);
    b.writeUInt16BE(udpPayload, this.length + 3);
    b[this.length + 5] = extendedRcode >> 4;
    b[this.length + 6] = 0; // version 0
    b.writeUInt16BE(dnssecOk ? 0x8000 : 0, this.length + 7);
    b.writeUInt16BE((options === null ? 0 : options.length) + (more === null ? 0 : more.length), this.length + 9);
    this.length += OPT_RECORD_LEN;
    if (options !== null) {
      options.copy(b, this.length);
      this.length += options.length;
    }
    if (more !== null) {
      more.copy(b, this.length);
      this.length += more.length;
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

/** RFC 5001 §2.3: the NSID option of a response, carrying `text` (UTF-8). */
export function nsidOption(text: string): Buffer {
  const data = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(4 + data.length);
  out.writeUInt16BE(EDNS_OPTION.NSID, 0);
  out.writeUInt16BE(data.length, 2);
  data.copy(out, 4);
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
  for (const label of nameLabels(name)) parts.push(Buffer.from([label.length]), Buffer.from(label, 'latin1'));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/**
 * The labels of a name's text, each as its bytes (latin1): split on the dots between labels, not
 * on a "." or "\\" inside a label, which a question's text holds escaped (decode.ts).
 */
export function nameLabels(name: string): string[] {
  if (name.length === 0) return [];
  if (name.indexOf('\\') < 0) return name.split('.');
  const labels: string[] = [];
  let label = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '\\' && i + 1 < name.length) label += name[++i];
    else if (c === '.') {
      labels.push(label);
      label = '';
    } else label += c;
  }
  labels.push(label);
  return labels;
}

/** The name one label up from `name` (escapes as in nameLabels), '' above a single label. */
export function parentName(name: string): string {
  const end = firstLabelEnd(name);
  return end === name.length ? '' : name.slice(end + 1);
}

/**
 * Where the first label of a name's text ends: the first "." that is not escaped (a question's
 * text holds a "." or "\\" inside a label escaped, decode.ts), or the text's length.
 */
export function firstLabelEnd(name: string): number {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x2e) return i;
  }
  return name.length;
}

/** The bytes (latin1) of the label of `name` that ends at `end` (firstLabelEnd), unescaped. */
function labelBytes(name: string, end: number): string {
  const text = end === name.length ? name : name.slice(0, end);
  return text.indexOf('\\') < 0 ? text : text.replace(/\\(.)/gs, '$1');
}
