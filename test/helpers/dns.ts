/**
 * Test helpers: build query bytes by hand and decode responses with dns2 (an independent decoder,
 * so tests do not grade our encoder with our own decoder).
 */
import dns2 from 'dns2';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileZoneFiles, makeZoneSet } from '../../src/config/compile.js';
import { formatProblem } from '../../src/config/errors.js';
import { parseZoneText } from '../../src/config/load.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import type { ZoneSet } from '../../src/model/zone-model.js';
import type { PolicyEnv } from '../../src/policy/types.js';

export const TYPE = dns2.Packet.TYPE as Record<string, number>;

export interface QueryOptions {
  id?: number;
  rd?: boolean;
  cd?: boolean;
  opcode?: number;
  qclass?: number;
  /** Add an OPT record: udp payload size, version, DO bit, raw options. */
  edns?: { udpSize?: number; version?: number; do?: boolean; options?: Buffer } | false;
}

export function encodeQName(name: string): Buffer {
  const parts: Buffer[] = [];
  const bare = name.replace(/\.$/, '');
  if (bare.length > 0) for (const label of bare.split('.')) parts.push(Buffer.from([label.length]), Buffer.from(label, 'latin1'));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function query(name: string, type: string | number = 'A', opts: QueryOptions = {}): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(opts.id ?? 0x1234, 0);
  let flags = ((opts.opcode ?? 0) & 0xf) << 11;
  if (opts.rd ?? true) flags |= 0x0100;
  if (opts.cd) flags |= 0x0010;
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  const qtype = typeof type === 'number' ? type : TYPE[type];
  const question = Buffer.concat([encodeQName(name), Buffer.from([qtype >> 8, qtype & 0xff, 0, opts.qclass ?? 1])]);
  const parts = [header, question];
  if (opts.edns) {
    header.writeUInt16BE(1, 10);
    const options = opts.edns.options ?? Buffer.alloc(0);
    const opt = Buffer.alloc(11);
    opt[0] = 0;
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(opts.edns.udpSize ?? 1232, 3);
    opt[5] = 0;
    opt[6] = opts.edns.version ?? 0;
    opt.writeUInt16BE(opts.edns.do ? 0x8000 : 0, 7);
    opt.writeUInt16BE(options.length, 9);
    parts.push(opt, options);
  }
  return Buffer.concat(parts);
}

/** ECS option bytes (RFC 7871 §6). */
export function ecsOption(address: string, sourcePrefix: number, scope = 0): Buffer {
  const v6 = address.includes(':');
  const bytes = v6 ? Buffer.from(ipv6Bytes(address)) : Buffer.from(address.split('.').map(Number));
  const len = Math.ceil(sourcePrefix / 8);
  const out = Buffer.alloc(8 + len);
  out.writeUInt16BE(8, 0);
  out.writeUInt16BE(4 + len, 2);
  out.writeUInt16BE(v6 ? 2 : 1, 4);
  out[6] = sourcePrefix;
  out[7] = scope;
  bytes.copy(out, 8, 0, len);
  return out;
}

function ipv6Bytes(address: string): number[] {
  const [head, tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

export interface Decoded {
  id: number;
  qr: boolean;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  cd: boolean;
  rcode: number;
  /** Extended RCODE including the OPT's upper bits. */
  extendedRcode: number;
  opcode: number;
  counts: [number, number, number, number];
  questions: { name: string; type: number; class: number }[];
  answers: any[];
  authorities: any[];
  additionals: any[];
  opt: any | undefined;
  raw: Buffer;
}

export function decode(raw: Buffer): Decoded {
  const p = dns2.Packet.parse(raw);
  if (p.errors?.length) throw new Error(`response did not decode: ${p.errors[0].message}`);
  const flags = raw.readUInt16BE(2);
  const opt = p.additionals.find((r: any) => r.type === 41);
  return {
    id: raw.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    extendedRcode: (flags & 0xf) | (opt ? (opt.extendedRcode ?? 0) << 4 : 0),
    counts: [raw.readUInt16BE(4), raw.readUInt16BE(6), raw.readUInt16BE(8), raw.readUInt16BE(10)],
    questions: p.questions,
    answers: p.answers,
    authorities: p.authorities,
    additionals: p.additionals.filter((r: any) => r.type !== 41),
    opt,
    raw,
  };
}

export function compileText(text: string, file = 'zones/test.yaml'): ZoneSet {
  const loaded = parseZoneText(text, file);
  if ('problems' in loaded) throw new Error(loaded.problems.map(formatProblem).join('\n'));
  const compiled = compileZoneFiles([loaded]);
  if (compiled.problems.length) throw new Error(compiled.problems.map(formatProblem).join('\n'));
  return makeZoneSet(compiled.zones);
}

export function fixedEnv(now = 1_700_000_000_000, randoms: number[] = [0]): PolicyEnv & { setNow(n: number): void } {
  let t = now;
  let i = 0;
  return { now: () => t, random: () => randoms[i++ % randoms.length], setNow: (n: number) => (t = n) };
}

export function makeHandler(zones: ZoneSet, env?: PolicyEnv): { handler: Handler; runtime: Runtime } {
  const runtime = new Runtime(zones);
  return { handler: new Handler(runtime, env), runtime };
}

export function ask(handler: Handler, raw: Buffer, transport: 'udp' | 'tcp' = 'udp', clientAddress = '192.0.2.1'): Decoded | null {
  const out = handler.handle(raw, { transport, clientAddress });
  return out === null ? null : decode(out);
}

export function tempZonesDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sitedns-zones-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
