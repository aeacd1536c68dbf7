/** `sitedns serve`: answer the zones on UDP and TCP (composition in src/app/serve-app.ts, operations in src/app/ops.ts). */
import { prepareOps, type Ops, type OpsConfig } from '../app/ops.js';
import { DEFAULT_ADMIN_LISTEN, DEFAULT_STARTUP_LIMIT_MS, startServeApp, type ServeApp } from '../app/serve-app.js';
import { DEFAULT_KEY_DIR } from '../dnssec/key-file.js';
import { DEFAULT_STALE_AFTER_MS } from '../state/combine.js';
import { DEFAULT_STATE_FILE } from '../state/state-file.js';
import os from 'node:os';
import { z } from 'zod';
import { DEFAULT_SPIN_MICROS, MAX_SPIN_MICROS, udpThreadsUnavailable } from '../server/udp-threads.js';
import type { UdpPathChoice } from '../server/udp.js';
import { NoZonesError } from '../zones/reload.js';
import { CodedError } from '../util/coded-error.js';
import { createLogger, type Logger } from '../util/logger.js';
import { randomCookieSecret } from '../dns/cookies.js';
import type { EdnsAnswering } from '../dns/reply-options.js';
import { flagHelp, flagValue, readFlags, type FlagValues, type Flags } from './args.js';
import { redisConnection, redisConnectionFlags } from './redis-flags.js';
import { autoOrWholeNumber, cookieSecrets, nsidText, flagDuration, fraction, logLevel, on, optionalRedisUrl, optionalText, refused, text, texts, wholeNumber, listenAddresses } from './flag-values.js';

const WORKERS_REFUSED = 'is not accepted: UDP uses every core through --udp-threads (auto, the default: one thread per core; 0: the main thread)';

const udpPath = z.enum(['auto', 'dgram', 'batched'] as const satisfies readonly UdpPathChoice[], { error: 'is not auto, dgram or batched' });

export const serveFlags = {
  zones: { type: 'string', default: 'zones', help: 'zone file or directory', value: text },
  keys: { type: 'string', default: DEFAULT_KEY_DIR, help: 'DNSSEC key directory of signed zones (docs/dnssec.md); a signed zone without keys gets new ones here', value: text },
  listen: { type: 'string', multiple: true, default: ['127.0.0.1:5353'], help: 'address:port for UDP and TCP ([v6]:port for IPv6)', value: listenAddresses },
  http: { type: 'string', help: `admin listener host:port (metrics, health, explain, status, drain, load reports), "off" for none (default: ${DEFAULT_ADMIN_LISTEN})`, value: optionalText },
  'http-token': { type: 'string', help: 'bearer token for mutating admin routes (required off loopback)', value: optionalText },
  redis: { type: 'string', help: 'follow the shared state in Redis (redis://host:port, or --redis-sentinels); without it this process probes (embedded default)', env: ['SITEDNS_REDIS_URL'], value: optionalRedisUrl },
  ...redisConnectionFlags,
  'redis-prefix': { type: 'string', default: 'sitedns:', help: 'prefix of every Redis key (docs/state.md)', value: text },
  probe: { type: 'boolean', help: 'with Redis: also probe in this process (writes to Redis like `sitedns probe`)', value: on },
  'prober-id': { type: 'string', help: 'this prober\'s id in the state store (default: host-pid; "embedded" without --redis)', value: optionalText },
  'state-file': { type: 'string', default: DEFAULT_STATE_FILE, help: 'with Redis: last-known-state file, answered from when Redis is down at start ("off" disables)', value: text },
  'stale-after': { type: 'string', default: `${DEFAULT_STALE_AFTER_MS}ms`, help: 'a prober silent this long no longer votes', value: flagDuration },
  'startup-limit': { type: 'string', default: `${DEFAULT_STARTUP_LIMIT_MS}ms`, help: 'answer after the first probe round or this long, whichever is first', value: flagDuration },
  'demo-backends': { type: 'boolean', help: 'start a demo health endpoint for every probe target on 127.0.0.0/8 (npm start)', value: on },
  'tcp-idle-timeout': { type: 'string', default: '10s', help: 'close TCP connections idle this long (RFC 7766 §6.2.3)', value: flagDuration },
  'tcp-query-timeout': { type: 'string', default: '5s', help: 'a TCP query must arrive whole this long after its first byte (the first: after connecting)', value: flagDuration },
  'tcp-max-in-flight': { type: 'string', default: '64', help: 'answered TCP queries a client may leave unread before reading from it pauses', value: wholeNumber },
  'tcp-max-connections': { type: 'string', default: '2000', help: 'open TCP connections at most; when reached, the longest-idle one is closed to admit a new one (RFC 7766 §6.2.3)', value: wholeNumber },
  'tcp-max-per-client': { type: 'string', default: '64', help: 'open TCP connections per client address at most', value: wholeNumber },
  'tcp-max-per-network': { type: 'string', default: '256', help: 'open TCP connections per client network (IPv4 /24, IPv6 /56) at most', value: wholeNumber },
  'rrl-rate': { type: 'string', default: '100', help: 'UDP response rate limit: identical responses per second per client network (per UDP thread); 0 = off', value: wholeNumber },
  'rrl-window': { type: 'string', default: '15', help: 'seconds of excess a flooding network pays back before it is answered again', value: wholeNumber },
  'rrl-slip': { type: 'string', default: '2', help: 'send every Nth rate-limited response truncated (TC=1) instead of dropping it; 0 = drop all', value: wholeNumber },
  'rrl-ipv4-prefix': { type: 'string', default: '24', help: 'IPv4 client network size for rate limiting', value: wholeNumber },
  'rrl-ipv6-prefix': { type: 'string', default: '56', help: 'IPv6 client network size for rate limiting', value: wholeNumber },
  'rrl-exempt': { type: 'string', multiple: true, default: ['127.0.0.0/8', '::1/128'], help: 'client networks never rate limited', value: texts },
  nsid: { type: 'string', help: 'answer the NSID option (RFC 5001) and CH TXT id.server / hostname.bind with this text (at most 128 bytes); "hostname" for the host\'s name (default: off)', value: nsidText },
  'version-bind': { type: 'string', help: 'answer CH TXT version.bind with this text (default: REFUSED)', value: optionalText },
  'cookie-secret': { type: 'string', multiple: true, help: 'DNS cookie secret, 32 hex digits (RFC 9018); the first makes server cookies, every one is accepted (rotation: docs/security.md); nameservers sharing it accept each other\'s cookies (default: random per process)', value: cookieSecrets },
  'udp-threads': { type: 'string', default: 'auto', help: 'answer UDP on this many threads, each waiting in recvmmsg like gdnsd (needs the batched addon; TCP, probes and admin stay on the main thread); auto = one per core where the addon loads, else the main thread; 0 = the main thread\'s event loop', value: autoOrWholeNumber },
  'udp-path': { type: 'string', default: 'auto', help: 'with --udp-threads 0: UDP implementation, auto (batched addon when built, else dgram), dgram, batched', value: udpPath },
  // Refused with a pointer to --udp-threads, so that a unit file or an env file that still sets it fails loudly.
  workers: { type: 'string', help: 'not accepted: --udp-threads sets how UDP uses the cores', value: refused(WORKERS_REFUSED) },
  // Text here: its number is read only when --udp-threads applies (see runServe).
  'udp-spin': { type: 'string', help: `with --udp-threads: microseconds a thread that is behind (8+ queued datagrams per receive) polls for the next datagram before it sleeps (saves the wake-up under saturation; a thread that keeps up sleeps at once); 0 = never, at most ${MAX_SPIN_MICROS}; default ${DEFAULT_SPIN_MICROS}`, value: optionalText },
  'log-level': { type: 'string', default: 'info', help: 'trace, debug, info, warn, error', env: ['LOG_LEVEL'], value: logLevel },
  'query-log-sample': { type: 'string', default: '0', help: 'fraction of queries to log (0 = off, 0.01 = 1 in 100, 1 = all)', value: fraction },
  'watch-debounce': { type: 'string', default: '250ms', help: 'reload this long after the last zone file change; 0 = do not watch (SIGHUP still reloads)', value: flagDuration },
  'stop-timeout': { type: 'string', default: '5s', help: 'on SIGTERM, exit at the latest this long after the stop began', value: flagDuration },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export type ServeFlags = FlagValues<typeof serveFlags>;

/** Why `serve` cannot answer UDP the way its flags ask (EUDP_THREADS). */
export class UdpThreadsError extends CodedError<'EUDP_THREADS'> {
  constructor(message: string) {
    super('EUDP_THREADS', message);
  }
}

/**
 * How many UDP threads `serve` runs; 0 is the main thread's event loop. `auto` (the default) is
 * one per core where the batched addon loads (the fastest mode: docs/benchmarks.md), else the
 * main thread, with `fallback` saying why; a number given explicitly needs the addon and is
 * refused without it, as is --udp-path dgram beside it (the threads use the addon's sockets).
 */
export function chooseUdpThreads(requested: 'auto' | number, path: UdpPathChoice, cores: number, unavailable: string | null): { threads: number; fallback?: string } {
  if (requested === 0) return { threads: 0 };
  if (requested === 'auto') {
    if (path === 'dgram') return { threads: 0, fallback: '--udp-path dgram asks for node:dgram, which answers on the main thread' };
    return unavailable === null ? { threads: cores } : { threads: 0, fallback: unavailable };
  }
  if (path === 'dgram') throw new UdpThreadsError("--udp-threads uses the batched addon's sockets: --udp-path dgram does not apply (--udp-threads 0 answers on the main thread)");
  if (unavailable !== null) throw new UdpThreadsError(`${unavailable} (--udp-threads 0 answers on the main thread without it)`);
  return { threads: requested };
}

export const serveHelp = `Usage: sitedns serve [--zones <dir>] [--listen <host:port>]... [--redis <url> | --redis-sentinels <host:port,...>]

Serves the zones authoritatively on UDP and TCP. Pool, Group and Site Names are answered from
memory with the best site right now, at the zone's dynamic_ttl (default 0).
Without Redis the sites are probed in this process (the embedded default); with --redis or
--redis-sentinels the state written by \`sitedns probe\` is followed. The admin listener (--http)
serves status, drains and pushed load reports (docs/state.md), and /metrics, /healthz, /readyz,
/v1/explain and POST /v1/reload (docs/metrics.md).
Zone files are reloaded on SIGHUP and when they change (a broken file keeps its last good zone
and is reported as file:line: path: message); probes follow the new zones. SIGTERM/SIGINT stop
gracefully: no new connections, queries in flight are answered, Redis is closed, exit 0.

${flagHelp(serveFlags)}`;

function off(value: string | undefined): boolean {
  return value !== undefined && /^(|off|none|false|0)$/i.test(value);
}

function tcpOptions(flags: ServeFlags) {
  return {
    idleTimeoutMs: flags['tcp-idle-timeout'],
    firstQueryTimeoutMs: flags['tcp-query-timeout'],
    maxQueriesInFlight: flags['tcp-max-in-flight'],
    maxConnections: flags['tcp-max-connections'],
    maxConnectionsPerClient: flags['tcp-max-per-client'],
    maxConnectionsPerNetwork: flags['tcp-max-per-network'],
  };
}

/** UDP response rate limiting (src/server/rrl.ts). */
function rrlOptions(flags: ServeFlags) {
  return {
    ratePerSecond: flags['rrl-rate'],
    windowSeconds: flags['rrl-window'],
    slip: flags['rrl-slip'],
    ipv4PrefixLength: flags['rrl-ipv4-prefix'],
    ipv6PrefixLength: flags['rrl-ipv6-prefix'],
    exempt: flags['rrl-exempt'],
  };
}

/** NSID, CH TXT identity and DNS cookies (server/handler.ts); a process given no secret makes one. */
function ednsAnswering(flags: ServeFlags, logger: Logger): EdnsAnswering {
  const nsid = flags.nsid === 'hostname' ? os.hostname() : (flags.nsid ?? null);
  let secrets = flags['cookie-secret'];
  if (secrets === undefined || secrets.length === 0) {
    secrets = [randomCookieSecret()];
    logger.info('DNS cookie secret: random for this process (its server cookies are valid only here and until it stops; --cookie-secret shares one among nameservers)');
  }
  return { identity: { nsid, versionBind: flags['version-bind'] ?? null }, cookieSecrets: secrets };
}

function opsConfig(flags: ServeFlags): OpsConfig {
  return { querySample: flags['query-log-sample'], watchDebounceMs: flags['watch-debounce'], stopTimeoutMs: flags['stop-timeout'] };
}

/**
 * A start that failed: one fatal log line, then the error for the command line, which prints it
 * on stderr as one line and exits 1. The message names the flag and its value: the errors of
 * listening say which --listen or --http address, a zone set that cannot load says --zones. The
 * stack is logged only for what was not foreseen; a coded or system error's message says it all.
 */
function failedStart(logger: Logger, error: unknown, flags: ServeFlags): never {
  const e = error as Error & { code?: unknown };
  const message = e instanceof NoZonesError ? `--zones ${flags.zones}: ${e.message}` : e.message;
  if (typeof e.code === 'string') logger.fatal({ code: e.code }, message);
  else logger.fatal({ err: e }, message);
  throw new StartError(message);
}

/** `serve` could not start (ESTART); the message is the one line the command line prints. */
export class StartError extends CodedError<'ESTART'> {
  constructor(message: string) {
    super('ESTART', message);
  }
}

export async function runServe(argv: string[]): Promise<number> {
  const read = readFlags(argv, serveFlags);
  if (read.help) {
    console.log(serveHelp);
    return 0;
  }
  const { flags, fromArgv } = read;
  const redis = redisConnection(flags);
  const logger = createLogger(flags['log-level']);
  let udpThreads: number;
  let spinMicros = DEFAULT_SPIN_MICROS;
  try {
    const choice = chooseUdpThreads(flags['udp-threads'], flags['udp-path'], os.availableParallelism(), udpThreadsUnavailable());
    udpThreads = choice.threads;
    if (choice.fallback !== undefined) logger.warn({ reason: choice.fallback }, `UDP answered on the main thread's event loop, not on threads: ${choice.fallback}`);
    const spin = flags['udp-spin'];
    if (spin !== undefined && udpThreads === 0) {
      // Given on the command line without threads, it is a mistake; from SITEDNS_UDP_SPIN (an env
      // file shared by nameservers of both kinds, say) it is only irrelevant here, whatever it says.
      if (fromArgv.has('udp-spin')) throw new Error('--udp-spin applies to the threads of --udp-threads only');
      logger.warn('SITEDNS_UDP_SPIN ignored: it applies to --udp-threads only');
    } else if (spin !== undefined) {
      spinMicros = flagValue('udp-spin', spin, wholeNumber);
      if (spinMicros > MAX_SPIN_MICROS) throw new Error(`--udp-spin: at most ${MAX_SPIN_MICROS} (microseconds)`);
    }
  } catch (error) {
    failedStart(logger, error, flags);
  }
  let app: ServeApp | undefined;
  let ops: Ops;
  try {
    // Serving starts only after the first probe round (or the start-up limit), so once attached
    // the first state is known and /readyz may say ready.
    ops = prepareOps({ ...opsConfig(flags), logger, forceExit: true, stateKnown: () => true });
    const { http, 'state-file': stateFile } = flags;
    app = await startServeApp({
      zonesPath: flags.zones,
      keysDir: flags.keys,
      listen: flags.listen,
      logger,
      tcp: tcpOptions(flags),
      rrl: rrlOptions(flags),
      udpPath: flags['udp-path'],
      edns: ednsAnswering(flags, logger),
      udpThreads: udpThreads > 0 ? { threads: udpThreads, logLevel: flags['log-level'], querySample: flags['query-log-sample'], spinMicros } : undefined,
      observer: ops.observer,
      registerRoutes: (router, { runtime }) => ops.registerRoutes(router, runtime),
      http: off(http) ? null : (http ?? DEFAULT_ADMIN_LISTEN),
      httpExplicit: http !== undefined,
      httpToken: flags['http-token'] || undefined,
      redis,
      redisPrefix: flags['redis-prefix'],
      probe: flags.probe,
      proberId: flags['prober-id'],
      stateFile: off(stateFile) ? null : stateFile,
      staleAfterMs: flags['stale-after'],
      startupLimitMs: flags['startup-limit'],
      demoBackends: flags['demo-backends'],
    });
    // SIGHUP, file changes and POST /v1/reload go through app.reloads from here on.
    await ops.attach({ runtime: app.runtime, reloads: app.reloads, handler: app.ns.handler, threads: app.ns.threads });
  } catch (error) {
    await app?.stop().catch(() => {});
    failedStart(logger, error, flags);
  }
  const running = app;
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
