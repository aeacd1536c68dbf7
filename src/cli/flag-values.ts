/**
 * The types of flag values (args.ts FlagSpec.value): what a flag accepts and what the command
 * receives. A message says what is wrong with the value; readFlags puts `--flag: "value"` before it.
 */
import { z } from 'zod';
import { duration } from '../util/duration.js';
import { parseHostPort } from '../util/listen.js';
import { isCookieSecret } from '../dns/cookies.js';
import { LOG_LEVELS } from '../util/log-levels.js';
import { redactUrl } from '../util/redact.js';

/** A flag with a default: always text. */
export const text = z.string();
/** A flag without a default: text, or undefined when neither argv nor the environment gives it. */
export const optionalText = z.string().optional();
/** A repeatable flag with a default. */
export const texts = z.array(z.string());
/**
 * Cookie secrets (RFC 9018 §4.4's 16-byte SipHash key): 32 hex digits each, given repeated or
 * comma-separated; undefined when none is given.
 */
export const cookieSecrets = z
  .array(z.string())
  .optional()
  .transform((list) => list?.flatMap((item) => item.split(',')).filter((item) => item !== ''))
  .superRefine((list, ctx) => {
    // The message quotes a stand-in, never the value: the list holds the other, valid secrets.
    const bad = list?.findIndex((item) => !isCookieSecret(item)) ?? -1;
    if (bad >= 0) ctx.addIssue({ code: 'custom', message: `"***" (secret ${bad + 1} of ${list!.length}) is not 32 hex digits` });
  });

/** `serve --nsid`: at most 128 bytes, so the option fits beside any answer in a 512-byte reply's room for EDNS. */
export const nsidText = z
  .string()
  .optional()
  .refine((text) => text === undefined || (text.length > 0 && Buffer.byteLength(text) <= 128), 'must be 1 to 128 bytes');

/** Repeatable host:port addresses ([v6]:port for IPv6; a host name is resolved at start). */
export const listenAddresses = z.array(z.string()).superRefine((specs, ctx) => {
  for (const spec of specs) {
    try {
      parseHostPort(spec);
    } catch (error) {
      const why = (error as Error).message;
      ctx.addIssue({ code: 'custom', message: why.startsWith('"') ? why : `"${spec}": ${why}` });
      return;
    }
  }
});
/** A boolean flag: given or not. */
export const on = z.boolean().default(false);

export const wholeNumber = z.string().regex(/^\d+$/, 'is not a whole number').transform(Number);

/** `auto` (decided at start: every core) or a whole number. */
export const autoOrWholeNumber = z.union([z.literal('auto'), wholeNumber], { error: 'is not a whole number or auto' });

export const fraction = z
  .string()
  .transform(Number)
  .refine((n) => Number.isFinite(n) && n >= 0 && n <= 1, 'is not a fraction from 0 to 1');

/**
 * Node clamps a timer longer than 2^31 - 1 ms (24.8 days) to 1 ms: a longer timeout would fire at
 * once. Every duration flag sets a timer or an age, so 24 days is the longest.
 */
export const MAX_FLAG_DURATION_MS = 24 * 86_400_000;
export const flagDuration = duration.refine((ms) => ms <= MAX_FLAG_DURATION_MS, 'is longer than 24d');

export const logLevel = z.enum(LOG_LEVELS, { error: `is not one of ${LOG_LEVELS.join(', ')}` });

/** A flag `serve` refuses: any value, from argv or the environment, is refused with `why` (what to use instead). */
export const refused = (why: string) => z.undefined({ error: why });

/**
 * A Redis URL as ioredis reads it: redis:// or rediss:// (TLS), host:port alone, or a Unix socket
 * path; a value it would throw on only as the store starts (a port that is not a number, say) is
 * refused with the flags instead. Empty means no Redis. The message quotes the value with its
 * password hidden, so readFlags prints it as it is.
 */
export const optionalRedisUrl = z
  .string()
  .optional()
  .superRefine((url, ctx) => {
    if (url === undefined || url === '' || redisUrlParses(url)) return;
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(redactUrl(url))} is not a Redis URL (redis://[:password@]host[:port][/db], rediss:// for TLS, or a socket path)` });
  });

function redisUrlParses(url: string): boolean {
  if (url.startsWith('/') && !url.startsWith('//')) return true;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'redis' && scheme !== 'rediss') return false;
  try {
    new URL(scheme !== undefined ? url : url.startsWith('//') ? `redis:${url}` : `redis://${url}`);
    return true;
  } catch {
    return false;
  }
}

