/** `sitedns serve`: answer the zones on UDP and TCP. */
import { parseDuration } from '../config/schema.js';
import cluster from 'node:cluster';
import { startNameserver } from '../server/nameserver.js';
import { defaultWorkers, resolveListenPorts, serveAsWorker, startPrimary } from '../server/workers.js';
import { parseHostPort } from '../util/listen.js';
import type { UdpPathChoice } from '../server/udp.js';
import { createLogger } from '../util/logger.js';
import { flagHelp, parseFlags, type Flags } from './args.js';

export const serveFlags: Flags = {
  zones: { type: 'string', default: 'zones', help: 'zone file or directory' },
  listen: { type: 'string', multiple: true, default: ['127.0.0.1:5353'], help: 'address:port for UDP and TCP ([v6]:port for IPv6)' },
  'tcp-idle-timeout': { type: 'string', default: '10s', help: 'close TCP connections idle this long (RFC 7766 §6.2.3)' },
  'tcp-max-connections': { type: 'string', default: '2000', help: 'open TCP connections at most' },
  'tcp-max-per-client': { type: 'string', default: '64', help: 'open TCP connections per client address at most' },
  workers: { type: 'string', default: 'auto', help: 'processes answering queries (node:cluster); auto = every core, 1 = no cluster' },
  'udp-path': { type: 'string', default: 'auto', help: 'UDP implementation: auto (batched addon when built, else dgram), dgram, batched' },
  'log-level': { type: 'string', default: 'info', help: 'trace, debug, info, warn, error', env: ['LOG_LEVEL'] },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const serveHelp = `Usage: sitedns serve [--zones <dir>] [--listen <host:port>]...

Serves the zones authoritatively on UDP and TCP. Pool, Group and Site Names are answered from
memory with the best site right now, at the zone's dynamic_ttl (default 0).
SIGHUP reloads the zones (a broken file keeps its last good zone); SIGTERM/SIGINT stop gracefully.

${flagHelp(serveFlags)}`;

export async function runServe(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, serveFlags);
  if (values.help) {
    console.log(serveHelp);
    return 0;
  }
  const logger = createLogger(values['log-level'] as string);
  let workers: number;
  try {
    workers = values.workers === 'auto' ? await defaultWorkers() : intFlag(values.workers as string, 'workers');
    if (workers < 1) throw new Error('--workers: at least 1');
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    return 1;
  }
  if (workers > 1 && cluster.isPrimary) return runPrimary(values, workers, logger);
  let ns;
  try {
    const idle = durationFlag(values['tcp-idle-timeout'] as string, 'tcp-idle-timeout');
    ns = await startNameserver({
      zonesPath: values.zones as string,
      listen: (cluster.isWorker && process.env.SITEDNS_RESOLVED_LISTEN ? process.env.SITEDNS_RESOLVED_LISTEN.split(',') : values.listen) as string[],
      logger,
      udpPath: udpPathFlag(values['udp-path'] as string),
      tcp: {
        idleTimeoutMs: idle,
        firstQueryTimeoutMs: Math.min(idle, 5000),
        maxConnections: intFlag(values['tcp-max-connections'] as string, 'tcp-max-connections'),
        maxConnectionsPerClient: intFlag(values['tcp-max-per-client'] as string, 'tcp-max-per-client'),
      },
    });
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    return 1;
  }
  if (cluster.isWorker) {
    await serveAsWorker(ns, logger);
    return 0;
  }
  process.on('SIGHUP', () => ns.reload());
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      ns.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

/** The cluster primary: forks the workers, forwards signals, answers no queries itself. */
async function runPrimary(values: Record<string, unknown>, workers: number, logger: ReturnType<typeof createLogger>): Promise<number> {
  let listen: string[];
  try {
    listen = await resolveListenPorts(values.listen as string[]);
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    return 1;
  }
  const primary = startPrimary({
    workers,
    logger,
    env: { SITEDNS_RESOLVED_LISTEN: listen.join(',') },
    onReady: () => {
      for (const spec of listen) {
        const { host, port } = parseHostPort(spec);
        logger.info({ address: host, port, workers }, 'listening on UDP and TCP');
      }
    },
  });
  process.on('SIGHUP', () => void primary.reload());
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      primary.stop().then(() => resolve(0), () => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return Promise.race([stopped, primary.failed]);
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
