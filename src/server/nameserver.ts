/**
 * The listeners of `serve`: UDP and TCP on every --listen address (or, with --udp-threads, TCP
 * here and UDP in the threads), answering from a Runtime whose zones and state are published by
 * others (zones/reload.ts, state/follower.ts); stop.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { addMetricsSource } from '../admin/answerer-metrics.js';
import type { PolicyEnv } from '../policy/types.js';
import type { Runtime } from '../state/runtime.js';
import { formatHostPort, listenError, parseHostPort, resolveListenPorts } from '../util/listen.js';
import type { Logger } from '../util/logger.js';
import { ServerCookies } from '../dns/cookies.js';
import type { EdnsAnswering } from '../dns/reply-options.js';
import { Handler } from './handler.js';
import type { HandlerObserver } from './query-event.js';
import type { ZoneTexts } from '../zones/reload.js';
import { listenTcp, type TcpListener, type TcpOptions } from './tcp.js';
import { ResponseRateLimiter, type RrlOptions } from './rrl.js';
import { listenUdpPath, type UdpListener, type UdpPathChoice } from './udp.js';
import { startUdpThreads, type UdpThreads } from './udp-threads.js';

export interface NameserverOptions {
  /** What to answer from: zones published already (by the reload path), and the state. */
  runtime: Runtime;
  listen: string[];
  logger: Logger;
  tcp?: TcpOptions;
  /** UDP response rate limiting; defaults in rrl.ts (on, loopback exempt). */
  rrl?: Partial<RrlOptions>;
  env?: PolicyEnv;
  observer?: HandlerObserver;
  /** UDP implementation: auto (batched when built, else dgram), dgram, batched. */
  udpPath?: UdpPathChoice;
  /** NSID, server identity and DNS cookies, the same in every answerer (EdnsAnswering). */
  edns?: EdnsAnswering;
  /**
   * `serve --udp-threads N` (udp-threads.ts): UDP is answered by N threads that wait in
   * recvmmsg, and this thread answers TCP only. Replaces udpPath. The threads compile `zoneTexts`
   * (the files this process validated) at start and at every zone set published to the runtime.
   */
  udpThreads?: { threads: number; logLevel: string; querySample?: number; spinMicros?: number; zonesPath: string; zoneTexts: () => ZoneTexts };
}

export interface Nameserver {
  readonly runtime: Runtime;
  readonly handler: Handler;
  readonly udp: readonly UdpListener[];
  readonly tcp: readonly TcpListener[];
  /** The UDP threads, with udpThreads. */
  readonly threads: UdpThreads | undefined;
  stop(): Promise<void>;
}

/** The handler every answerer builds (the main thread, a UDP thread). */
export function answeringHandler(runtime: Runtime, log: Logger, env?: PolicyEnv, observer?: HandlerObserver, edns?: EdnsAnswering): Handler {
  const cookies = edns === undefined || edns.cookieSecrets.length === 0 ? null : new ServerCookies(edns.cookieSecrets, env?.now);
  return new Handler(runtime, env, {
    // Logged once per transition (policy/all-down-watch.ts), never per query.
    onAllDown: (name, allDown, selection) =>
      allDown ? log.warn({ name: name.name, answer: selection.reason }, 'all sites of the name are down') : log.info({ name: name.name }, 'a site of the name is up again'),
    ...observer,
  }, { identity: edns?.identity, cookies });
}

export async function startNameserver(options: NameserverOptions): Promise<Nameserver> {
  const log = options.logger.child({ component: 'nameserver' });
  const runtime = options.runtime;
  const handler = answeringHandler(runtime, log, options.env, options.observer, options.edns);
  const rrl = new ResponseRateLimiter(options.rrl);
  let removeMetricsSource = () => {};
  const unsubscribe: (() => void)[] = [];
  const udp: UdpListener[] = [];
  const tcp: TcpListener[] = [];
  let threads: UdpThreads | undefined;
  try {
    if (options.udpThreads !== undefined && options.listen.length > 0) {
      // Every thread binds each address itself (SO_REUSEPORT), so a port 0 is resolved first,
      // to one free for UDP and TCP alike; names become addresses.
      const listen: { host: string; port: number }[] = [];
      for (const spec of await resolveListenPorts(options.listen)) {
        const { host, port } = parseHostPort(spec);
        listen.push({ host: net.isIP(host) !== 0 ? host : (await dns.lookup(host).catch((error) => Promise.reject(listenError(spec, 'name', error)))).address, port });
      }
      const zonesBefore = runtime.zones;
      threads = await startUdpThreads({ ...options.udpThreads, listen, logger: options.logger, rrl: options.rrl, edns: options.edns, currentState: () => runtime.state });
      const pool = threads;
      unsubscribe.push(runtime.subscribeState((snapshot) => pool.publishState(snapshot)));
      // Every zone set published here, whatever triggered its load, rolls through the threads,
      // one after the other (each compile blocks its thread).
      unsubscribe.push(runtime.subscribeZones(() => void pool.reload()));
      if (runtime.zones !== zonesBefore) void pool.reload(); // published while they started
      // Snapshots published while the threads were starting (they compile the zones: seconds
      // for large sets) reached no thread: send the current one now.
      pool.publishState(runtime.state);
      removeMetricsSource = addMetricsSource((timeoutMs) => pool.metrics(timeoutMs));
      udp.push(...threads.listeners);
      for (const { host, port } of listen) {
        tcp.push(await listenTcp(handler, host, port, options.tcp).catch((error) => Promise.reject(listenError(formatHostPort(host, port), 'TCP', error))));
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
        try {
          u = await listenUdpPath(options.udpPath ?? 'auto', handler, host, port, { rrl });
        } catch (error) {
          throw listenError(spec, 'UDP', error);
        }
        try {
          t = await listenTcp(handler, host, u.port, options.tcp);
        } catch (error) {
          await u.close();
          if (port !== 0 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 10) throw listenError(spec, 'TCP', error);
        }
      }
      if (u === undefined) throw new Error('unreachable: no UDP listener');
      if (u.fallback !== undefined && udp.length === 0) log.info({ reason: u.fallback }, 'UDP path: dgram (fallback)');
      if (u.boundAddresses !== undefined) {
        log.warn({ address: host, port: u.port, boundAddresses: u.boundAddresses }, 'UDP on a wildcard address without the addon: one socket per local address; an address added later gets no UDP answers until a restart');
      }
      udp.push(u);
      tcp.push(t);
      log.info({ address: host, port: u.port, udpPath: u.path }, 'listening on UDP and TCP');
    }
  } catch (error) {
    removeMetricsSource();
    for (const u of unsubscribe) u();
    await Promise.all([...udp.map((u) => u.close()), ...tcp.map((t) => t.close(0)), threads?.close()]);
    throw error;
  }

  return {
    runtime,
    handler,
    udp,
    tcp,
    threads,
    async stop() {
      removeMetricsSource();
      for (const u of unsubscribe) u();
      await Promise.all([...tcp.map((t) => t.close()), ...udp.map((u) => u.close())]);
    },
  };
}
