/**
 * Batched UDP transport: a thin adapter from the native addon in native/udp-batch to the answer
 * step. The addon owns the socket (SO_REUSEPORT, so every UDP thread binds its own), drains
 * it with recvmmsg into ONE ArrayBuffer shared with this module, calls `onBatch(count)` once per
 * batch, and sends what we wrote back with one sendmmsg, each reply from the address its query
 * was sent to (IP_PKTINFO / IPV6_PKTINFO on a wildcard socket). Per datagram this module only
 * finds the bytes; the answer step (answer-step.ts) does the rest, allocation-free.
 *
 * Shared buffer layout (mirrors native/udp-batch/src/udp_batch.c, checked at load):
 *   [ meta: batch x 16 int32 ][ in: batch x slot ][ out: batch x slot ][ over: batch x (65535 - slot) ]
 *   meta per slot: inLen, outLen, port, family (4|6), source address (16 bytes, network order),
 *   local address the datagram was sent to (16 bytes), interface index.
 * A datagram longer than a slot continues in that slot's part of `over` (read by largeQuery).
 * Datagrams from port 0 or empty never reach this module (dropped and counted in C); JavaScript
 * writes only outLen and out bytes, which C re-validates.
 *
 * Chosen through listenUdpPath() in udp.ts (--udp-path / SITEDNS_UDP_PATH); Linux only.
 */
import { createRequire } from 'node:module';
import dns from 'node:dns/promises';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { setUdpBatchTotalsReader } from '../metrics/definitions.js';
import { AnswerStep, type HandlerCore } from './answer-step.js';
import { UDP_RESPONSE_MAX } from './handler.js';
import { PeerContext } from './request-context.js';
import type { UdpListener, UdpOptions } from './udp.js';

/** Counters the addon keeps per socket (names as in COUNTER_NAMES of udp_batch.c). */
export interface UdpBatchStats {
  received: number;
  sent: number;
  batches: number;
  dropPort0: number;
  dropOversize: number;
  dropEmpty: number;
  dropBadAddress: number;
  dropBadReply: number;
  dropSendQueue: number;
  sendEagain: number;
  recvErrors: number;
  sendErrors: number;
  pollErrors: number;
  callbackErrors: number;
  bufferErrors: number;
  /** Blocking sockets with spinMicros: receives served while spinning, spins that ended asleep. */
  spinHits: number;
  spinMisses: number;
  /** Datagrams longer than a slot, received through the `over` area and answered. */
  large: number;
  /** Wildcard sockets: datagrams that came without their destination address (should stay 0). */
  noPktinfo: number;
  lastErrno: number;
}

interface AddonConstants {
  META_WORDS: number;
  M_IN_LEN: number;
  M_OUT_LEN: number;
  M_PORT: number;
  M_FAMILY: number;
  M_ADDR: number;
  M_LOCAL: number;
  M_IFINDEX: number;
  MAX_DATAGRAM: number;
  MAX_BATCH: number;
  MIN_SLOT: number;
  MAX_SLOT: number;
}

export interface AddonOpenOptions {
  host: string;
  port: number;
  batch?: number;
  slot?: number;
  reusePort?: number;
  sendTimeoutMs?: number;
  sendRetries?: number;
  maxRounds?: number;
  faultSendEagain?: number;
}

/** The addon's JavaScript surface (exported for test/addon, which drives it directly). */
export interface UdpBatchAddon {
  open(options: AddonOpenOptions, buffer: ArrayBuffer, onBatch: (count: number) => void): { handle: object; port: number };
  close(handle: object): void;
  stats(handle: object): UdpBatchStats;
  constants(): AddonConstants;
  /** A socket a worker thread's own loop waits on (serve --udp-threads; udp-thread.ts). */
  openBlocking(options: AddonOpenOptions & { receiveTimeoutMs?: number; spinMicros?: number }, buffer: ArrayBuffer): { handle: object; port: number };
  /** Blocks until datagrams arrive (their count), the receive timeout passes (0), or the socket is gone (-1). */
  receive(handle: object): number;
  /** Sends the replies written for slots [0, count) of the last receive(). */
  send(handle: object, count: number): void;
  /** Index of a handle with a datagram waiting, or -1 after timeoutMs; the scan starts at `start`. */
  waitAny(handles: object[], timeoutMs: number, start: number): number;
  /** Attaches a program picking the socket of the handle's reuseport group: [first, first + count), 0: the kernel's choice; 0 or an errno. */
  steer(handle: object, first: number, count: number): number;
}

/** The layout this module was written against; a different build is refused. */
export const LAYOUT = Object.freeze({ META_WORDS: 16, M_IN_LEN: 0, M_OUT_LEN: 1, M_PORT: 2, M_FAMILY: 3, M_ADDR: 4, M_LOCAL: 8, M_IFINDEX: 12, MAX_DATAGRAM: 65535 });
const { META_WORDS, M_IN_LEN, M_OUT_LEN, M_PORT, M_FAMILY, M_ADDR, MAX_DATAGRAM } = LAYOUT;

/** Datagrams per recvmmsg/sendmmsg (64 measured as the knee; docs/benchmarks.md). */
export const DEFAULT_BATCH = 64;
/**
 * Bytes per slot, for the query and for the reply alike. Replies are at most UDP_RESPONSE_MAX
 * (1232); a real query is a few hundred bytes at most (question + OPT with ECS and a cookie),
 * and a longer one continues in the slot's part of the `over` area.
 */
export const DEFAULT_SLOT = 2048;

/** Bytes of the shared buffer for `batch` slots of `slot` bytes (the layout above). */
export function sharedBufferBytes(batch: number, slot: number): number {
  return batch * META_WORDS * 4 + 2 * batch * slot + batch * Math.max(0, MAX_DATAGRAM - slot);
}

/**
 * The addon's file: node-gyp's build next to the sources, or the file SITEDNS_UDP_ADDON names (a
 * build against another Node's headers, kept apart so that both Nodes' builds coexist: .ci/run
 * tests a second Node that way).
 */
export function addonFile(): string {
  return process.env.SITEDNS_UDP_ADDON || fileURLToPath(new URL('../../native/udp-batch/build/Release/udp_batch.node', import.meta.url));
}

let loaded: UdpBatchAddon | string | undefined;

/** The addon, or why it cannot be used here (loaded once). */
export function loadAddon(): UdpBatchAddon | string {
  if (loaded !== undefined) return loaded;
  if (process.platform !== 'linux') return (loaded = `batched UDP path is Linux-only (this is ${process.platform})`);
  try {
    const addon = createRequire(import.meta.url)(addonFile()) as UdpBatchAddon;
    const c = addon.constants();
    for (const [key, value] of Object.entries(LAYOUT)) {
      if (c[key as keyof AddonConstants] !== value) return (loaded = `batched UDP addon layout mismatch (${key}); rebuild it with npm rebuild or npm ci`);
    }
    if (DEFAULT_SLOT < c.MIN_SLOT || DEFAULT_SLOT > c.MAX_SLOT || DEFAULT_BATCH > c.MAX_BATCH) return (loaded = 'batched UDP addon limits do not fit the defaults');
    return (loaded = addon);
  } catch (error) {
    return (loaded = `batched UDP addon not built (npm run build:addon builds it): ${(error as Error).message.split('\n')[0]}`);
  }
}

/** null when the batched path can be used; else the reason (listenUdpPath logs it on fallback). */
export function batchedUnavailable(): string | null {
  const addon = loadAddon();
  return typeof addon === 'string' ? addon : null;
}

// ---- metrics: native counters summed over open sockets, plus those of closed ones ----

const openSockets = new Set<{ handle: object; addon: UdpBatchAddon }>();
const retired: Record<string, number> = {};

function addInto(into: Record<string, number>, stats: UdpBatchStats): void {
  for (const [key, value] of Object.entries(stats)) {
    if (key !== 'lastErrno') into[key] = (into[key] ?? 0) + value;
  }
}

/** Totals over every batched socket this process opened (read at scrape time). */
export function udpBatchTotals(): Record<string, number> {
  const totals: Record<string, number> = { ...retired };
  for (const s of openSockets) addInto(totals, s.addon.stats(s.handle));
  return totals;
}
setUdpBatchTotalsReader(udpBatchTotals);

/**
 * Counts a socket's native counters in this thread's totals; the returned function is called
 * just before closing it, and keeps its last figures (counters never go back). Used by the
 * event-loop listener below and by the UDP threads' blocking sockets (udp-thread.ts).
 */
export function countSocket(addon: UdpBatchAddon, handle: object): () => void {
  const entry = { handle, addon };
  openSockets.add(entry);
  return () => {
    if (openSockets.delete(entry)) addInto(retired, addon.stats(handle));
  };
}

export interface BatchedUdpOptions extends UdpOptions {
  batch?: number;
  slot?: number;
  /** A full send queue is dropped after this long (default 200 ms; a last attempt first)... */
  sendTimeoutMs?: number;
  /** ...or after this many writable wake-ups in a row that sent nothing (default 8). */
  sendRetries?: number;
  /** Tests only: pretend the next N sendmmsg calls hit EAGAIN. */
  faultSendEagain?: number;
}

export interface BatchedUdpListener extends UdpListener {
  stats(): UdpBatchStats;
}

/**
 * Moves one batch through the answer step, given the shared buffer's layout: for each slot with
 * a datagram, set the peer, answer into the slot's reply area, write the reply length (0: no
 * reply). Returns `onBatch(count)`. The UDP threads of `serve --udp-threads` (udp-thread.ts) run
 * exactly this code too.
 */
export function batchAnswerer(step: AnswerStep, buffer: ArrayBuffer, batch: number, slot: number): (count: number) => void {
  const meta = new Int32Array(buffer, 0, batch * META_WORDS);
  const metaBytes = new Uint8Array(buffer, 0, batch * META_WORDS * 4);
  const inBase = batch * META_WORDS * 4;
  const outBase = inBase + batch * slot;
  const overBase = outBase + batch * slot;
  const overLength = Math.max(0, MAX_DATAGRAM - slot);
  // One Buffer view per slot, made once: the step reads in[i][0 .. inLen) and writes out[i].
  const inViews: Buffer[] = [];
  const outViews: Buffer[] = [];
  for (let i = 0; i < batch; i++) {
    inViews.push(Buffer.from(buffer, inBase + i * slot, slot));
    outViews.push(Buffer.from(buffer, outBase + i * slot, slot));
  }
  /**
   * A datagram longer than a slot, in one piece: its slot, then its part of `over`, copied into
   * one scratch buffer made at the first such datagram and reused (the step keeps no reference to
   * the query), so a sender of long datagrams costs copies, not allocations.
   */
  const overBytes = new Uint8Array(buffer, overBase, batch * overLength);
  let largeScratch: Buffer | null = null;
  const largeQuery = (i: number, length: number): Buffer => {
    largeScratch ??= Buffer.allocUnsafe(MAX_DATAGRAM);
    inViews[i].copy(largeScratch, 0, 0, slot);
    largeScratch.set(overBytes.subarray(i * overLength, i * overLength + length - slot), slot);
    return largeScratch;
  };
  const ctx = new PeerContext('udp');
  return (count: number): void => {
    for (let i = 0; i < count; i++) {
      const m = i * META_WORDS;
      const inLen = meta[m + M_IN_LEN];
      if (inLen <= 0) continue; // a slot C emptied (port 0, empty, ...): outLen is already 0
      ctx.setBytes(meta[m + M_FAMILY] === 6 ? 6 : 4, metaBytes, (m + M_ADDR) * 4, meta[m + M_PORT]);
      const n = step.answer(inLen <= slot ? inViews[i] : largeQuery(i, inLen), inLen, ctx, outViews[i]);
      meta[m + M_OUT_LEN] = n > 0 ? n : 0;
    }
  };
}

/** Opens a batched UDP listener with the signature of listenUdp(). */
export async function listenBatchedUdp(handler: HandlerCore, host: string, port: number, options: BatchedUdpOptions = {}): Promise<BatchedUdpListener> {
  const addon = loadAddon();
  if (typeof addon === 'string') throw new Error(addon);
  // The addon binds numeric addresses only; resolve a name the way dgram.bind() would.
  const address = net.isIP(host) !== 0 ? host : (await dns.lookup(host)).address;
  const batch = options.batch ?? DEFAULT_BATCH;
  const slot = options.slot ?? DEFAULT_SLOT;
  if (slot < UDP_RESPONSE_MAX) throw new Error(`slot ${slot} is smaller than the largest UDP reply (${UDP_RESPONSE_MAX})`);

  const buffer = new ArrayBuffer(sharedBufferBytes(batch, slot));
  const onBatch = batchAnswerer(new AnswerStep(handler, options.rrl), buffer, batch, slot);

  const opened = addon.open(
    {
      host: address,
      port,
      batch,
      slot,
      reusePort: 1,
      sendTimeoutMs: options.sendTimeoutMs ?? 200,
      sendRetries: options.sendRetries ?? 8,
      faultSendEagain: options.faultSendEagain ?? 0,
    },
    buffer,
    onBatch,
  );
  const retire = countSocket(addon, opened.handle);
  let closed: Promise<void> | null = null;
  return {
    address,
    port: opened.port,
    path: 'batched',
    stats: () => addon.stats(opened.handle),
    close() {
      if (closed === null) {
        retire();
        addon.close(opened.handle);
        // libuv closes the fd in its close phase, within this loop turn.
        closed = new Promise<void>((resolve) => setImmediate(resolve));
      }
      return closed;
    },
  };
}
