/**
 * Nameserver lifecycle: load zones, open the listeners (UDP and TCP on every --listen address),
 * reload, stop. The state snapshot is fed from outside (state store) through `runtime.state`.
 */
import cluster from 'node:cluster';
import dns from 'node:dns/promises';
import net from 'node:net';
import { addMetricsSource } from '../admin/cluster-metrics.js';
import { formatProblem } from '../config/errors.js';
import type { PolicyEnv } from '../policy/types.js';
import { parseHostPort, resolveListenPorts } from '../util/listen.js';
import type { Logger } from '../util/logger.js';
import { prebuiltTable } from './fast-path.js';
import { Handler } from './handler.js';
import type { HandlerObserver } from './query-event.js';
import { Runtime, observeSwaps } from '../state/runtime.js';
import { listenTcp, type TcpListener, type TcpOptions } from './tcp.js';
import { ResponseRateLimiter, type RrlOptions } from './rrl.js';
import { listenUdpPath, type UdpListener, type UdpPathChoice } from './udp.js';
import { startUdpThreads, type UdpThreads } from './udp-threads.js';
import { ZoneStore, type ReloadReport } from './zone-store.js';
import type { ZoneSet } from '../model/zone-model.js';

export interface NameserverOptions {
  zonesPath: string;
  listen: string[];
  logger: Logger;
  tcp?: TcpOptions;
  /** UDP response rate limiting (#7); defaults in rrl.ts (on, loopback exempt). */
  rrl?: Partial<RrlOptions>;
  env?: PolicyEnv;
  observer?: HandlerObserver;
  /** UDP implementation (#9): auto (batched when built, else dgram), dgram, batched. */
  udpPath?: UdpPathChoice;
  /**
   * Runs after the zones are loaded and before any listener opens: the state store and prober
   * start here, so answering begins only once a first probe round finished (or its start-up limit
   * passed) and never says "all down" for lack of data (#3).
   */
  beforeListen?: (runtime: Runtime, zoneSet: ZoneSet) => Promise<void>;
  /** Called after every reload (SIGHUP or admin), e.g. so the prober follows the new zones. */
  onReload?: (report: ReloadReport) => void;
  /**
   * `serve --udp-threads N` (#8, udp-threads.ts): UDP is answered by N threads that wait in
   * recvmmsg, and this thread answers TCP only. Replaces udpPath.
   */
  udpThreads?: { threads: number; logLevel: string; querySample?: number; spinMicros?: number };
}

export interface Nameserver {
  readonly runtime: Runtime;
  readonly handler: Handler;
  readonly zoneStore: ZoneStore;
  readonly udp: readonly UdpListener[];
  readonly tcp: readonly TcpListener[];
  /** The UDP threads, with udpThreads. */
  readonly threads: UdpThreads | undefined;
  reload(): Promise<ReloadReport>;
  stop(): Promise<void>;
}

/** The handler every answerer builds (this process, a cluster worker, a UDP thread). */
export function answeringHandler(runtime: Runtime, log: Logger, env?: PolicyEnv, observer?: HandlerObserver): Handler {
  return new Handler(runtime, env, {
    // Logged once per transition (policy/all-down-watch.ts), never per query.
    onAllDown: (name, allDown, selection) =>
      allDown ? log.warn({ name: name.name, answer: selection.reason }, 'all sites of the name are down') : log.info({ name: name.name }, 'a site of the name is up again'),
    ...observer,
  });
}

export async function startNameserver(options: NameserverOptions): Promise<Nameserver> {
  const log = options.logger.child({ component: 'nameserver' });
  // With UDP threads the store keeps its zones' texts: the threads compile what it serves.
  const zoneStore = new ZoneStore(options.zonesPath, { keepTexts: options.udpThreads !== undefined });
  const report = await zoneStore.load();
  for (const p of report.problems) log.error({ code: p.code }, formatProblem(p));
  if (report.zoneSet.zones.size === 0) {
    await zoneStore.close();
    throw new Error(`no zone could be loaded from ${options.zonesPath}`);
  }
  log.info({ zones: [...report.zoneSet.zones.keys()], generation: report.zoneSet.generation }, 'zones loaded');

  // Build the prebuilt-answer table now, not on the first query (100k names: ~0.3 s); a
  // process without listeners (the cluster primary) answers nothing and needs none.
  if (options.listen.length > 0) prebuiltTable(report.zoneSet);
  const runtime = new Runtime(report.zoneSet);
  await options.beforeListen?.(runtime, report.zoneSet);
  const handler = answeringHandler(runtime, log, options.env, options.observer);
  const rrl = new ResponseRateLimiter(options.rrl);
  let removeMetricsSource = () => {};
  const udp: UdpListener[] = [];
  const tcp: TcpListener[] = [];
  let threads: UdpThreads | undefined;
  try {
    if (options.udpThreads !== undefined && options.listen.length > 0) {
      // Every thread binds each address itself (SO_REUSEPORT), so a port 0 is resolved first,
      // to one free for UDP and TCP alike, as for cluster workers; names become addresses.
      const listen: { host: string; port: number }[] = [];
      for (const spec of await resolveListenPorts(options.listen)) {
        const { host, port } = parseHostPort(spec);
        listen.push({ host: net.isIP(host) !== 0 ? host : (await dns.lookup(host)).address, port });
      }
      const zonesBefore = runtime.zones;
      threads = await startUdpThreads({ ...options.udpThreads, zonesPath: options.zonesPath, listen, logger: options.logger, rrl: options.rrl, currentState: () => runtime.state, zoneTexts: () => zoneStore.goodTexts() });
      const pool = threads;
      observeSwaps(runtime, 'state', (snapshot) => pool.publishState(snapshot));
      // Whichever path reloaded the zones here (nameserver.reload, ReloadController), the threads
      // load the same texts, one after the other (each compile blocks its thread).
      observeSwaps(runtime, 'zones', () => void pool.reload());
      if (runtime.zones !== zonesBefore) void pool.reload(); // a reload while they started
      // Snapshots swapped in while the threads were starting (they compile the zones: seconds
      // for large sets) reached no thread: send the current one now.
      pool.publishState(runtime.state);
      removeMetricsSource = addMetricsSource((timeoutMs) => pool.metrics(timeoutMs));
      udp.push(...threads.listeners);
      for (const { host, port } of listen) {
        tcp.push(await listenTcp(handler, host, port, options.tcp));
        log.info({ address: host, port, udpPath: 'threads', udpThreads: options.udpThreads.threads }, 'listening on UDP and TCP');
      }
    }
    for (const spec of threads === undefined ? options.listen : []) {
      const { host, port } = parseHostPort(spec);
      // Port 0 asks for a free port: TCP then takes the same number UDP got. That number can be
      // taken for TCP already (another process's ephemeral port), so with port 0 a few fresh
      // UDP ports are tried; an explicit port fails at once.
      let u: Awaited<ReturnType<typeof listenUdpPath>> | undefined;
      let t: Awaited<ReturnType<typeof listenTcp>> | undefined;
      for (let attempt = 1; t === undefined; attempt++) {
        u = await listenUdpPath(options.udpPath ?? 'auto', handler, host, port, { rrl });
        try {
          t = await listenTcp(handler, host, u.port, options.tcp);
        } catch (error) {
          await u.close();
          if (port !== 0 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 10) throw error;
        }
      }
      if (u === undefined) throw new Error('unreachable: no UDP listener');
      if (u.fallback !== undefined && udp.length === 0) log.info({ reason: u.fallback }, 'UDP path: dgram (fallback)');
      if (u.boundAddresses !== undefined) {
        log.warn({ address: host, port: u.port, boundAddresses: u.boundAddresses }, 'UDP on a wildcard address without the addon: one socket per local address; an address added later gets no UDP answers until a restart');
      }
      udp.push(u);
      tcp.push(t);
      // In a cluster the primary announces the listener once all workers are up.
      log.info({ address: host, port: u.port, udpPath: u.path }, cluster.isWorker ? 'worker listening on UDP and TCP' : 'listening on UDP and TCP');
    }
  } catch (error) {
    removeMetricsSource();
    await Promise.all([...udp.map((u) => u.close()), ...tcp.map((t) => t.close(0)), threads?.close(), zoneStore.close()]);
    throw error;
  }

  return {
    runtime,
    handler,
    zoneStore,
    udp,
    tcp,
    threads,
    async reload() {
      const r = await zoneStore.load();
      for (const p of r.problems) log.error({ code: p.code }, formatProblem(p));
      if (options.listen.length > 0) prebuiltTable(r.zoneSet);
      runtime.zones = r.zoneSet;
      log.info({ zones: [...r.zoneSet.zones.keys()], generation: r.zoneSet.generation, kept: r.keptFiles }, 'zones reloaded');
      options.onReload?.(r);
      return r;
    },
    async stop() {
      removeMetricsSource();
      await Promise.all([...tcp.map((t) => t.close()), ...udp.map((u) => u.close()), zoneStore.close()]);
    },
  };
}
