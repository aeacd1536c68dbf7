/** `sitedns probe`: the prober as its own process, writing to Redis (docs/state.md). */
import { Prober } from '../probe/prober.js';
import { MemoryStateStore } from '../state/memory-store.js';
import { describeRedis } from '../state/redis-connection.js';
import { RedisStateStore, StoreAuthError } from '../state/redis-store.js';
import { statusFromContents } from '../state/status.js';
import { componentLogger, createLogger } from '../util/logger.js';
import { flagHelp, readFlags, type Flags } from './args.js';
import { redisConnection, redisConnectionFlags } from './redis-flags.js';
import { flagDuration, logLevel, on, optionalRedisUrl, optionalText, text } from './flag-values.js';
import { outputFlag, printReport } from './output.js';
import { formatStatus } from './status.js';
import { ReloadController } from '../zones/reload.js';
import { ZoneStore } from '../zones/zone-store.js';

export const probeFlags = {
  zones: { type: 'string', default: 'zones', help: 'zone file or directory', value: text },
  redis: { type: 'string', help: 'write the state to Redis (redis://host:port, or --redis-sentinels)', env: ['SITEDNS_REDIS_URL'], value: optionalRedisUrl },
  ...redisConnectionFlags,
  'redis-prefix': { type: 'string', default: 'sitedns:', help: 'prefix of every Redis key', value: text },
  'prober-id': { type: 'string', help: 'this prober\'s id (default: host-pid); several probers combine by majority', value: optionalText },
  once: { type: 'boolean', help: 'probe every site once (first round), print the table and exit (no Redis needed)', value: on },
  'startup-limit': { type: 'string', default: '5s', help: 'with --once: wait at most this long for the first round', value: flagDuration },
  output: { ...outputFlag, help: `with --once: ${outputFlag.help}` },
  'log-level': { type: 'string', default: 'info', help: 'trace, debug, info, warn, error', env: ['LOG_LEVEL'], value: logLevel },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const probeHelp = `Usage: sitedns probe --zones <dir> (--redis <url> | --redis-sentinels <host:port,...>) [--prober-id <id>]

Probes every site of the zones (HTTP, HTTPS, TCP; rise/fall with rapid re-checks) and writes
each site's state to Redis, publishing a notice per change; \`sitedns serve --redis\` follows it.
Run one per vantage point: a site is down when a majority of the live probers say so.
SIGHUP reloads the zones; SIGTERM/SIGINT stop (the prober leaves the store cleanly).

${flagHelp(probeFlags)}`;

export async function runProbe(argv: string[]): Promise<number> {
  const read = readFlags(argv, probeFlags);
  if (read.help) {
    console.log(probeHelp);
    return 0;
  }
  const { flags } = read;
  const redis = redisConnection(flags);
  // The logs share stdout with --once's report: JSON output stays one document (the report says
  // what the warnings would).
  const logger = createLogger(flags.once ? (flags.output === 'json' ? 'silent' : 'warn') : flags['log-level']);
  // The zones come the way `serve` loads them (zones/reload.ts); this process answers no query.
  const reloads = new ReloadController({ zoneStore: new ZoneStore(flags.zones), prebuild: null }, componentLogger(logger, 'reload'));
  await reloads.start();
  const runtime = reloads.runtime;

  if (flags.once) {
    const store = new MemoryStateStore();
    const prober = new Prober({ store, logger, id: 'once' });
    await prober.start();
    prober.follow(runtime);
    await prober.firstRound(flags['startup-limit']);
    await prober.stop(false);
    printReport(flags.output, statusFromContents(await store.readAll(), Date.now(), 'none (--once)', runtime.zones), formatStatus);
    return 0;
  }
  if (!redis) throw new Error('--redis or --redis-sentinels is required (or --once); `sitedns serve` without Redis probes in-process');

  const store = new RedisStateStore({ ...redis, prefix: flags['redis-prefix'], logger });
  try {
    await store.ready(5000);
    // Leftovers of probers that crashed long ago must not linger in `status`.
    await store.pruneProbers(3_600_000);
  } catch (error) {
    // Refused credentials do not fix themselves, as an outage does: stop and say so.
    if (error instanceof StoreAuthError) {
      await store.close();
      throw error;
    }
    logger.warn({ err: (error as Error).message }, 'Redis not reachable yet: probing anyway and writing once it is');
  }
  const prober = new Prober({ store, logger, id: flags['prober-id'] || undefined });
  await prober.start();
  prober.follow(runtime);
  logger.info({ prober: prober.id, zones: [...runtime.zones.zones.keys()], redis: describeRedis(redis) }, 'probing');
  process.on('SIGHUP', () => void reloads.reload('sighup'));
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      prober
        .stop()
        .then(() => store.close())
        .then(() => reloads.zoneStore.close())
        .then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
