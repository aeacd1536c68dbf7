/**
 * Where the state store's Redis is, and the one place that turns it into ioredis client options:
 * a single server by URL, or a master found through Redis Sentinel (docs/deployment.md).
 *
 * Fail fast, never queue: commands are not queued while disconnected (enableOfflineQueue: false),
 * so a prober's write fails at once and is redone after the reconnect (its resync rewrites every
 * view), and a nameserver's re-read fails at once and it keeps the last known state. Reconnects
 * are retried every 100 ms .. 1 s, and so are the sentinels when none answers.
 */
import type { RedisOptions } from 'ioredis';
import { formatHostPort } from '../util/listen.js';
import { redactUrl } from '../util/redact.js';

/** One server: redis://[:password@]host:port[/db], or rediss:// for TLS. */
export interface RedisUrlConnection {
  readonly url: string;
  /** Used when the URL carries no password. */
  readonly password?: string;
}

export interface SentinelAddress {
  readonly host: string;
  readonly port: number;
}

/** The master of the set `master`, as the sentinels name it; followed through their failovers. */
export interface RedisSentinelConnection {
  readonly sentinels: readonly SentinelAddress[];
  readonly master: string;
  /** The Redis servers' password (requirepass). */
  readonly password?: string;
  /** The sentinels' own password (their requirepass), when they have one. */
  readonly sentinelPassword?: string;
}

export type RedisConnection = RedisUrlConnection | RedisSentinelConnection;

export const DEFAULT_SENTINEL_MASTER = 'mymaster';

const retryDelay = (times: number) => Math.min(100 * times, 1000);

/** The ioredis options (and the URL, when there is one) for a client of `connection`. */
export function redisClientOptions(connection: RedisConnection, name: string): { url?: string; options: RedisOptions } {
  const options: RedisOptions = {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1000,
    commandTimeout: 2000,
    retryStrategy: retryDelay,
    // A master demoted to a replica (its old clients stay connected) refuses writes with
    // READONLY: reconnecting asks the sentinels for the master again.
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 1 : false),
  };
  if (connection.password !== undefined) options.password = connection.password;
  if ('url' in connection) return { url: connection.url, options };
  return {
    options: {
      ...options,
      sentinels: connection.sentinels.map(({ host, port }) => ({ host, port })),
      name: connection.master,
      role: 'master',
      sentinelPassword: connection.sentinelPassword,
      sentinelRetryStrategy: retryDelay,
      // A sentinel that does not answer (its region cut off) is skipped, not waited for.
      sentinelCommandTimeout: 1000,
      // The sentinels' +switch-master closes the connection at once, also when the old master
      // is still alive and reachable from here (a partition), instead of writing to it until it
      // is demoted.
      failoverDetector: true,
    },
  };
}

/** For logs and error messages: where Redis is, without any password. */
export function describeRedis(connection: RedisConnection): string {
  if ('url' in connection) return redactUrl(connection.url);
  return `master "${connection.master}" of sentinels ${connection.sentinels.map(({ host, port }) => formatHostPort(host, port)).join(',')}`;
}
