/**
 * Malformed-input generator shared by the CI fuzz tests (test/fuzz/) and the long runs
 * (bench/fuzz/). Deterministic for a seed: a failure is reproduced by its seed and index.
 *
 * Every packet is classed by what the server must do with it, from its bytes alone:
 *   'silent' — under 12 bytes, or QR=1: no reply at all (RFC 1035 §4.1.1:
 *              a QR=1 message is a response; answering responses invites reflection loops).
 *   'answer' — everything else: some reply (FORMERR, NOTIMP, REFUSED, ... or an answer), with
 *              the packet's ID and QR=1. The handler drops nothing else (no RRL on loopback).
 */

/** xorshift128+ reduced to 32 bits: fast, seedable, good enough to pick mutations. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  constructor(seed: number) {
    // splitmix32 to spread a small seed over the state.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next() | 1;
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }
  /** xoshiro128** */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }
  /** 0 <= n < max */
  int(max: number): number {
    return max <= 1 ? 0 : this.u32() % max;
  }
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}
function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export type Expect = 'answer' | 'silent';
export interface FuzzPacket {
  readonly bytes: Buffer;
  readonly expect: Expect;
  /** Which generator made it (for the report and to reproduce). */
  readonly kind: string;
}

/** Names in the sample zone (zones/app.example.com.yaml) and around it. */
const NAMES = [
  'app.example.com',
  'APP.Example.COM',
  'americas.app.example.com',
  'europe.app.example.com',
  'boston.app.example.com',
  'chicago.app.example.com',
  'geneva.app.example.com',
  'www.app.example.com',
  'mail.app.example.com',
  'legacy.app.example.com',
  'x.y.legacy.app.example.com',
  'ns1.app.example.com',
  'nope.app.example.com',
  'deep.er.nope.app.example.com',
  'example.com',
  'example.org',
  '',
  // test/fuzz/zones/fuzz.test.yaml: truncation, referrals, CNAME chains, SRV, CAA.
  'fuzz.test',
  'www.fuzz.test',
  'a.fuzz.test',
  'g.fuzz.test',
  'big.fuzz.test',
  'many.fuzz.test',
  '_sip._tcp.fuzz.test',
  'chain.fuzz.test',
  'out.fuzz.test',
  'sub.fuzz.test',
  'x.sub.fuzz.test',
  'c.d.e.fuzz.test',
  'ptr.fuzz.test',
];
const TYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 43, 251, 252, 255, 257, 0, 65535, 99];

export function expectOf(bytes: Buffer): Expect {
  return bytes.length < 12 || (bytes[2] & 0x80) !== 0 ? 'silent' : 'answer';
}

export function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  if (name.length > 0) for (const label of name.split('.')) parts.push(Buffer.from([label.length]), Buffer.from(label, 'latin1'));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
}

function question(name: string, type: number, klass = 1): Buffer {
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(klass, 2);
  return Buffer.concat([encodeName(name), tail]);
}

export function optRecord(udpSize: number, version: number, flags: number, options: Buffer = Buffer.alloc(0)): Buffer {
  const o = Buffer.alloc(11);
  o.writeUInt16BE(41, 1);
  o.writeUInt16BE(udpSize, 3);
  o[6] = version;
  o.writeUInt16BE(flags, 7);
  o.writeUInt16BE(options.length, 9);
  return Buffer.concat([o, options]);
}

function ecs(family: number, source: number, scope: number, address: Buffer): Buffer {
  const o = Buffer.alloc(8);
  o.writeUInt16BE(8, 0);
  o.writeUInt16BE(4 + address.length, 2);
  o.writeUInt16BE(family, 4);
  o[6] = source;
  o[7] = scope;
  return Buffer.concat([o, address]);
}

/** A well-formed ECS option (RFC 7871 §6), host bits zeroed. */
function goodEcs(rng: Rng): Buffer {
  const v6 = rng.chance(0.3);
  const source = rng.int(v6 ? 129 : 33);
  const address = rng.bytes(Math.ceil(source / 8));
  if (source % 8 !== 0) address[address.length - 1] &= ~(0xff >> source % 8) & 0xff;
  return ecs(v6 ? 2 : 1, source, 0, address);
}

/** A query that must be answered normally (any RCODE, but an answer). */
export function validQuery(rng: Rng, id = rng.int(0x10000)): Buffer {
  const flags = rng.chance(0.5) ? 0x0100 : 0;
  const name = rng.pick(NAMES);
  const type = rng.pick([1, 1, 1, 28, 255, 16, 15, 6, 2, 5, 33, 257, 12]);
  const parts = [header(id, flags, 1, 0, 0, 0), question(name, type, rng.chance(0.05) ? 255 : 1)];
  if (rng.chance(0.6)) {
    parts[0].writeUInt16BE(1, 10);
    const options = rng.chance(0.3) ? goodEcs(rng) : Buffer.alloc(0);
    parts.push(optRecord(rng.pick([0, 512, 1232, 4096, 65535]), 0, rng.chance(0.3) ? 0x8000 : 0, options));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Mutators: each takes a valid query and breaks it in one way.

type Mutator = (rng: Rng, base: Buffer) => Buffer;

const bitFlip: Mutator = (rng, base) => {
  const out = Buffer.from(base);
  const flips = rng.range(1, 8);
  for (let i = 0; i < flips; i++) {
    // Leave the QR bit alone most of the time so most flipped packets still reach the decoder.
    const bit = rng.int(out.length * 8);
    if (bit === 16 && rng.chance(0.8)) continue;
    out[bit >> 3] ^= 0x80 >> (bit & 7);
  }
  return out;
};

const truncate: Mutator = (rng, base) => base.subarray(0, rng.int(base.length));

const extend: Mutator = (rng, base) => Buffer.concat([base, rng.bytes(rng.range(1, 64))]);

/** A label length byte made wrong: over 63, the reserved 0x40/0x80 forms, or past the end. */
const badLabel: Mutator = (rng, base) => {
  const out = Buffer.from(base);
  const labels: number[] = [];
  for (let pos = 12; pos < out.length && out[pos] !== 0 && out[pos] < 64; pos += out[pos] + 1) labels.push(pos);
  const at = labels.length > 0 ? rng.pick(labels) : 12;
  out[at] = rng.pick([64, 65, 0x7f, 0x80, 0xbf, 0xff, 63, rng.range(1, 255)]);
  return out;
};

/** Compression pointers in the question or in records: to itself, forward, to each other, out of range. */
const pointerLoop: Mutator = (rng, base) => {
  const variant = rng.int(5);
  const id = base.readUInt16BE(0);
  const tail = Buffer.from([0, 1, 0, 1]);
  switch (variant) {
    case 0: // question name is a pointer to itself
      return Buffer.concat([header(id, 0, 1, 0, 0, 0), Buffer.from([0xc0, 12]), tail]);
    case 1: // two labels then a pointer back to the start of the name
      return Buffer.concat([header(id, 0, 1, 0, 0, 0), Buffer.from([1, 0x61, 1, 0x62, 0xc0, 12]), tail]);
    case 2: {
      // a valid question, then an answer-section record whose owner points at itself
      const q = question('app.example.com', 1);
      const at = 12 + q.length;
      const rr = Buffer.concat([Buffer.from([0xc0 | (at >> 8), at & 0xff]), Buffer.from([0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4])]);
      return Buffer.concat([header(id, 0, 1, 1, 0, 0), q, rr]);
    }
    case 3: {
      // two additional records whose owners point at each other
      const q = question('app.example.com', 1);
      const a = 12 + q.length;
      const b = a + 2 + 10;
      const rr1 = Buffer.concat([Buffer.from([0xc0 | (b >> 8), b & 0xff]), Buffer.from([0, 1, 0, 1, 0, 0, 0, 0, 0, 0])]);
      const rr2 = Buffer.concat([Buffer.from([0xc0 | (a >> 8), a & 0xff]), Buffer.from([0, 1, 0, 1, 0, 0, 0, 0, 0, 0])]);
      return Buffer.concat([header(id, 0, 1, 0, 0, 2), q, rr1, rr2]);
    }
    default: {
      // a pointer past the end of the message, in the authority section
      const q = question('app.example.com', 1);
      const rr = Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.from([0, 2, 0, 1, 0, 0, 0, 0, 0, 2, 0xc0, 0x0c])]);
      return Buffer.concat([header(id, 0, 1, 0, 1, 0), q, rr]);
    }
  }
};

/** Several OPT records (RFC 6891 §6.1.1: FORMERR), sometimes with a non-root owner or lying counts. */
const manyOpts: Mutator = (rng, base) => {
  const id = base.readUInt16BE(0);
  const n = rng.range(2, 60);
  const opts: Buffer[] = [];
  for (let i = 0; i < n; i++) opts.push(optRecord(rng.int(0x10000), rng.chance(0.1) ? 1 : 0, rng.int(0x10000)));
  if (rng.chance(0.3)) opts[rng.int(n)] = Buffer.concat([encodeName('x'), optRecord(1232, 0, 0).subarray(1)]);
  const ar = rng.chance(0.8) ? n : rng.int(0x10000);
  return Buffer.concat([header(id, 0x0100, 1, 0, 0, ar), question(rng.pick(NAMES), 1), ...opts]);
};

/** ECS options that break RFC 7871 §6 in every way it can be broken. */
const badEcs: Mutator = (rng, base) => {
  const id = base.readUInt16BE(0);
  let option: Buffer;
  switch (rng.int(9)) {
    case 0:
      option = ecs(rng.pick([0, 3, 0xffff]), 24, 0, Buffer.from([1, 2, 3]));
      break;
    case 1:
      option = ecs(1, rng.range(33, 255), 0, rng.bytes(4));
      break;
    case 2:
      option = ecs(2, rng.range(129, 255), 0, rng.bytes(16));
      break;
    case 3:
      option = ecs(1, 24, rng.range(1, 255), Buffer.from([10, 0, 0]));
      break;
    case 4:
      option = ecs(1, 24, 0, rng.bytes(rng.pick([0, 1, 2, 4, 5, 16])));
      break;
    case 5:
      option = ecs(1, 23, 0, Buffer.from([10, 0, 0xff])); // bits beyond the prefix
      break;
    case 6: {
      option = Buffer.from([0, 8, 0, rng.int(4), 0, 1]); // shorter than the ECS fixed part
      break;
    }
    case 7: // two ECS options
      option = Buffer.concat([goodEcs(rng), goodEcs(rng)]);
      break;
    default: {
      option = goodEcs(rng);
      option.writeUInt16BE(rng.int(0x10000), 2); // option length lies
    }
  }
  const opt = optRecord(1232, 0, 0, option);
  if (rng.chance(0.2)) opt.writeUInt16BE(rng.int(0x10000), 9); // RDLENGTH lies
  return Buffer.concat([header(id, 0, 1, 0, 0, 1), question(rng.pick(NAMES), rng.pick([1, 28])), opt]);
};

/** Section counts far beyond what the message holds. */
const hugeCounts: Mutator = (rng, base) => {
  const out = Buffer.from(base);
  const field = rng.pick([4, 6, 8, 10]);
  out.writeUInt16BE(rng.chance(0.5) ? 0xffff : rng.int(0x10000), field);
  if (rng.chance(0.3)) out.writeUInt16BE(0xffff, rng.pick([4, 6, 8, 10]));
  return out;
};

/** A name of many short labels, near and over 255 bytes on the wire; or one label of 63. */
const longName: Mutator = (rng, base) => {
  const id = base.readUInt16BE(0);
  const labels = rng.range(60, 140);
  const name = Array.from({ length: labels }, () => 'a').join('.') + '.app.example.com';
  const q = rng.chance(0.2) ? question(`${'x'.repeat(63)}.${'y'.repeat(63)}.${'z'.repeat(63)}.${'w'.repeat(rng.range(50, 63))}`, 1) : question(name, 1);
  return Buffer.concat([header(id, 0, 1, 0, 0, 0), q]);
};

/** Bytes that DNS names cannot hold in a host name: dots and backslashes inside labels, 0x00, 0xff. */
const oddLabelBytes: Mutator = (rng, base) => {
  const id = base.readUInt16BE(0);
  const label = Buffer.from(rng.pick(['a.b', 'x\\y', '\x00\x00', '\xff\xfe', '.', '..', '\\', 'A.B.C']), 'latin1');
  const rest = encodeName(rng.pick(['app.example.com', 'nope.app.example.com', 'legacy.app.example.com', 'example.org']));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(rng.pick([1, 28, 255, 16, 6]), 0);
  tail.writeUInt16BE(1, 2);
  const q = Buffer.concat([Buffer.from([label.length]), label, rest, tail]);
  const parts = [header(id, 0, 1, 0, 0, 0), q];
  if (rng.chance(0.5)) {
    parts[0].writeUInt16BE(1, 10);
    parts.push(optRecord(rng.pick([512, 1232]), 0, 0));
  }
  return Buffer.concat(parts);
};

/** Other opcodes, Z bits, RCODE bits in a query, odd classes, EDNS versions. */
const oddHeader: Mutator = (rng, base) => {
  const out = Buffer.from(base);
  const flags = out.readUInt16BE(2);
  out.writeUInt16BE((flags & 0x8000) | (rng.int(0x10000) & 0x7fff), 2);
  if (rng.chance(0.3) && out.length >= 12 + 5) {
    const qEnd = questionEnd(out);
    if (qEnd > 0 && qEnd <= out.length) out.writeUInt16BE(rng.pick([0, 2, 3, 4, 254, 255, 0xffff]), qEnd - 2);
    if (qEnd > 0 && out.length >= qEnd + 11 && out[qEnd] === 0) out[qEnd + 6] = rng.int(256); // EDNS version
  }
  return out;
};

/** Records of every section with well-formed compression (the dns2 path). */
const extraRecords: Mutator = (rng, base) => {
  const id = base.readUInt16BE(0);
  const q = question(rng.pick(NAMES), 1);
  const records: Buffer[] = [];
  const an = rng.int(3);
  const ns = rng.int(3);
  const ar = rng.int(3);
  for (let i = 0; i < an + ns + ar; i++) {
    const rdata = rng.bytes(rng.int(20));
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(rng.pick([1, 16, 99, 250]), 0); // 250 = TSIG, unverified
    fixed.writeUInt16BE(1, 2);
    fixed.writeUInt16BE(rdata.length, 8);
    records.push(Buffer.from([0xc0, 12]), fixed, rdata);
  }
  const withOpt = rng.chance(0.5);
  const parts = [header(id, 0, 1, an, ns, ar + (withOpt ? 1 : 0)), q, ...records];
  if (withOpt) parts.push(optRecord(1232, 0, 0, rng.chance(0.5) ? goodEcs(rng) : Buffer.alloc(0)));
  return Buffer.concat(parts);
};

/** Two packets glued or spliced. */
const splice: Mutator = (rng, base) => {
  const other = validQuery(rng);
  const cut = rng.int(base.length);
  return Buffer.concat([base.subarray(0, cut), other.subarray(rng.int(other.length))]);
};

const garbage: Mutator = (rng) => rng.bytes(rng.chance(0.2) ? rng.int(12) : rng.range(12, rng.chance(0.1) ? 4096 : 600));

/** A response (QR=1) made from a valid query: must never be answered. */
const response: Mutator = (rng, base) => {
  const out = Buffer.from(base);
  out[2] |= 0x80;
  if (rng.chance(0.5)) out[3] = rng.int(256);
  return out;
};

const MUTATORS: readonly [string, Mutator, number][] = [
  ['bitflip', bitFlip, 20],
  ['truncate', truncate, 8],
  ['extend', extend, 4],
  ['bad-label', badLabel, 8],
  ['pointer-loop', pointerLoop, 6],
  ['many-opts', manyOpts, 5],
  ['bad-ecs', badEcs, 8],
  ['huge-counts', hugeCounts, 6],
  ['long-name', longName, 3],
  ['odd-label-bytes', oddLabelBytes, 5],
  ['odd-header', oddHeader, 6],
  ['extra-records', extraRecords, 6],
  ['splice', splice, 4],
  ['garbage', garbage, 6],
  ['qr-set', response, 5],
];
const TOTAL_WEIGHT = MUTATORS.reduce((n, [, , w]) => n + w, 0);

/** One fuzzed packet: a mutated valid query (sometimes mutated twice). */
export function fuzzPacket(rng: Rng): FuzzPacket {
  let bytes = validQuery(rng);
  let kind = '';
  const rounds = rng.chance(0.15) ? 2 : 1;
  for (let r = 0; r < rounds; r++) {
    let pick = rng.int(TOTAL_WEIGHT);
    for (const [name, mutate, weight] of MUTATORS) {
      if (pick < weight) {
        bytes = mutate(rng, bytes.length >= 12 ? bytes : validQuery(rng));
        kind = kind ? `${kind}+${name}` : name;
        break;
      }
      pick -= weight;
    }
  }
  return { bytes, expect: expectOf(bytes), kind };
}

/** Offset past the question of a packet whose question is an uncompressed name, or -1. */
export function questionEnd(raw: Buffer): number {
  let pos = 12;
  while (pos < raw.length) {
    const len = raw[pos];
    if (len === 0) return pos + 5;
    if (len > 63) return -1;
    pos += len + 1;
  }
  return -1;
}

export const MUTATOR_NAMES = MUTATORS.map(([n]) => n);
