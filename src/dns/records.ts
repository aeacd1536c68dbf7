/**
 * Record data as compiled once from zone files (RDATA parts, names kept apart so the writer can
 * compress them) and the RR shape the message writer takes.
 */
import { parseDottedQuad } from '../util/ipv4.js';

/** A name inside RDATA; `compress` is false where RFC 3597 §4 / RFC 2782 forbid compression. */
export interface NamePart {
  readonly name: string;
  readonly compress: boolean;
}
export type RdataPart = Buffer | NamePart;
export type Rdata = readonly RdataPart[];

// RDATA bytes use Buffer.allocUnsafe (every byte is written): a slice of Node's shared pool
// instead of an ArrayBuffer and native backing store of its own per record, which cost ~3 MB for
// the 16,000 MX records of bench/scale.

/**
 * The bytes of an address that `net.isIP` accepts (callers check that first): four decimal octets
 * for IPv4; for IPv6 the text forms of RFC 4291 §2.2 (hex groups, one `::`, a dotted IPv4 tail),
 * a zone index (`%eth0`) dropped.
 */
export function ipv4Rdata(address: string): Rdata {
  return [writeIPv4(address, Buffer.allocUnsafe(4), 0)];
}
export function ipv6Rdata(address: string): Rdata {
  const bytes = Buffer.allocUnsafe(16).fill(0);
  const zone = address.indexOf('%');
  const text = zone === -1 ? address : address.slice(0, zone);
  const gap = text.indexOf('::');
  const head = gap === -1 ? text : text.slice(0, gap);
  const tail = gap === -1 ? '' : text.slice(gap + 2);
  let at = 0;
  for (const group of head === '' ? [] : head.split(':')) at = writeIPv6Group(group, bytes, at);
  const tailGroups = tail === '' ? [] : tail.split(':');
  at = 16 - tailGroups.reduce((n, group) => n + (group.includes('.') ? 4 : 2), 0);
  for (const group of tailGroups) at = writeIPv6Group(group, bytes, at);
  return [bytes];
}
/** A dotted quad the caller checked (net.isIP) -> its 4 bytes at `at`. */
function writeIPv4(address: string, bytes: Buffer, at: number): Buffer {
  bytes.writeUInt32BE(parseDottedQuad(address), at);
  return bytes;
}
/** One group of an IPv6 address (hex, or the dotted IPv4 tail) at `at`; returns the next offset. */
function writeIPv6Group(group: string, bytes: Buffer, at: number): number {
  if (group.includes('.')) {
    writeIPv4(group, bytes, at);
    return at + 4;
  }
  bytes.writeUInt16BE(parseInt(group, 16), at);
  return at + 2;
}
export function nameRdata(target: string): Rdata {
  return [{ name: target, compress: true }];
}
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
  if (strings.length === 1 && strings[0].length <= 85) {
    // The common case, one short string (at most 255 bytes even if every character takes 3): one
    // length byte and the text, in one slice of the pool.
    const text = strings[0];
    const length = Buffer.byteLength(text, 'utf8');
    const bytes = Buffer.allocUnsafe(1 + length);
    bytes[0] = length;
    bytes.write(text, 1, 'utf8');
    return [bytes];
  }
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

/** One RR to write: owner, type, TTL and RDATA; class IN unless `rrClass` says otherwise. */
export interface WireRecord {
  readonly owner: string;
  readonly type: number;
  readonly ttl: number;
  readonly rdata: Rdata;
  /** CH for the server's identity (RFC 4892); absent: IN. */
  readonly rrClass?: number;
}

/** RFC 4034 §2.1: DNSKEY RDATA (flags, protocol 3, algorithm, public key); CDNSKEY has the same (RFC 7344 §3.2). */
export function dnskeyRdata(flags: number, algorithm: number, publicKey: Buffer): Rdata {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt16BE(flags, 0);
  head[2] = 3;
  head[3] = algorithm;
  return [Buffer.concat([head, publicKey])];
}

/** RFC 4034 §5.1: DS RDATA (key tag, algorithm, digest type, digest); CDS has the same (RFC 7344 §3.1). */
export function dsRdata(keyTag: number, algorithm: number, digestType: number, digest: Buffer): Rdata {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt16BE(keyTag, 0);
  head[2] = algorithm;
  head[3] = digestType;
  return [Buffer.concat([head, digest])];
}
