/** `sitedns serve`: answer the zones on UDP and TCP. */
import { parseDuration } from '../config/schema.js';
import { startNameserver } from '../server/nameserver.js';
import { createLogger } from '../util/logger.js';
import { flagHelp, parseFlags, type Flags } from './args.js';

export const serveFlags: Flags = {
  zones: { type: 'string', default: 'zones', help: 'zone file or directory' },
  listen: { type: 'string', multiple: true, default: ['127.0.0.1:5353'], help: 'address:port for UDP and TCP ([v6]:port for IPv6)' },
  'tcp-idle-timeout': { type: 'string', default: '10s', help: 'close TCP connections idle this long (RFC 7766 §6.2.3)' },
  'tcp-query-timeout': { type: 'string', default: '5s', help: 'a TCP query must arrive whole this long after its first byte (the first: after connecting)' },
  'tcp-max-in-flight': { type: 'string', default: '64', help: 'answered TCP queries a client may leave unread before reading from it pauses' },
  'tcp-max-connections': { type: 'string', default: '2000', help: 'open TCP connections at most' },
  'tcp-max-per-client': { type: 'string', default: '64', help: 'open TCP connections per client address at most' },
  'rrl-rate': { type: 'string', default: '100', help: 'UDP response rate limit: identical responses per second per client network; 0 = off' },
  'rrl-window': { type: 'string', default: '15', help: 'seconds of excess a flooding network pays back before it is answered again' },
  'rrl-slip': { type: 'string', default: '2', help: 'send every Nth rate-limited response truncated (TC=1) instead of dropping it; 0 = drop all' },
  'rrl-ipv4-prefix': { type: 'string', default: '24', help: 'IPv4 client network size for rate limiting' },
  'rrl-ipv6-prefix': { type: 'string', default: '56', help: 'IPv6 client network size for rate limiting' },
  'rrl-exempt': { type: 'string', multiple: true, default: ['127.0.0.0/8', '::1/128'], help: 'client networks never rate limited' },
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
  let ns;
  try {
    const idle = durationFlag(values['tcp-idle-timeout'] as string, 'tcp-idle-timeout');
    ns = await startNameserver({
      zonesPath: values.zones as string,
      listen: values.listen as string[],
      logger,
      tcp: {
        idleTimeoutMs: idle,
        firstQueryTimeoutMs: durationFlag(values['tcp-query-timeout'] as string, 'tcp-query-timeout'),
        maxQueriesInFlight: intFlag(values['tcp-max-in-flight'] as string, 'tcp-max-in-flight'),
        maxConnections: intFlag(values['tcp-max-connections'] as string, 'tcp-max-connections'),
        maxConnectionsPerClient: intFlag(values['tcp-max-per-client'] as string, 'tcp-max-per-client'),
      },
      rrl: {
        ratePerSecond: intFlag(values['rrl-rate'] as string, 'rrl-rate'),
        windowSeconds: intFlag(values['rrl-window'] as string, 'rrl-window'),
        slip: intFlag(values['rrl-slip'] as string, 'rrl-slip'),
        ipv4PrefixLength: intFlag(values['rrl-ipv4-prefix'] as string, 'rrl-ipv4-prefix'),
        ipv6PrefixLength: intFlag(values['rrl-ipv6-prefix'] as string, 'rrl-ipv6-prefix'),
        exempt: values['rrl-exempt'] as string[],
      },
    });
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    return 1;
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

export function durationFlag(text: string, flag: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : parseDuration(text);
  if (ms === undefined) throw new Error(`--${flag}: "${text}" is not a duration (e.g. 500ms, 10s)`);
  return ms;
}

export function intFlag(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`--${flag}: "${text}" is not a whole number`);
  return Number(text);
}
