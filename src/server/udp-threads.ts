/**
 * `serve --udp-threads N` (#8): UDP answered by N worker threads of this process, each waiting
 * in recvmmsg on a socket of its own (SO_REUSEPORT), the way gdnsd's UDP threads do; TCP, the
 * state store, probes and the admin listener stay on the main thread's event loop. The thread's
 * side, and why it blocks, is in udp-thread.ts.
 *
 * This is the cluster primary's job (workers.ts) done for threads, with the same messages and
 * the same rules:
 * - every thread compiles its own zones and starts from the current state snapshot; it listens
 *   only once it holds one, so a (re)started thread never answers from an empty snapshot;
 * - each state swap goes to every thread, as a delta where the thread holds the snapshot it
 *   starts from (StatePublisher), and a thread out of step says 'hello' and gets the whole state;
 * - reloads roll one thread at a time (compiling blocks that thread; the others answer);
 * - a thread that dies is restarted (RestartBackoff), the others keep answering; one that cannot
 *   start at all fails the start;
 * - /metrics asks every thread for its registry and sums them with this process's (as for
 *   cluster workers, admin/cluster-metrics.ts); a thread that misses a scrape counts with its
 *   last registry, and a dead thread's counters stay in the sums (KeptRegistries);
 * - /readyz says not ready while no thread listens (live(): app/ops.ts).
 *
 * Delivery: the main thread posts to the thread's MessagePort, then bumps a shared counter; the
 * thread, which never runs its event loop while busy, checks the counter after every wake-up and
 * reads its port with receiveMessageOnPort (udp-thread.ts).
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { KeptRegistries } from '../admin/cluster-metrics.js';
import type { StateSnapshot } from '../state/snapshot.js';
import type { Logger } from '../util/logger.js';
import type { RrlOptions } from './rrl.js';
import { DEFAULT_BATCH, DEFAULT_SLOT, loadAddon } from './udp-batched.js';
import type { UdpListener } from './udp.js';
import { RestartBackoff, StatePublisher, type DeltaMessage, type StateMessage } from './workers.js';

export type Metric = MetricObjectWithValues<MetricValue<string>>;

/** What a UDP thread starts with (structured-cloned; the port is transferred). */
export interface UdpThreadData {
  index: number;
  zonesPath: string;
  /** The main thread's zone texts when the thread starts (UdpThreadsOptions.zoneTexts). */
  texts: [string, string][];
  /** Numeric addresses and fixed ports (resolved by the main thread). */
  listen: { host: string; port: number }[];
  rrl: Partial<RrlOptions>;
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

export type UdpThreadRequest = StateMessage | DeltaMessage | { type: 'reload'; id: number; texts: [string, string][] } | { type: 'metrics'; id: number } | { type: 'stop' };
export type UdpThreadReply =
  | { type: 'ready'; listening: { address: string; port: number }[]; generation: number }
  | { type: 'reloaded'; id: number; generation: number; ok: boolean }
  | { type: 'metrics'; id: number; metrics: Metric[] | null }
  | { type: 'hello' };

/** `serve --udp-spin` default (µs); docs/benchmarks.md "Spinning before sleeping" measured it. */
export const DEFAULT_SPIN_MICROS = 50;

export interface UdpThreadsOptions {
  threads: number;
  zonesPath: string;
  listen: { host: string; port: number }[];
  logger: Logger;
  logLevel: string;
  rrl?: Partial<RrlOptions>;
  querySample?: number;
  /**
   * [file, text] of every zone the main thread serves (its last good versions, kept files
   * included): threads compile these rather than the files, so they serve what it serves even
   * when a file is broken or changes between two loads.
   */
  zoneTexts: () => [string, string][];
  /** The snapshot a (re)started thread starts from: the main thread's current one. */
  currentState: () => StateSnapshot;
  /** How long an idle thread waits before it looks at its mailbox (default 100 ms). */
  receiveTimeoutMs?: number;
  /**
   * Before sleeping in recvmmsg, a thread that is behind (its receives take 8+ datagrams on
   * average, and most waits are shorter than this) polls for up to this long (µs; 0 = never):
   * under saturation it saves the scheduler's sleep and wake-up; a thread that keeps up sleeps
   * at once (udp_batch.c receive_waiting; default DEFAULT_SPIN_MICROS).
   */
  spinMicros?: number;
  /** Called with every thread started (and restarted); tests use it to end one. */
  onSpawn?: (worker: Worker, index: number) => void;
}

export interface UdpThreads {
  /** One per --listen address, path 'threads'; closing any closes the pool. */
  readonly listeners: UdpListener[];
  publishState(snapshot: StateSnapshot): void;
  /** Rolling reload of every thread's zones; resolves when all have reloaded. */
  reload(): Promise<{ ok: boolean; generation: number }>;
  /**
   * The threads' registries, for /metrics: every live thread's (its last one when it does not
   * answer in time), plus the counters of threads that died (KeptRegistries: sums never step back).
   */
  metrics(timeoutMs?: number): Promise<Metric[][]>;
  /** Thread ids of the live threads (tests). */
  threadIds(): number[];
  /** Threads listening now, fewer than `threads` while a dead one restarts (/readyz, sitedns_udp_threads_live). */
  live(): number;
  /** Threads configured (--udp-threads N). */
  readonly threads: number;
  close(): Promise<void>;
}

interface Answerer {
  readonly index: number;
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly signal: Int32Array;
  ready: boolean;
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
  const answerers = new Set<Answerer>();
  const backoff = new RestartBackoff();
  const waiting = new Map<number, (reply: UdpThreadReply | null) => void>();
  const kept = new KeptRegistries<Answerer>();
  let nextRequestId = 1;
  let stopping = false;
  /** Every thread listened once: from then on threads that end are replaced. */
  let started = false;
  let closed: Promise<void> | null = null;

  const post = (a: Answerer, message: UdpThreadRequest) => {
    a.port.postMessage(message);
    Atomics.add(a.signal, 0, 1);
  };
  const publisher = new StatePublisher<Answerer>(post);

  /** Sends a request that is answered by id; null when the thread exits or time runs out first. */
  const ask = (a: Answerer, request: (id: number) => UdpThreadRequest, timeoutMs: number) =>
    new Promise<UdpThreadReply | null>((resolve) => {
      const id = nextRequestId++;
      const onExit = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (reply: UdpThreadReply | null) => {
        clearTimeout(timer);
        waiting.delete(id);
        a.worker.off('exit', onExit);
        resolve(reply);
      };
      waiting.set(id, done);
      a.worker.once('exit', onExit);
      post(a, request(id));
    });

  const spawn = (index: number): Promise<void> => {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const data: UdpThreadData = {
      index,
      zonesPath: o.zonesPath,
      texts: o.zoneTexts(),
      listen: o.listen,
      rrl: o.rrl ?? {},
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
    const a: Answerer = { index, worker, port: port1, signal: new Int32Array(signal), ready: false };
    answerers.add(a);
    o.onSpawn?.(worker, index);
    publisher.whole(a, o.currentState()); // read before it listens (udp-thread.ts)
    return new Promise<void>((resolve, reject) => {
      port1.on('message', (reply: UdpThreadReply) => {
        switch (reply.type) {
          case 'ready':
            a.ready = true;
            log.debug({ thread: index, threadId: worker.threadId, generation: reply.generation }, 'UDP thread listening');
            if (stopping) post(a, { type: 'stop' });
            resolve();
            return;
          case 'hello':
            publisher.whole(a, o.currentState());
            return;
          case 'reloaded':
          case 'metrics':
            waiting.get(reply.id)?.(reply);
            return;
        }
      });
      let failure: Error | undefined;
      worker.on('error', (error) => {
        failure = error;
        log.error({ thread: index, err: error }, 'UDP thread failed');
      });
      worker.on('exit', (code) => {
        answerers.delete(a);
        publisher.forget(a);
        port1.close();
        if (!a.ready) reject(failure ?? new Error(`UDP thread ${index} exited with code ${code} before listening`));
        // At start-up a thread that cannot listen fails the start (bad zones, port taken); a
        // thread that listened and died, or once serving a replacement that cannot start (the
        // files broken meanwhile, say), is tried again with back-off, as a cluster worker is.
        if (stopping || (!started && !a.ready)) return;
        const delay = backoff.nextDelayMs();
        log.error({ thread: index, code, restartInMs: delay }, a.ready ? 'UDP thread died; restarting it' : 'UDP thread could not start; trying again');
        setTimeout(() => {
          if (stopping) return;
          spawn(index).then(
            () => log.info({ thread: index }, 'UDP thread restarted'),
            () => undefined, // logged by its own exit, which tries again
          );
        }, delay).unref();
      });
    });
  };

  const close = (): Promise<void> => {
    if (closed !== null) return closed;
    stopping = true;
    closed = Promise.all(
      [...answerers].map(
        (a) =>
          new Promise<void>((resolve) => {
            a.worker.once('exit', () => resolve());
            post(a, { type: 'stop' });
            // A thread that does not stop in time (it sees 'stop' within its receive timeout) is terminated.
            setTimeout(() => void a.worker.terminate(), 2000).unref();
          }),
      ),
    ).then(() => undefined);
    return closed;
  };

  /** Every thread in turn, threads still starting too (their reload is read once they listen). */
  const rollReload = async (): Promise<{ ok: boolean; generation: number }> => {
    reloadQueued = null; // requests from now on need a run after this one
    let ok = true;
    let generation = 0;
    for (const a of [...answerers]) {
      publisher.whole(a, o.currentState()); // a reload starts from a whole snapshot
      const reply = await ask(a, (id) => ({ type: 'reload', id, texts: o.zoneTexts() }), 60_000);
      if (reply?.type === 'reloaded') {
        ok &&= reply.ok;
        generation = Math.max(generation, reply.generation);
      }
    }
    log.info({ threads: answerers.size, generation, ok }, 'UDP threads reloaded');
    return { ok, generation };
  };
  let reloading: Promise<void> = Promise.resolve();
  let reloadQueued: Promise<{ ok: boolean; generation: number }> | null = null;

  try {
    await Promise.all(Array.from({ length: o.threads }, (_, i) => spawn(i)));
    started = true;
  } catch (error) {
    await close();
    throw error;
  }
  log.info({ threads: o.threads, listen: o.listen }, 'UDP threads listening');

  return {
    listeners: o.listen.map(({ host, port }) => ({ address: host, port, path: 'threads' as const, close })),
    publishState(snapshot) {
      publisher.publish(snapshot, answerers);
    },
    reload() {
      // One rolling reload at a time: two overlapping ones would have two threads compiling at
      // once. Requests made while one runs are folded into one more run after it.
      if (reloadQueued !== null) return reloadQueued;
      const next = reloading.then(rollReload);
      reloadQueued = next;
      reloading = next.then(
        () => undefined,
        () => undefined,
      );
      return next;
    },
    async metrics(timeoutMs = 2000) {
      // Threads still starting are alive too (no registry yet); those that exited are not.
      const replies = await Promise.all(
        [...answerers].map(async (a) => {
          const reply = a.ready ? await ask(a, (id) => ({ type: 'metrics', id }), timeoutMs) : null;
          return [a, reply?.type === 'metrics' ? reply.metrics : null] as const;
        }),
      );
      // Only threads alive now: one that died meanwhile may have been retired by a later scrape.
      return kept.merge(new Map(replies.filter(([a]) => answerers.has(a))));
    },
    threadIds() {
      return [...answerers].filter((a) => a.ready).map((a) => a.worker.threadId);
    },
    live() {
      return [...answerers].filter((a) => a.ready).length;
    },
    threads: o.threads,
    close,
  };
}
