/**
 * Where the admin commands (status, drain, undrain, report) act: straight on Redis (--redis) or
 * through a nameserver's admin listener (--http, the embedded default's only door). Redis is
 * named by --redis or --redis-sentinels (redis-flags.ts).
 */
import os from 'node:os';
import { adminRequest } from '../admin/http.js';
import { DEFAULT_ADMIN_LISTEN } from '../app/serve-app.js';
import { DEFAULT_PREFIX } from '../state/keys.js';
import { describeRedis } from '../state/redis-connection.js';
import { RedisStateStore, StoreAuthError } from '../state/redis-store.js';
import type { AuditOrigin } from '../state/audit.js';
import { componentLogger, createLogger } from '../util/logger.js';
import type { FlagValues, Flags } from './args.js';
import { optionalRedisUrl, optionalText, text } from './flag-values.js';
import { redisConnection, redisConnectionFlags } from './redis-flags.js';

export const targetFlags = {
  redis: { type: 'string', help: 'act on the state in Redis (redis://host:port, or --redis-sentinels)', env: ['SITEDNS_REDIS_URL'], value: optionalRedisUrl },
  ...redisConnectionFlags,
  'redis-prefix': { type: 'string', default: DEFAULT_PREFIX, help: 'prefix of every Redis key', value: text },
  http: { type: 'string', default: DEFAULT_ADMIN_LISTEN, help: 'admin listener of a running `sitedns serve` (without --redis)', value: text },
  'http-token': { type: 'string', help: 'bearer token of the admin listener', value: optionalText },
} satisfies Flags;

/** Where to act: the parsed target flags (every admin command has them). */
export type Target = FlagValues<typeof targetFlags>;

/** The target's Redis, connected; undefined when the target is the admin listener (no Redis named). */
export async function openRedis(target: Target): Promise<RedisStateStore | undefined> {
  const connection = redisConnection(target);
  if (connection === undefined) return undefined;
  const store = new RedisStateStore({ ...connection, prefix: target['redis-prefix'], logger: createLogger('silent') });
  try {
    await store.ready(3000);
  } catch (error) {
    await store.close();
    if (error instanceof StoreAuthError) throw error;
    throw new Error(`cannot reach Redis at ${describeRedis(connection)}: ${(error as Error).message}`);
  }
  return store;
}

/**
 * A command acting on Redis itself performs the action, so it logs it (the audit trail's line, on
 * stderr: stdout is the command's answer) and names itself as where it came from.
 */
export function cliOrigin(): AuditOrigin {
  return { from: `cli ${os.hostname()}/${process.pid}`, log: componentLogger(createLogger(undefined, process.stderr), 'audit') };
}

/** Who acts when --by does not say: user@host. */
export function cliUser(): string {
  return `${os.userInfo().username}@${os.hostname()}`;
}

export async function admin(target: Pick<Target, 'http' | 'http-token'>, method: string, path: string, body?: unknown): Promise<any> {
  let res;
  try {
    res = await adminRequest(target.http, method, path, body, target['http-token'] || undefined);
  } catch (error) {
    const c = (error as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
    const cause = c?.code ?? c?.errors?.[0]?.code ?? (c as Error | undefined)?.message ?? (error as Error).message;
    throw new Error(`cannot reach the admin listener at ${target.http} (${cause}): is \`sitedns serve\` running? (use --http host:port, or --redis)`);
  }
  if (res.status >= 400) throw new Error(`${method} ${path}: HTTP ${res.status}: ${typeof res.body === 'object' ? res.body.error : res.body}`);
  return res.body;
}
