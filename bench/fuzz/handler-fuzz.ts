/**
 * In-process fuzzing of the socket-free Handler: millions of packets a minute, no sockets.
 * Used by test/fuzz/handler.test.ts (short, fixed seed) and bench/fuzz/run.ts (long).
 * Lives in bench/ (not test/) so that tap does not run it as a test file.
 *
 * Checked for every packet:
 *  - handle() never throws, and no error is caught inside it (the handler turns unexpected
 *    errors into SERVFAIL; for the fuzzer any such error is a bug to fix);
 *  - a reply iff the packet is not 'silent' (QR=1 or under 12 bytes get nothing);
 *  - every reply decodes with an independent decoder (dns2), echoes the ID, has QR=1, RA=0,
 *    and over UDP is at most 512 bytes without an OPT in the query, at most 1232 with one.
 */
import dns2 from 'dns2';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileZoneFiles, makeZoneSet } from '../../src/config/compile.js';
import { parseZoneText } from '../../src/config/load.js';
import { Handler } from '../../src/server/handler.js';
import type { QueryEvent } from '../../src/server/query-event.js';
import { Runtime } from '../../src/state/runtime.js';
import { responseRateClass } from '../../src/dns/rate-class.js';
import { slipResponse } from '../../src/dns/response.js';
import type { ZoneSet } from '../../src/model/zone-model.js';
import { Rng, fuzzPacket, validQuery, type FuzzPacket } from './packets.js';

export interface HandlerFuzzStats {
  packets: number;
  replies: number;
  silent: number;
  validAnswered: number;
  /** Per mutator: packets sent. */
  kinds: Record<string, number>;
  rcodes: Record<number, number>;
  failures: { index: number; kind: string; problem: string; hex: string }[];
  failureCount: number;
}

export function fuzzHandler(zones: ZoneSet, seed: number, count: number, onProgress?: (done: number) => void): HandlerFuzzStats {
  let caught: Error | null = null;
  const handler = new Handler(new Runtime(zones), undefined, {
    onQuery(ev: QueryEvent) {
      if (ev.error) caught = ev.error;
    },
  });
  const rng = new Rng(seed);
  const stats: HandlerFuzzStats = { packets: 0, replies: 0, silent: 0, validAnswered: 0, kinds: {}, rcodes: {}, failures: [], failureCount: 0 };
  const fail = (index: number, p: FuzzPacket, problem: string) => {
    stats.failureCount++;
    if (stats.failures.length < 20) stats.failures.push({ index, kind: p.kind, problem, hex: p.bytes.toString('hex') });
  };
  for (let i = 0; i < count; i++) {
    // One valid query in eight: they must all be answered, between the broken ones.
    const valid = i % 8 === 7;
    const p: FuzzPacket = valid ? { bytes: validQuery(rng), expect: 'answer', kind: 'valid' } : fuzzPacket(rng);
    const transport = i % 5 === 0 ? 'tcp' : 'udp';
    stats.packets++;
    stats.kinds[p.kind] = (stats.kinds[p.kind] ?? 0) + 1;
    caught = null;
    let out: Buffer | null;
    try {
      out = handler.handle(p.bytes, { transport, clientAddress: i % 2 ? '192.0.2.1' : '2001:db8::1' });
    } catch (error) {
      fail(i, p, `handle() threw: ${(error as Error).stack}`);
      continue;
    }
    if (caught !== null) fail(i, p, `error inside handle(): ${(caught as Error).stack}`);
    if (onProgress && i % 100_000 === 0) onProgress(i);
    if (out === null) {
      if (p.expect === 'answer') fail(i, p, 'no reply to a packet that must be answered');
      else stats.silent++;
      continue;
    }
    stats.replies++;
    if (p.expect === 'silent') {
      fail(i, p, 'replied to a response (QR=1) or a packet under 12 bytes');
      continue;
    }
    const problem = checkReply(p.bytes, out, transport);
    if (problem) fail(i, p, `${problem}; reply ${out.toString('hex')}`);
    else if (valid) stats.validAnswered++;
    // Rate limiting reads every UDP reply back and may cut it down to a TC=1 slip.
    try {
      if (responseRateClass(out) === '') fail(i, p, `no rate-limiting class for reply ${out.toString('hex')}`);
      const slip = slipResponse(out);
      const slipProblem = walkMessage(slip) || (slip.readUInt16BE(0) === out.readUInt16BE(0) && (slip[2] & 0x02) !== 0 ? '' : 'slip lost the ID or TC');
      if (slipProblem) fail(i, p, `slip reply: ${slipProblem}; ${slip.toString('hex')}`);
    } catch (error) {
      fail(i, p, `rate limiting threw: ${(error as Error).stack}`);
    }
    const rcode = out[3] & 0xf;
    stats.rcodes[rcode] = (stats.rcodes[rcode] ?? 0) + 1;
  }
  return stats;
}

/** What is wrong with a reply to `query`, or '' when nothing is. */
export function checkReply(query: Buffer, reply: Buffer, transport: 'udp' | 'tcp'): string {
  if (reply.length < 12) return 'reply under 12 bytes';
  if (reply.readUInt16BE(0) !== query.readUInt16BE(0)) return 'reply ID differs from the query ID';
  if ((reply[2] & 0x80) === 0) return 'reply has QR=0';
  if ((reply[3] & 0x80) !== 0) return 'reply has RA=1';
  if ((reply[2] & 0x78) !== (query[2] & 0x78)) return 'reply OPCODE differs from the query (RFC 1035 §4.1.1)';
  if (transport === 'udp') {
    const queryHasAdditional = query.length >= 12 && query.readUInt16BE(10) > 0;
    const limit = queryHasAdditional ? 1232 : 512;
    if (reply.length > limit) return `UDP reply of ${reply.length} bytes over ${limit}`;
  }
  const structure = walkMessage(reply);
  if (structure) return structure;
  // dns2 3.1 reads 16 bits past an IPv6 ECS address of odd length (packet.js, EDNS.ECS.decode),
  // which RFC 7871 §6 allows (e.g. a /18 has 3 address octets); our own walk covers those replies.
  if (hasOddIpv6Ecs(reply)) return '';
  let parsed: ReturnType<typeof dns2.Packet.parse>;
  try {
    parsed = dns2.Packet.parse(reply);
  } catch (error) {
    return `reply does not decode: ${(error as Error).message}`;
  }
  if (parsed.errors && parsed.errors.length > 0) return `reply does not decode: ${parsed.errors[0].message}`;
  const counts = [4, 6, 8, 10].map((o) => reply.readUInt16BE(o));
  const got = [parsed.questions.length, parsed.answers.length, parsed.authorities.length, parsed.additionals.length];
  if (counts.some((c, i) => c !== got[i])) return `reply counts ${counts} but holds ${got}`;
  return '';
}

/** The zones the fuzzer queries: the sample zone and test/fuzz/zones/fuzz.test.yaml. */
export const FUZZ_ZONE_FILES = ['../../zones/app.example.com.yaml', '../../test/fuzz/zones/fuzz.test.yaml'].map((f) => fileURLToPath(new URL(f, import.meta.url)));

export function fuzzZones(): ZoneSet {
  const files = FUZZ_ZONE_FILES.map((f) => {
    const loaded = parseZoneText(readFileSync(f, 'utf8'), f);
    if ('problems' in loaded) throw new Error(JSON.stringify(loaded.problems));
    return loaded;
  });
  const compiled = compileZoneFiles(files);
  if (compiled.problems.length) throw new Error(JSON.stringify(compiled.problems));
  return makeZoneSet(compiled.zones);
}

/**
 * A strict walk of a reply (RFC 1035 §4.1): every name's labels in bounds, compression pointers
 * only backwards to the start of a label written earlier (what our writer promises), every
 * record inside the message, and nothing after the last record. At most one question.
 */
export function walkMessage(msg: Buffer): string {
  const labelStarts = new Set<number>();
  const name = (start: number): number | string => {
    let pos = start;
    let wire = 1;
    for (;;) {
      if (pos >= msg.length) return `name at ${start} runs past the end`;
      const len = msg[pos];
      if (len === 0) return pos + 1;
      if ((len & 0xc0) === 0xc0) {
        if (pos + 2 > msg.length) return `pointer at ${pos} cut off`;
        const target = msg.readUInt16BE(pos) & 0x3fff;
        if (target >= pos || !labelStarts.has(target)) return `pointer at ${pos} to ${target}, not an earlier label`;
        return pos + 2;
      }
      if (len > 63) return `label length ${len} at ${pos}`;
      wire += len + 1;
      if (wire > 255) return `name at ${start} over 255 bytes`;
      labelStarts.add(pos);
      pos += 1 + len;
    }
  };
  const qd = msg.readUInt16BE(4);
  if (qd > 1) return `${qd} questions`;
  let pos = 12;
  for (let i = 0; i < qd; i++) {
    const end = name(pos);
    if (typeof end === 'string') return `question: ${end}`;
    pos = end + 4;
    if (pos > msg.length) return 'question cut off';
  }
  const records = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    const end = name(pos);
    if (typeof end === 'string') return `record ${i}: ${end}`;
    if (end + 10 > msg.length) return `record ${i} cut off`;
    const type = msg.readUInt16BE(end);
    const rdlength = msg.readUInt16BE(end + 8);
    pos = end + 10 + rdlength;
    if (pos > msg.length) return `record ${i} RDATA runs past the end`;
    // Names inside RDATA of the types we write: they must decode too.
    const nameAt = type === 2 || type === 5 || type === 12 ? end + 10 : type === 15 ? end + 12 : type === 6 ? end + 10 : -1;
    if (nameAt >= 0) {
      const n = name(nameAt);
      if (typeof n === 'string') return `record ${i} RDATA: ${n}`;
      if (type === 6) {
        const r = name(n);
        if (typeof r === 'string') return `record ${i} SOA rname: ${r}`;
        if (r + 20 !== pos) return `record ${i} SOA RDATA length`;
      } else if (n !== pos) return `record ${i} RDATA length does not match its name`;
    }
  }
  if (pos !== msg.length) return `${msg.length - pos} bytes after the last record`;
  return '';
}

function hasOddIpv6Ecs(msg: Buffer): boolean {
  // Our replies end with the OPT, whose only option (when any) is the echoed ECS.
  for (let addressLength = 1; addressLength <= 15; addressLength += 2) {
    const start = msg.length - 8 - addressLength;
    if (start < 12) break;
    if (msg.readUInt16BE(start) === 8 && msg.readUInt16BE(start + 2) === 4 + addressLength && msg.readUInt16BE(start + 4) === 2) return true;
  }
  return false;
}
