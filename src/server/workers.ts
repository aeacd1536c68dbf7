/**
 * `serve --workers N`: N node:cluster worker processes answer on the same UDP and TCP sockets;
 * one process is not enough to keep up with gdnsd (one JavaScript callback per datagram). The
 * primary answers no queries: it reads the zone files (the only process that does, and the only
 * one that reports their problems), forks and restarts workers, feeds every worker the zone texts
 * it loaded (each worker compiles them: the same zones and generation as the primary, even if a
 * file changes during a rolling reload) and the same state snapshot (the embedded default, where
 * the state store runs in the primary). With Redis, each worker may instead subscribe itself;
 * the IPC below then carries zones and reloads only.
 *
 * Sockets: UDP sockets are bound by the primary and shared (cluster's default for dgram:
 * every worker reads the one socket, the kernel hands each datagram to one reader); TCP uses
 * SCHED_NONE so each worker accepts on the shared listening socket itself instead of the
 * primary passing every connection over IPC. When one worker dies, datagrams waiting in the
 * shared socket are read by the others: only the queries inside the dead worker are lost.
 *
 * IPC (JSON over the cluster channel):
 *   worker -> primary  { type: 'hello' }             first thing a worker says; the primary answers
 *                                                     with its 'zones' and the current 'state' before
 *                                                     it listens ('hello' is said again, and answered
 *                                                     with the state only, by a worker whose state is
 *                                                     out of step)
 *   primary -> worker  { type: 'zones', zones: { generation, texts } }
 *                      { type: 'state', version, takenAt, fresh, sites: [[key, SiteState], ...] }
 *                      { type: 'delta', from, version, takenAt, fresh, sites: [[key, SiteState], ...], removed: [key, ...] }
 *                      { type: 'reload', id, zones }  compile these zone texts, reply 'reloaded'
 *                      { type: 'stop' }             close the listeners gracefully, exit 0
 *   worker -> primary  { type: 'ready', listening: [{ address, port, udpPath }], generation }
 *                      { type: 'reloaded', id, generation, problems, ok }
 * A worker opens its listeners only after its zones are compiled and the first 'state' arrived,
 * so a (re)started worker never answers from an empty snapshot.
 *
 * Deltas: with 10,000 probed sites the primary swaps its snapshot up to 20 times a second
 * (one per load batch), and sending every site to every worker each time cost the primary a
 * JSON encoding of all of them and each worker a decoding. When the follower re-combined only
 * some sites (snapshot.ts deltaOf), a worker that holds the snapshot the delta starts `from`
 * gets only the changed sites and applies them to a copy of its own; any other worker, a
 * worker that said 'hello' (new or restarted), every worker before a reload, and every snapshot
 * of a full recompute get the whole 'state'. A worker that receives a delta it cannot apply
 * (not holding `from`) ignores it and says 'hello' again.
 *
 * Reloads roll one worker at a time: compiling a large zone set blocks that worker's event loop
 * for the compile time, and the others keep answering. Forking, restarting, zones and state
 * publishing and rolling reloads are AnswererPool's (answerer-pool.ts), shared with the UDP
 * threads.
 */
import cluster, { type Worker } from 'node:cluster';
import { Runtime } from '../state/runtime.js';
import type { StateSnapshot } from '../state/snapshot.js';
import type { Logger } from '../util/logger.js';
import { AnswererPool, type Answerer, type AnswererFailedToStart } from './answerer-pool.js';
import type { Nameserver } from './nameserver.js';
import { AnswererZones, type ZoneTexts } from './reload.js';
import { applyStateMessage, type DeltaMessage, type StateMessage } from './state-messages.js';

type ReloadMessage = { type: 'reload'; id: number; zones: ZoneTexts };
export type PrimaryMessage = { type: 'zones'; zones: ZoneTexts } | StateMessage | DeltaMessage | ReloadMessage | { type: 'stop' };
export type WorkerMessage =
  | { type: 'hello' }
  | { type: 'ready'; listening: { address: string; port: number; udpPath: string }[]; generation: number }
  | { type: 'reloaded'; id: number; generation: number; problems: number; ok: boolean };

/** Default worker count: every core (os.availableParallelism). */
export async function defaultWorkers(): Promise<number> {
  const os = await import('node:os');
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** Environment for the workers (e.g. the resolved --listen ports). */
  env: NodeJS.ProcessEnv;
  /** The state new workers start from (the primary's runtime.state). */
  currentState: () => StateSnapshot;
  /** The zone texts the primary serves (ReloadController.zoneTexts): what every worker compiles. */
  zoneTexts: () => ZoneTexts;
  /** Called when every worker is listening for the first time. */
  onReady?: (listening: { address: string; port: number; udpPath: string }[]) => void;
}

export interface Primary {
  /** Sends a state snapshot to every worker (and to later restarted ones). */
  publishState(snapshot: StateSnapshot): void;
  /** Rolling reload to the current zone texts: one worker at a time; resolves when all have reloaded. */
  reload(): Promise<{ ok: boolean; generation: number }>;
  workerPids(): number[];
  /** Stops every worker gracefully; resolves when all have exited. */
  stop(): Promise<void>;
  /** Resolves with an exit code if the workers cannot start at all. */
  readonly failed: Promise<number>;
}

/** Runs in the primary process: forks, restarts, broadcasts (the lifecycle is AnswererPool's). */
export function startPrimary(options: PrimaryOptions): Primary {
  const log = options.logger.child({ component: 'cluster' });
  // Workers accept TCP connections themselves (see the module comment).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ silent: false });
  let failWith: (code: number) => void = () => {};
  const failed = new Promise<number>((resolve) => (failWith = resolve));
  const pid = (a: Answerer<Worker>) => a.handle.process.pid;

  const pool = new AnswererPool<Worker, PrimaryMessage, WorkerMessage>({
    size: options.workers,
    transport: {
      spawn: () => cluster.fork(options.env),
      post: (worker, message) => {
        if (worker.isConnected()) worker.send(message, undefined, () => {});
      },
      onMessage: (worker, listener) => worker.on('message', listener),
      onExit: (worker, listener) => worker.on('exit', (code, signal) => listener({ code, signal })),
      kill: (worker) => worker.process.kill('SIGKILL'),
    },
    currentState: options.currentState,
    stateAtSpawn: false, // a worker says 'hello' first (WorkerLink)
    currentZones: options.zoneTexts,
    zonesRequest: (zones) => ({ type: 'zones', zones }),
    reloadRequest: (id, zones) => ({ type: 'reload', id, zones }),
    killAfterMs: 5000,
    spawned: (a) => {
      if (a.replaces !== undefined) log.info({ worker: pid(a), replaces: a.replaces.process.pid }, 'worker restarted');
    },
    listening: (a, ready) => log.info({ worker: pid(a), generation: ready.generation }, 'worker listening'),
    restarting: (a, { code, signal }, restartInMs) => log.error({ worker: pid(a), code, signal, restartInMs }, 'worker died; restarting it'),
    reloaded: ({ ok, generation }, workers) => log.info({ workers, generation, ok }, 'rolling reload done'),
  });
  pool.start.then(
    (ready) => options.onReady?.(ready[ready.length - 1].listening),
    ({ answerer, exit }: AnswererFailedToStart<Worker>) => {
      // A worker that cannot even start (bad flags, no zones, port taken): give up (the pool
      // stops the others).
      log.fatal({ worker: pid(answerer), code: exit.code, signal: exit.signal }, 'worker failed to start');
      failWith(1);
    },
  );

  return {
    failed,
    publishState: (snapshot) => pool.publishState(snapshot),
    reload: () => pool.reload(),
    workerPids: () => pool.answerers().map(pid).filter((p) => p !== undefined),
    stop: () => pool.close(),
  };
}

/**
 * The worker's end of the IPC channel: asks for the zones and the state first, compiles the
 * zones into its runtime, then applies the primary's messages to that runtime.
 */
export class WorkerLink {
  /** The worker's zones and state, as the primary sends them. */
  readonly runtime = new Runtime();
  private readonly zones: AnswererZones;
  private firstZones: ZoneTexts | null = null;
  private latest: StateSnapshot | null = null;
  private waiting: (() => void) | null = null;
  private ns: Nameserver | null = null;
  private stopRequested = false;
  private onStop: (() => void) | null = null;
  private reloadWhenServing: ReloadMessage | null = null;

  constructor(zonesPath: string, private readonly log: Logger) {
    this.zones = new AnswererZones(this.runtime, zonesPath, log);
    process.on('message', (message: PrimaryMessage) => this.receive(message));
    // The primary went away: nobody restarts or feeds us any more.
    process.on('disconnect', () => {
      this.log.warn('primary process gone; stopping');
      this.stop();
    });
    // SIGHUP to the whole process group reaches the workers too: the primary coordinates reloads.
    process.on('SIGHUP', () => {});
    // A worker told to stop stops (the primary restarts it unless the primary is stopping too).
    process.once('SIGINT', () => this.stop());
    process.once('SIGTERM', () => this.stop());
    this.send({ type: 'hello' });
  }

  private send(message: WorkerMessage): void {
    if (process.connected) process.send?.(message, undefined, undefined, () => {});
  }

  /**
   * Resolves once the primary's zones are compiled and its state is held: the runtime can answer.
   * Rejects when they do not come in time, or the zones hold no zone (NoZonesError).
   */
  async ready(timeoutMs = 10_000): Promise<Runtime> {
    if (this.firstZones === null || this.latest === null) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no zones and state from the cluster primary')), timeoutMs);
        this.waiting = () => {
          if (this.firstZones === null || this.latest === null) return;
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await this.zones.load(this.firstZones!);
    return this.runtime;
  }

  private receive(message: PrimaryMessage): void {
    switch (message?.type) {
      case 'zones':
        this.firstZones ??= message.zones;
        this.waiting?.();
        break;
      case 'state':
      case 'delta': {
        const snapshot = applyStateMessage(this.latest, message);
        if (snapshot === null) {
          // Out of step (cannot happen while IPC keeps its order; cheap to recover from): ask again.
          this.log.warn({ from: message.type === 'delta' ? message.from : null, holding: this.latest?.version ?? null }, 'state delta does not apply; asking the primary for the whole state');
          this.send({ type: 'hello' });
          break;
        }
        this.latest = snapshot;
        this.runtime.publishState(snapshot);
        this.waiting?.();
        break;
      }
      case 'reload':
        // One asked while this worker still starts is done once it serves: its first zones may be
        // older, and the primary's rolling reload waits for its reply.
        if (this.ns === null) this.reloadWhenServing = message;
        else void this.reload(message);
        break;
      case 'stop':
        this.stop();
        break;
    }
  }

  private async reload(message: ReloadMessage): Promise<void> {
    try {
      const report = await this.zones.load(message.zones);
      this.send({ type: 'reloaded', id: message.id, generation: report.zoneSet.generation, problems: report.problems.length, ok: report.problems.length === 0 });
    } catch (error) {
      this.log.error({ err: error }, 'reload failed; still serving the zones of before');
      this.send({ type: 'reloaded', id: message.id, generation: this.runtime.zones.generation, problems: 1, ok: false });
    }
  }

  private stop(): void {
    this.stopRequested = true;
    this.onStop?.();
  }

  /** Reports 'ready' and serves until the primary (or a signal) says stop. */
  serve(ns: Nameserver): Promise<void> {
    this.ns = ns;
    this.send({
      type: 'ready',
      listening: ns.udp.map((u) => ({ address: u.address, port: u.port, udpPath: u.path })),
      generation: this.runtime.zones.generation,
    });
    if (this.reloadWhenServing !== null) {
      void this.reload(this.reloadWhenServing);
      this.reloadWhenServing = null;
    }
    return new Promise<void>((resolve) => {
      let stopped = false;
      this.onStop = () => {
        if (stopped) return;
        stopped = true;
        ns.stop().then(resolve, resolve);
      };
      if (this.stopRequested) this.onStop();
    });
  }
}
