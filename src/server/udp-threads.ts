/**
 * `serve --udp-threads N`: UDP answered by N worker threads of this process, each waiting in
 * recvmmsg on a socket of its own (SO_REUSEPORT), the way gdnsd's UDP threads do; TCP, the state
 * store, probes and the admin listener stay on the main thread's event loop. The thread's side,
 * and why it blocks, is in udp-thread.ts; which thread the kernel hands datagrams to (thread 0
 * until it falls behind) in policy/udp-steering.ts. The lifecycle is AnswererPool's:
 * - a thread compiles the zone files the main thread validated (AnswererZones, zones/reload.ts; never
 *   the files) and listens only once it holds the current state snapshot, never an empty one;
 * - each state swap goes to every thread, as a delta where the thread holds the snapshot it
 *   starts from (StatePublisher); a thread out of step says 'hello' and gets the whole state;
 * - reloads roll one thread at a time (it compiles in slices and answers between them), threads
 *   still starting included, all to the same files and generation, one rolling reload at a time;
 * - a thread that dies is restarted (RestartBackoff) while the others answer; one that cannot start fails the start;
 * - /metrics sums every thread's registry with this process's (admin/answerer-metrics.ts), a
 *   thread that misses a scrape with its last one, a dead thread's kept (KeptRegistries);
 * - /readyz says not ready while no thread listens (live(): app/ops.ts).
 * Delivery: the main thread posts to the thread's MessagePort and bumps a shared counter, which the
 * thread checks after every wake-up before it reads its port (receiveMessageOnPort; udp-thread.ts).
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { KeptRegistries } from '../admin/answerer-metrics.js';
import type { StateSnapshot } from '../state/snapshot.js';
import type { Logger } from '../util/logger.js';
import { steeringCounters } from '../policy/udp-steering.js';
import { AnswererPool, type Answerer, type AnswererFailedToStart } from './answerer-pool.js';
import type { ZoneTexts } from '../zones/reload.js';
import type { RrlOptions } from './rrl.js';
import type { EdnsAnswering } from '../dns/reply-options.js';
import type { DeltaMessage, StateMessage } from '../state/messages.js';
import { DEFAULT_BATCH, DEFAULT_SLOT, loadAddon } from './udp-batched.js';
import type { UdpListener } from './udp.js';

export type Metric = MetricObjectWithValues<MetricValue<string>>;

/** What a UDP thread starts with (structured-cloned; the port is transferred). */
export interface UdpThreadData {
  index: number;
  /** Threads the steering spreads over (policy/udp-steering.ts; below 2: none). */
  steer: number;
  steering: SharedArrayBuffer;
  zonesPath: string;
  /** The main thread's zone texts when the thread starts (UdpThreadsOptions.zoneTexts). */
  zones: ZoneTexts;
  /** Numeric addresses and fixed ports (resolved by the main thread). */
  listen: { host: string; port: number }[];
  rrl: Partial<RrlOptions>;
  edns: EdnsAnswering | undefined;
  logLevel: string;
  querySample: number;
  batch: number;
  slot: number;
  receiveTimeoutMs: number;
  spinMicros: number;
  port: MessagePort;
  /** Int32Array(1) over this: bumped by the main thread after each post. */
  signal: SharedArrayBuffer;
}

export type UdpThreadRequest = StateMessage | DeltaMessage | { type: 'reload'; id: number; zones: ZoneTexts } | { type: 'metrics'; id: number } | { type: 'stop' };
export type UdpThreadReply =
  | { type: 'ready'; listening: { address: string; port: number }[]; generation: number }
  | { type: 'reloaded'; id: number; generation: number; ok: boolean }
  | { type: 'metrics'; id: number; metrics: Metric[] | null }
  | { type: 'hello' };

/** `serve --udp-spin` default (µs); docs/benchmarks.md "Spinning before sleeping" measured it. */
export const DEFAULT_SPIN_MICROS = 50;
/** `serve --udp-spin` limit (µs): the addon's MAX_SPIN_MICROS (udp_batch.c; test/addon/blocking.test.ts holds them equal). */
export const MAX_SPIN_MICROS = 1000;

export interface UdpThreadsOptions {
  threads: number;
  zonesPath: string;
  listen: { host: string; port: number }[];
  logger: Logger;
  logLevel: string;
  rrl?: Partial<RrlOptions>;
  /** NSID, identity and cookie secrets: the main thread's, so every thread answers alike. */
  edns?: EdnsAnswering;
  querySample?: number;
  /** Every zone the main thread serves as validated (its last good versions included) and their generation: what threads compile. */
  zoneTexts: () => ZoneTexts;
  /** The snapshot a (re)started thread starts from: the main thread's current one. */
  currentState: () => StateSnapshot;
  /** How long an idle thread waits before it looks at its mailbox (default 100 ms). */
  receiveTimeoutMs?: number;
  /** A thread that is behind polls this long (µs; 0 = never) before it sleeps in recvmmsg (udp_batch.c receive_waiting; default DEFAULT_SPIN_MICROS). */
  spinMicros?: number;
  /** false: no steering, the kernel's distribution (tests that query every thread). */
  steer?: boolean;
  /** Called with every thread started (and restarted); tests use it to end one. */
  onSpawn?: (worker: Worker, index: number) => void;
}

export interface UdpThreads {
  /** One per --listen address, path 'threads'; closing any closes the pool. */
  readonly listeners: UdpListener[];
  publishState(snapshot: StateSnapshot): void;
  /** Rolling reload of every thread's zones; resolves when all have reloaded. */
  reload(): Promise<{ ok: boolean; generation: number }>;
  /** The registries for /metrics: every live thread's (its last one if it does not answer in time) and dead threads' (KeptRegistries). */
  metrics(timeoutMs?: number): Promise<Metric[][]>;
  /** Thread ids of the live threads (tests). */
  threadIds(): number[];
  /** Threads listening now, fewer than `threads` (configured: --udp-threads N) while a dead one restarts (/readyz, sitedns_udp_threads_live). */
  live(): number;
  readonly threads: number;
  close(): Promise<void>;
}

/** One thread: the pool's handle on it. */
interface Thread {
  readonly index: number;
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly signal: Int32Array;
}

const THREAD_MODULE = new URL('./udp-thread.js', import.meta.url);

/** null when UDP threads can run here; else why not (the addon is missing or too old). */
export function udpThreadsUnavailable(): string | null {
  const addon = loadAddon();
  if (typeof addon === 'string') return `--udp-threads needs the batched UDP addon: ${addon}`;
  if (typeof addon.openBlocking !== 'function') return '--udp-threads: the batched UDP addon predates blocking sockets; rebuild it with npm run build:addon';
  return null;
}

/** Starts the threads; resolves once every one listens, rejects (and stops them) if one cannot start. */
export async function startUdpThreads(o: UdpThreadsOptions): Promise<UdpThreads> {
  const why = udpThreadsUnavailable();
  if (why !== null) throw new Error(why);
  const log = o.logger.child({ component: 'udp-threads' });
  const kept = new KeptRegistries<Answerer<Thread>>();
  const steering = steeringCounters(o.threads);

  const spawn = (index: number): Thread => {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const data: UdpThreadData = {
      index,
      steer: o.steer === false ? 0 : o.threads,
      steering,
      zonesPath: o.zonesPath,
      zones: o.zoneTexts(),
      listen: o.listen,
      rrl: o.rrl ?? {},
      edns: o.edns,
      logLevel: o.logLevel,
      querySample: o.querySample ?? 0,
      batch: DEFAULT_BATCH,
      slot: DEFAULT_SLOT,
      receiveTimeoutMs: o.receiveTimeoutMs ?? 100,
      spinMicros: o.spinMicros ?? DEFAULT_SPIN_MICROS,
      port: port2,
      signal,
    };
    const worker = new Worker(THREAD_MODULE, { workerData: data, transferList: [port2] });
    o.onSpawn?.(worker, index);
    return { index, worker, port: port1, signal: new Int32Array(signal) };
  };

  const pool = new AnswererPool<Thread, UdpThreadRequest, UdpThreadReply>({
    size: o.threads,
    transport: {
      spawn,
      post: (thread, message) => {
        thread.port.postMessage(message);
        Atomics.add(thread.signal, 0, 1);
      },
      onMessage: (thread, listener) => thread.port.on('message', listener),
      onExit: (thread, listener) => {
        let error: Error | undefined;
        thread.worker.on('error', (err) => {
          error = err;
          log.error({ thread: thread.index, err }, 'UDP thread failed');
        });
        thread.worker.on('exit', (code) => {
          thread.port.close();
          listener({ code, error });
        });
      },
      // A thread that does not stop in time (it sees 'stop' within its receive timeout) is terminated.
      kill: (thread) => void thread.worker.terminate(),
    },
    currentState: o.currentState,
    currentZones: o.zoneTexts,
    reloadRequest: (id, zones) => ({ type: 'reload', id, zones }),
    killAfterMs: 2000,
    listening: (a, ready) => {
      log.debug({ thread: a.slot, threadId: a.handle.worker.threadId, generation: ready.generation }, 'UDP thread listening');
      if (a.replaces !== undefined) log.info({ thread: a.slot }, 'UDP thread restarted');
    },
    restarting: (a, { code }, restartInMs) =>
      log.error({ thread: a.slot, code, restartInMs }, a.ready ? 'UDP thread died; restarting it' : 'UDP thread could not start; trying again'),
    reloaded: ({ ok, generation }, threads) => log.info({ threads, generation, ok }, 'UDP threads reloaded'),
  });
  const close = () => pool.close();

  try {
    await pool.start;
  } catch (error) {
    await close(); // the pool is stopping the others: wait until they have ended
    const { answerer, exit } = error as AnswererFailedToStart<Thread>;
    throw exit.error ?? new Error(`UDP thread ${answerer.slot} exited with code ${exit.code} before listening`);
  }
  log.info({ threads: o.threads, listen: o.listen }, 'UDP threads listening');

  const listening = () => pool.answerers().filter((a) => a.ready);
  return {
    listeners: o.listen.map(({ host, port }) => ({ address: host, port, path: 'threads' as const, close })),
    publishState: (snapshot) => pool.publishState(snapshot),
    reload: () => pool.reload(),
    async metrics(timeoutMs = 2000) {
      // Threads still starting are alive too (no registry yet); those that exited are not.
      const replies = await Promise.all(
        pool.answerers().map(async (a) => {
          const reply = a.ready ? await pool.ask(a, (id) => ({ type: 'metrics', id }), timeoutMs) : null;
          return [a, reply?.type === 'metrics' ? reply.metrics : null] as const;
        }),
      );
      // Only threads alive now: one that died meanwhile may have been retired by a later scrape.
      return kept.merge(new Map(replies.filter(([a]) => pool.has(a))));
    },
    threadIds: () => listening().map((a) => a.handle.worker.threadId),
    live: () => listening().length,
    threads: o.threads,
    close,
  };
}
