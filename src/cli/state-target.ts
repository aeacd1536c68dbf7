/**
 * Where the admin commands (status, drain, undrain, report) act: straight on Redis (--redis) or
 * through a nameserver's admin listener (--http, the embedded default's only door).
 */
import { adminRequest } from '../admin/http.js';
import { DEFAULT_ADMIN_LISTEN } from '../app/serve-app.js';
import { DEFAULT_PREFIX } from '../state/keys.js';
import { RedisStateStore } from '../state/redis-store.js';
import { createLogger } from '../util/logger.js';
import type { Flags } from './args.js';

export const targetFlags: Flags = {
  redis: { type: 'string', help: 'act on the state in Redis (redis://host:port)', env: ['SITEDNS_REDIS_URL'] },
  'redis-prefix': { type: 'string', default: DEFAULT_PREFIX, help: 'prefix of every Redis key' },
  http: { type: 'string', default: DEFAULT_ADMIN_LISTEN, help: 'admin listener of a running `sitedns serve` (without --redis)' },
  'http-token': { type: 'string', help: 'bearer token of the admin listener' },
};

export type Values = Record<string, string | boolean | string[] | undefined>;

export async function openRedis(values: Values): Promise<RedisStateStore> {
  const store = new RedisStateStore({ url: values.redis as string, prefix: values['redis-prefix'] as string, logger: createLogger('silent') });
  try {
    await store.ready(3000);
  } catch (error) {
    await store.close();
    throw new Error(`cannot reach Redis at ${values.redis}: ${(error as Error).message}`);
  }
  return store;
}

export async function admin(values: Values, method: string, path: string, body?: unknown): Promise<any> {
  let res;
  try {
    res = await adminRequest(values.http as string, method, path, body, (values['http-token'] as string | undefined) || undefined);
  } catch (error) {
    const c = (error as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
    const cause = c?.code ?? c?.errors?.[0]?.code ?? (c as Error | undefined)?.message ?? (error as Error).message;
    throw new Error(`cannot reach the admin listener at ${values.http} (${cause}): is \`sitedns serve\` running? (use --http host:port, or --redis)`);
  }
  if (res.status >= 400) throw new Error(`${method} ${path}: HTTP ${res.status}: ${typeof res.body === 'object' ? res.body.error : res.body}`);
  return res.body;
}
