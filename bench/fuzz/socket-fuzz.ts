/**
 * Fuzzing a real `sitedns serve` process over UDP and TCP (loopback only). Used by
 * test/fuzz/socket.test.ts (short, fixed seed) and bench/fuzz/run.ts (long).
 *
 * UDP: packets that must be answered go out from one socket with their ID rewritten to a
 * sequence number, so each reply is matched to its query and checked (checkReply); packets that
 * must get no reply (QR=1, under 12 bytes) go out from a second socket, which must receive
 * nothing. A window of outstanding queries keeps the kernel buffers from overflowing; a query
 * still unanswered when the window stalls is counted as lost. Every eighth packet a valid query
 * goes out from a third socket and must be answered.
 *
 * TCP: connections carrying pipelined frames, the silent ones mixed in (tagged with ID bit 15);
 * replies must come back in order, one per answerable frame, none for the silent ones. Some
 * connections get a raw byte stream that breaks the framing; the server may close those.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { checkReply } from './handler-fuzz.js';
import { Rng, fuzzPacket, validQuery, type FuzzPacket } from './packets.js';

export interface SocketFuzzStats {
  udpSent: number;
  udpAnswered: number;
  udpLost: number;
  udpSilentSent: number;
  udpValidAnswered: number;
  tcpFrames: number;
  tcpAnswered: number;
  tcpSilentFrames: number;
  tcpConnections: number;
  tcpGarbageStreams: number;
  /** Replies to packets that must get none (QR=1, short): must be 0. */
  repliesToSilent: number;
  failures: string[];
  failureCount: number;
}

export function newStats(): SocketFuzzStats {
  return {
    udpSent: 0,
    udpAnswered: 0,
    udpLost: 0,
    udpSilentSent: 0,
    udpValidAnswered: 0,
    tcpFrames: 0,
    tcpAnswered: 0,
    tcpSilentFrames: 0,
    tcpConnections: 0,
    tcpGarbageStreams: 0,
    repliesToSilent: 0,
    failures: [],
    failureCount: 0,
  };
}

function fail(stats: SocketFuzzStats, message: string): void {
  stats.failureCount++;
  if (stats.failures.length < 20) stats.failures.push(message);
}

async function bound(host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

export interface UdpFuzzOptions {
  port: number;
  host?: string;
  seed: number;
  packets: number;
  window?: number;
  /** How long a stalled window waits before counting its queries as lost. */
  stallMs?: number;
  /** How long a valid probe query may wait for its answer. */
  probeTimeoutMs?: number;
  onProgress?: (done: number) => void;
  /** Checked between packets: stop early (e.g. the server process exited). */
  abort?: () => boolean;
}

export async function fuzzUdp(opts: UdpFuzzOptions, stats = newStats()): Promise<SocketFuzzStats> {
  const host = opts.host ?? '127.0.0.1';
  const window = opts.window ?? 32;
  const stallMs = opts.stallMs ?? 1000;
  const rng = new Rng(opts.seed);
  const fuzz = await bound(host);
  const silent = await bound(host);
  const probe = await bound(host);
  const outstanding = new Map<number, Buffer>();
  let wake: (() => void) | null = null;
  fuzz.on('message', (reply) => {
    const id = reply.length >= 2 ? reply.readUInt16BE(0) : -1;
    const query = outstanding.get(id);
    if (!query) {
      fail(stats, `UDP reply with unexpected ID ${id}: ${reply.toString('hex').slice(0, 120)}`);
      return;
    }
    outstanding.delete(id);
    stats.udpAnswered++;
    const problem = checkReply(query, reply, 'udp');
    if (problem) fail(stats, `UDP: ${problem}; query ${query.toString('hex')}`);
    wake?.();
  });
  silent.on('message', (reply) => {
    stats.repliesToSilent++;
    fail(stats, `UDP reply to a QR=1/short packet: ${reply.toString('hex').slice(0, 120)}`);
  });
  const probeWaiters = new Map<number, (reply: Buffer) => void>();
  probe.on('message', (reply) => probeWaiters.get(reply.readUInt16BE(0))?.(reply));

  const send = (socket: dgram.Socket, bytes: Buffer) =>
    new Promise<void>((resolve) => socket.send(bytes, opts.port, host, (error) => (error ? (fail(stats, `UDP send: ${error.message}`), resolve()) : resolve())));

  let seq = 0;
  try {
    for (let i = 0; i < opts.packets; i++) {
      if (opts.onProgress && i % 50_000 === 0) opts.onProgress(i);
      if (opts.abort?.()) {
        fail(stats, `aborted after ${i} packets`);
        break;
      }
      if (i % 8 === 7) {
        // A valid query between the broken ones: it must be answered.
        const id = i & 0xffff;
        const q = validQuery(rng, id);
        const answered = new Promise<Buffer | null>((resolve) => {
          const timer = setTimeout(() => resolve(null), opts.probeTimeoutMs ?? 3000);
          probeWaiters.set(id, (reply) => {
            clearTimeout(timer);
            resolve(reply);
          });
        });
        await send(probe, q);
        const reply = await answered;
        probeWaiters.delete(id);
        if (reply === null) fail(stats, `valid UDP query ${q.toString('hex')} not answered`);
        else {
          const problem = checkReply(q, reply, 'udp');
          if (problem) fail(stats, `valid UDP query: ${problem}`);
          else stats.udpValidAnswered++;
        }
        continue;
      }
      const p: FuzzPacket = fuzzPacket(rng);
      if (p.expect === 'silent') {
        stats.udpSilentSent++;
        await send(silent, p.bytes);
        continue;
      }
      const bytes = Buffer.from(p.bytes);
      const id = seq;
      seq = (seq + 1) & 0xffff;
      bytes.writeUInt16BE(id, 0);
      outstanding.set(id, bytes);
      stats.udpSent++;
      await send(fuzz, bytes);
      while (outstanding.size >= window) {
        const progressed = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), stallMs);
          wake = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        wake = null;
        if (!progressed) {
          stats.udpLost += outstanding.size;
          outstanding.clear();
        }
      }
    }
    // Let the last replies (and any wrong reply to a silent packet) arrive.
    const deadline = Date.now() + stallMs;
    while (outstanding.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    stats.udpLost += outstanding.size;
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    fuzz.close();
    silent.close();
    probe.close();
  }
  return stats;
}

export interface TcpFuzzOptions {
  port: number;
  host?: string;
  seed: number;
  /** Frames in all. */
  frames: number;
  framesPerConnection?: number;
  /** Connections to run at once. */
  parallel?: number;
  timeoutMs?: number;
  onProgress?: (done: number) => void;
  abort?: () => boolean;
}

export async function fuzzTcp(opts: TcpFuzzOptions, stats = newStats()): Promise<SocketFuzzStats> {
  const host = opts.host ?? '127.0.0.1';
  const perConnection = opts.framesPerConnection ?? 40;
  const rng = new Rng(opts.seed);
  let done = 0;
  let nextProgress = 0;
  const batches: { frames: Buffer[]; expected: Buffer[]; garbage: Buffer | null }[] = [];
  const makeBatch = () => {
    if (rng.chance(0.05)) {
      // A raw stream that breaks the framing: random bytes, then a frame claiming 65535 bytes.
      stats.tcpGarbageStreams++;
      return { frames: [], expected: [], garbage: Buffer.concat([rng.bytes(rng.range(1, 3000)), Buffer.from([0xff, 0xff, 1, 2, 3])]) };
    }
    const frames: Buffer[] = [];
    const expected: Buffer[] = [];
    for (let i = 0; i < perConnection; i++) {
      const valid = i % 8 === 7;
      const p: FuzzPacket = valid ? { bytes: validQuery(rng), expect: 'answer', kind: 'valid' } : fuzzPacket(rng);
      const bytes = Buffer.from(p.bytes);
      if (p.expect === 'answer') {
        bytes.writeUInt16BE(expected.length, 0);
        expected.push(bytes);
      } else {
        stats.tcpSilentFrames++;
        if (bytes.length >= 2) bytes.writeUInt16BE(0x8000 | rng.int(0x8000), 0);
      }
      const frame = Buffer.alloc(2 + bytes.length);
      frame.writeUInt16BE(bytes.length, 0);
      bytes.copy(frame, 2);
      frames.push(frame);
    }
    stats.tcpFrames += frames.length;
    return { frames, expected, garbage: null };
  };

  const runOne = async (batch: ReturnType<typeof makeBatch>) => {
    stats.tcpConnections++;
    const socket = net.connect({ port: opts.port, host });
    socket.on('error', () => {});
    await once(socket, 'connect');
    if (batch.garbage) {
      socket.write(batch.garbage);
      socket.end();
      await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 200))]);
      socket.destroy();
      return;
    }
    // Write in a few pieces at random boundaries: framing must survive any segmentation.
    const all = Buffer.concat(batch.frames);
    const cuts = [0, rng.int(all.length), rng.int(all.length), all.length].sort((a, b) => a - b);
    for (let i = 0; i + 1 < cuts.length; i++) if (cuts[i + 1] > cuts[i]) socket.write(all.subarray(cuts[i], cuts[i + 1]));
    let pending = Buffer.alloc(0);
    let got = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        fail(stats, `TCP: ${got} of ${batch.expected.length} replies before the timeout`);
        resolve();
      }, opts.timeoutMs ?? 5000);
      const finish = () => {
        clearTimeout(timer);
        resolve();
      };
      socket.on('close', () => {
        if (got < batch.expected.length) fail(stats, `TCP: connection closed after ${got} of ${batch.expected.length} replies`);
        finish();
      });
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
          const reply = pending.subarray(2, 2 + pending.readUInt16BE(0));
          pending = pending.subarray(2 + reply.length);
          const id = reply.length >= 2 ? reply.readUInt16BE(0) : -1;
          if ((id & 0x8000) !== 0) {
            stats.repliesToSilent++;
            fail(stats, `TCP reply to a QR=1/short frame: ${reply.toString('hex').slice(0, 120)}`);
            continue;
          }
          if (id !== got) {
            fail(stats, `TCP reply ${id} out of order (expected ${got})`);
            continue;
          }
          const problem = checkReply(batch.expected[got], reply, 'tcp');
          if (problem) fail(stats, `TCP: ${problem}; query ${batch.expected[got].toString('hex')}`);
          got++;
          stats.tcpAnswered++;
          if (got === batch.expected.length) finish();
        }
      });
    });
    socket.destroy();
  };

  const parallel = opts.parallel ?? 8;
  let produced = 0;
  while (produced < opts.frames || batches.length > 0) {
    if (opts.abort?.()) {
      fail(stats, `aborted after ${produced} frames`);
      break;
    }
    while (batches.length < parallel && produced < opts.frames) {
      const b = makeBatch();
      produced += Math.max(b.frames.length, 1);
      batches.push(b);
    }
    await Promise.all(batches.splice(0).map(runOne));
    done = produced;
    if (opts.onProgress && done >= nextProgress) {
      opts.onProgress(done);
      nextProgress += 50_000;
    }
  }
  return stats;
}
