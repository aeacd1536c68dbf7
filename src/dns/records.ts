/**
 * Record data as compiled once from zone files (RDATA parts, names kept apart so the writer can
 * compress them) and the RR shape the message writer takes.
 */
import ipaddr from 'ipaddr.js';

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
// ~3 MB for the 16,000 MX records of bench/scale.
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

/** One RR to write: owner, type, TTL and RDATA (class is always IN). */
export interface WireRecord {
  readonly owner: string;
  readonly type: number;
  readonly ttl: number;
  readonly rdata: Rdata;
}
