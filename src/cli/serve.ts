/** `sitedns serve`: answer the zones on UDP and TCP (composition in src/app/serve-app.ts, operations in src/app/ops.ts). */
import { opsConfigFromFlags, opsFlags, prepareOps, workerObserver, type Ops } from '../app/ops.js';
import { DEFAULT_ADMIN_LISTEN, DEFAULT_STARTUP_LIMIT_MS, startServeApp, type ServeApp } from '../app/serve-app.js';
import { parseDuration } from '../config/schema.js';
import { DEFAULT_STALE_AFTER_MS } from '../state/combine.js';
import { DEFAULT_STATE_FILE } from '../state/state-file.js';
import cluster from 'node:cluster';
import { observeSwaps } from '../state/runtime.js';
import { startNameserver, type Nameserver } from '../server/nameserver.js';
import { DEFAULT_SPIN_MICROS, MAX_SPIN_MICROS, udpThreadsUnavailable } from '../server/udp-threads.js';
import type { UdpPathChoice } from '../server/udp.js';
import { WorkerLink, defaultWorkers, startPrimary, type Primary } from '../server/workers.js';
import { parseHostPort, resolveListenPorts } from '../util/listen.js';
import { createLogger, type Logger } from '../util/logger.js';
import { flagHelp, parseFlags, type Flags } from './args.js';

export const serveFlags: Flags = {
  zones: { type: 'string', default: 'zones', help: 'zone file or directory' },
  listen: { type: 'string', multiple: true, default: ['127.0.0.1:5353'], help: 'address:port for UDP and TCP ([v6]:port for IPv6)' },
  http: { type: 'string', help: `admin listener host:port (metrics, health, explain, status, drain, load reports), "off" for none (default: ${DEFAULT_ADMIN_LISTEN})` },
  'http-token': { type: 'string', help: 'bearer token for mutating admin routes (required off loopback)' },
  redis: { type: 'string', help: 'follow the shared state in Redis (redis://host:port); without it this process probes (embedded default)', env: ['SITEDNS_REDIS_URL'] },
  'redis-prefix': { type: 'string', default: 'sitedns:', help: 'prefix of every Redis key (docs/state.md)' },
  probe: { type: 'boolean', help: 'with --redis: also probe in this process (writes to Redis like `sitedns probe`)' },
  'prober-id': { type: 'string', help: 'this prober\'s id in the state store (default: host-pid; "embedded" without --redis)' },
  'state-file': { type: 'string', default: DEFAULT_STATE_FILE, help: 'with --redis: last-known-state file, answered from when Redis is down at start ("off" disables)' },
  'stale-after': { type: 'string', default: `${DEFAULT_STALE_AFTER_MS}ms`, help: 'a prober silent this long no longer votes' },
  'startup-limit': { type: 'string', default: `${DEFAULT_STARTUP_LIMIT_MS}ms`, help: 'answer after the first probe round or this long, whichever is first' },
  'demo-backends': { type: 'boolean', help: 'start a demo health endpoint for every probe target on 127.0.0.0/8 (npm start)' },
  'tcp-idle-timeout': { type: 'string', default: '10s', help: 'close TCP connections idle this long (RFC 7766 §6.2.3)' },
  'tcp-query-timeout': { type: 'string', default: '5s', help: 'a TCP query must arrive whole this long after its first byte (the first: after connecting)' },
  'tcp-max-in-flight': { type: 'string', default: '64', help: 'answered TCP queries a client may leave unread before reading from it pauses' },
  'tcp-max-connections': { type: 'string', default: '2000', help: 'open TCP connections at most' },
  'tcp-max-per-client': { type: 'string', default: '64', help: 'open TCP connections per client address at most' },
  'rrl-rate': { type: 'string', default: '100', help: 'UDP response rate limit: identical responses per second per client network (per worker); 0 = off' },
  'rrl-window': { type: 'string', default: '15', help: 'seconds of excess a flooding network pays back before it is answered again' },
  'rrl-slip': { type: 'string', default: '2', help: 'send every Nth rate-limited response truncated (TC=1) instead of dropping it; 0 = drop all' },
  'rrl-ipv4-prefix': { type: 'string', default: '24', help: 'IPv4 client network size for rate limiting' },
  'rrl-ipv6-prefix': { type: 'string', default: '56', help: 'IPv6 client network size for rate limiting' },
  'rrl-exempt': { type: 'string', multiple: true, default: ['127.0.0.0/8', '::1/128'], help: 'client networks never rate limited' },
  workers: { type: 'string', default: 'auto', help: 'processes answering queries (node:cluster; the primary probes and serves the admin routes); auto = every core, 1 = no cluster' },
  'udp-path': { type: 'string', default: 'auto', help: 'UDP implementation: auto (batched addon when built, else dgram), dgram, batched' },
  'udp-threads': { type: 'string', default: '0', help: 'answer UDP on this many threads of ONE process, each waiting in recvmmsg like gdnsd (needs the batched addon; TCP, probes and admin stay on the main thread); auto = every core, 0 = off (use --workers)' },
  'udp-spin': { type: 'string', help: `with --udp-threads: microseconds a thread that is behind (8+ queued datagrams per receive) polls for the next datagram before it sleeps (saves the wake-up under saturation; a thread that keeps up sleeps at once); 0 = never, at most ${MAX_SPIN_MICROS}; default ${DEFAULT_SPIN_MICROS}` },
  'log-level': { type: 'string', default: 'info', help: 'trace, debug, info, warn, error', env: ['LOG_LEVEL'] },
  ...opsFlags,
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const serveHelp = `Usage: sitedns serve [--zones <dir>] [--listen <host:port>]... [--redis <url>]

Serves the zones authoritatively on UDP and TCP. Pool, Group and Site Names are answered from
memory with the best site right now, at the zone's dynamic_ttl (default 0).
Without --redis the sites are probed in this process (the embedded default); with --redis the
state written by \`sitedns probe\` is followed. The admin listener (--http) serves status, drains
and pushed load reports (docs/state.md), and /metrics, /healthz, /readyz, /v1/explain and
POST /v1/reload (docs/metrics.md).
Zone files are reloaded on SIGHUP and when they change (a broken file keeps its last good zone
and is reported as file:line: path: message); probes follow the new zones. SIGTERM/SIGINT stop
gracefully: no new connections, queries in flight are answered, Redis is closed, exit 0.

${flagHelp(serveFlags)}`;

function off(value: string | undefined): boolean {
  return value !== undefined && /^(|off|none|false|0)$/i.test(value);
}

type Values = Record<string, string | boolean | string[] | undefined>;

function tcpOptions(values: Values) {
  const idle = durationFlag(values['tcp-idle-timeout'] as string, 'tcp-idle-timeout');
  return {
    idleTimeoutMs: idle,
    firstQueryTimeoutMs: durationFlag(values['tcp-query-timeout'] as string, 'tcp-query-timeout'),
    maxQueriesInFlight: intFlag(values['tcp-max-in-flight'] as string, 'tcp-max-in-flight'),
    maxConnections: intFlag(values['tcp-max-connections'] as string, 'tcp-max-connections'),
    maxConnectionsPerClient: intFlag(values['tcp-max-per-client'] as string, 'tcp-max-per-client'),
  };
}

/** UDP response rate limiting (#7, src/server/rrl.ts). */
function rrlOptions(values: Values) {
  return {
    ratePerSecond: intFlag(values['rrl-rate'] as string, 'rrl-rate'),
    windowSeconds: intFlag(values['rrl-window'] as string, 'rrl-window'),
    slip: intFlag(values['rrl-slip'] as string, 'rrl-slip'),
    ipv4PrefixLength: intFlag(values['rrl-ipv4-prefix'] as string, 'rrl-ipv4-prefix'),
    ipv6PrefixLength: intFlag(values['rrl-ipv6-prefix'] as string, 'rrl-ipv6-prefix'),
    exempt: values['rrl-exempt'] as string[],
  };
}

export async function runServe(argv: string[]): Promise<number> {
  const { values, fromArgv } = parseFlags(argv, serveFlags);
  if (values.help) {
    console.log(serveHelp);
    return 0;
  }
  const logger = createLogger(values['log-level'] as string);
  let workers: number;
  let udpThreads = 0;
  let spinMicros = DEFAULT_SPIN_MICROS;
  try {
    workers = values.workers === 'auto' ? await defaultWorkers() : intFlag(values.workers as string, 'workers');
    if (workers < 1) throw new Error('--workers: at least 1');
    udpPathFlag(values['udp-path'] as string);
    udpThreads = values['udp-threads'] === 'auto' ? await defaultWorkers() : intFlag(values['udp-threads'] as string, 'udp-threads');
    if (udpThreads > 0) {
      // Threads of one process or processes of node:cluster: one concurrency model at a time.
      if (values.workers !== 'auto' && workers > 1) throw new Error('--udp-threads answers from one process: leave --workers (and SITEDNS_WORKERS) out, or set it to 1');
      if (values['udp-path'] === 'dgram') throw new Error('--udp-threads uses the batched addon\'s sockets: --udp-path dgram does not apply');
      const why = udpThreadsUnavailable();
      if (why !== null) throw new Error(why);
      workers = 1;
    }
    if (values['udp-spin'] !== undefined && udpThreads === 0) {
      // Given on the command line without threads, it is a mistake; from SITEDNS_UDP_SPIN (an env
      // file shared by nameservers of both kinds, say) it is only irrelevant here, whatever it says.
      if (fromArgv.has('udp-spin')) throw new Error('--udp-spin applies to the threads of --udp-threads only');
      logger.warn('SITEDNS_UDP_SPIN ignored: it applies to --udp-threads only');
    } else if (values['udp-spin'] !== undefined) {
      spinMicros = intFlag(values['udp-spin'] as string, 'udp-spin');
      if (spinMicros > MAX_SPIN_MICROS) throw new Error(`--udp-spin: at most ${MAX_SPIN_MICROS} (microseconds)`);
    }
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    return 1;
  }
  // `serve --workers N` (#8, src/server/workers.ts): the primary keeps the state side (store,
  // prober, admin) and feeds N workers that answer DNS; a worker runs the nameserver only.
  if (cluster.isWorker) return runWorker(values, logger);
  const primaryMode = workers > 1;
  let listen = values.listen as string[];
  let app: ServeApp | undefined;
  let ops: Ops;
  try {
    // Serving starts only after the first probe round (or the start-up limit), so once attached
    // the first state is known and /readyz may say ready.
    ops = prepareOps({ ...opsConfigFromFlags(values), logger, forceExit: true, stateKnown: () => true, clusterPrimary: primaryMode });
    if (primaryMode) listen = await resolveListenPorts(listen);
    const http = values.http as string | undefined;
    const stateFile = values['state-file'] as string;
    app = await startServeApp({
      zonesPath: values.zones as string,
      // The cluster primary opens no DNS listener: its workers do.
      listen: primaryMode ? [] : listen,
      logger,
      tcp: tcpOptions(values),
      rrl: rrlOptions(values),
      udpPath: udpPathFlag(values['udp-path'] as string),
      udpThreads: udpThreads > 0 ? { threads: udpThreads, logLevel: values['log-level'] as string, querySample: opsConfigFromFlags(values).querySample, spinMicros } : undefined,
      observer: ops.observer,
      registerRoutes: (router, { runtime }) => ops.registerRoutes(router, runtime),
      http: off(http) ? null : (http ?? DEFAULT_ADMIN_LISTEN),
      httpExplicit: http !== undefined,
      httpToken: (values['http-token'] as string | undefined) || undefined,
      redis: (values.redis as string | undefined) || undefined,
      redisPrefix: values['redis-prefix'] as string,
      probe: values.probe === true,
      proberId: values['prober-id'] as string | undefined,
      stateFile: off(stateFile) ? null : stateFile,
      staleAfterMs: durationFlag(values['stale-after'] as string, 'stale-after'),
      startupLimitMs: durationFlag(values['startup-limit'] as string, 'startup-limit'),
      demoBackends: values['demo-backends'] === true,
    });
    const started = app;
    ops.onReload((zones) => started.prober?.setZones(zones)); // probes follow the new config (#3)
    await ops.attach(app.ns); // SIGHUP and file watching reload from here on
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    await app?.stop().catch(() => {});
    return 1;
  }
  const running = app;
  if (primaryMode) return runPrimary(running, ops, workers, listen, logger);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      ops.stop(() => running.stop()).then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

/** The cluster primary: forks the workers, relays every state snapshot and reload to them. */
async function runPrimary(app: ServeApp, ops: Ops, workers: number, listen: string[], logger: Logger): Promise<number> {
  const runtime = app.ns.runtime;
  let primary: Primary | undefined;
  // The follower swaps `runtime.state` by one assignment; here that assignment also goes to
  // every worker (IPC 'state' message).
  observeSwaps(runtime, 'state', (snapshot) => primary?.publishState(snapshot));
  primary = startPrimary({
    workers,
    logger,
    env: { SITEDNS_RESOLVED_LISTEN: listen.join(',') },
    currentState: () => runtime.state,
    onReady: () => {
      for (const spec of listen) {
        const { host, port } = parseHostPort(spec);
        logger.info({ address: host, port, workers }, 'listening on UDP and TCP');
      }
    },
  });
  const p = primary;
  // SIGHUP (and the admin reload route, through onReload) reload the primary's zones for the
  // prober, then every worker in turn.
  app.onReloaded(() => void p.reload());
  ops.onReload(() => void p.reload()); // ops: SIGHUP, zone file changes, POST /v1/reload

  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      ops
        .stop(() => p.stop().then(() => app.stop()))
        .then(() => resolve(0), () => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  const code = await Promise.race([stopped, p.failed]);
  if (code !== 0) await app.stop().catch(() => undefined);
  return code;
}

/** A cluster worker: the nameserver only, its state and reloads from the primary. */
async function runWorker(values: Values, logger: Logger): Promise<number> {
  const link = new WorkerLink(logger);
  let ns: Nameserver;
  try {
    const initial = await link.firstState();
    ns = await startNameserver({
      zonesPath: values.zones as string,
      listen: (process.env.SITEDNS_RESOLVED_LISTEN ?? '').split(',').filter(Boolean),
      logger,
      tcp: tcpOptions(values),
      rrl: rrlOptions(values),
      udpPath: udpPathFlag(values['udp-path'] as string),
      observer: workerObserver(values, logger),
      beforeListen: async (runtime) => {
        runtime.state = initial;
      },
    });
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    // Exit now: the IPC channel keeps this process alive, so a worker that cannot start (port
    // taken, say) would neither serve nor exit, and the primary would wait for it forever instead
    // of failing the start (AnswererPool: one of the first N that ends before it listens).
    // Disconnecting instead would exit with code 0 (node:cluster's worker exits so on disconnect).
    // pino writes synchronously: the fatal line is out.
    process.exit(1);
  }
  await link.serve(ns);
  // Close the IPC channel so the process can exit.
  if (process.connected) process.disconnect();
  return 0;
}

export function udpPathFlag(text: string): UdpPathChoice {
  if (text === 'auto' || text === 'dgram' || text === 'batched') return text;
  throw new Error(`--udp-path: "${text}" is not auto, dgram or batched`);
}

export function durationFlag(text: string, flag: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : parseDuration(text);
  if (ms === undefined) throw new Error(`--${flag}: "${text}" is not a duration (e.g. 500ms, 10s)`);
  return ms;
}

export function intFlag(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`--${flag}: "${text}" is not a whole number`);
  return Number(text);
}
