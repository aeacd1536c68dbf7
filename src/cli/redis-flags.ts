/**
 * Where Redis is, for every command that takes --redis (serve, probe, status, drain, undrain,
 * report): one server by URL, or a master found through Redis Sentinel. The passwords are best
 * given by environment (SITEDNS_REDIS_PASSWORD, SITEDNS_REDIS_SENTINEL_PASSWORD: a command line
 * shows in `ps`); no log line or error message carries them (state/redis-connection.ts
 * describeRedis).
 */
import { z } from 'zod';
import { DEFAULT_SENTINEL_MASTER, type RedisConnection, type SentinelAddress } from '../state/redis-connection.js';
import { parseHostPort } from '../util/listen.js';
import { FlagError, type FlagValues, type Flags } from './args.js';
import { optionalText } from './flag-values.js';

function sentinelAddress(text: string): SentinelAddress | undefined {
  try {
    const address = parseHostPort(text);
    return address.port > 0 ? address : undefined;
  } catch {
    return undefined;
  }
}

/** `host:port,host:port,...` (IPv6 as [addr]:port; commas or spaces between them). */
const sentinelList = z
  .string()
  .transform((text, ctx): SentinelAddress[] => {
    const items = text.split(/[\s,]+/).filter(Boolean);
    if (items.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'names no sentinel (host:port,host:port,...)' });
      return z.NEVER;
    }
    const sentinels: SentinelAddress[] = [];
    for (const item of items) {
      const address = sentinelAddress(item);
      if (address === undefined) {
        ctx.addIssue({ code: 'custom', message: `has "${item}", which is not host:port (IPv6 as [addr]:port; port 1-65535)` });
        return z.NEVER;
      }
      sentinels.push(address);
    }
    return sentinels;
  })
  .optional();

const masterName = z.string().regex(/^\S+$/, 'is not a master name (sentinel monitor <name> ...)');

export const redisConnectionFlags = {
  'redis-sentinels': { type: 'string', help: 'instead of --redis: the Redis Sentinels (host:port,host:port,...) that name the master, followed through failovers', value: sentinelList },
  'redis-master': { type: 'string', default: DEFAULT_SENTINEL_MASTER, help: 'with --redis-sentinels: the name the sentinels monitor the master under', value: masterName },
  'redis-password': { type: 'string', help: 'password of the Redis servers (with --redis: when the URL has none); best from the environment', value: optionalText },
  'redis-sentinel-password': { type: 'string', help: "with --redis-sentinels: the sentinels' own password; best from the environment", value: optionalText },
} satisfies Flags;

export type RedisConnectionFlags = FlagValues<typeof redisConnectionFlags> & { readonly redis: string | undefined };

/** The Redis the flags name, or undefined for none; --redis and --redis-sentinels together are refused. */
export function redisConnection(flags: RedisConnectionFlags): RedisConnection | undefined {
  const url = flags.redis || undefined;
  const sentinels = flags['redis-sentinels'];
  const password = flags['redis-password'] || undefined;
  if (url !== undefined && sentinels !== undefined) throw new FlagError('--redis-sentinels: not with --redis (give the URL of one server, or the sentinels that name its master)');
  if (url !== undefined) return { url, password };
  if (sentinels === undefined) return undefined;
  return { sentinels, master: flags['redis-master'], password, sentinelPassword: flags['redis-sentinel-password'] || undefined };
}
