/** `sitedns probe`: the prober as its own process, writing to Redis (docs/state.md). */
import { formatProblem } from '../config/errors.js';
import { Prober } from '../probe/prober.js';
import { ZoneStore } from '../server/zone-store.js';
import { MemoryStateStore } from '../state/memory-store.js';
import { RedisStateStore } from '../state/redis-store.js';
import { statusFromContents } from '../state/status.js';
import { createLogger } from '../util/logger.js';
import { flagHelp, parseFlags, type Flags } from './args.js';
import { durationFlag } from './serve.js';
import { formatStatus } from './status.js';

export const probeFlags: Flags = {
  zones: { type: 'string', default: 'zones', help: 'zone file or directory' },
  redis: { type: 'string', help: 'write the state to Redis (redis://host:port)', env: ['SITEDNS_REDIS_URL'] },
  'redis-prefix': { type: 'string', default: 'sitedns:', help: 'prefix of every Redis key' },
  'prober-id': { type: 'string', help: 'this prober\'s id (default: host-pid); several probers combine by majority' },
  once: { type: 'boolean', help: 'probe every site once (first round), print the table and exit (no Redis needed)' },
  'startup-limit': { type: 'string', default: '5s', help: 'with --once: wait at most this long for the first round' },
  'log-level': { type: 'string', default: 'info', help: 'trace, debug, info, warn, error', env: ['LOG_LEVEL'] },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const probeHelp = `Usage: sitedns probe --zones <dir> --redis <url> [--prober-id <id>]

Probes every site of the zones (HTTP, HTTPS, TCP; rise/fall with rapid re-checks) and writes
each site's state to Redis, publishing a notice per change; \`sitedns serve --redis\` follows it.
Run one per vantage point: a site is down when a majority of the live probers say so.
SIGHUP reloads the zones; SIGTERM/SIGINT stop (the prober leaves the store cleanly).

${flagHelp(probeFlags)}`;

export async function runProbe(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, probeFlags);
  if (values.help) {
    console.log(probeHelp);
    return 0;
  }
  const logger = createLogger(values.once ? 'warn' : (values['log-level'] as string));
  const zoneStore = new ZoneStore(values.zones as string);
  const loaded = zoneStore.load();
  for (const p of loaded.problems) logger.error({ code: p.code }, formatProblem(p));
  if (loaded.zoneSet.zones.size === 0) throw new Error(`no zone could be loaded from ${values.zones}`);

  if (values.once) {
    const store = new MemoryStateStore();
    const prober = new Prober({ store, logger, id: 'once' });
    await prober.start();
    prober.setZones(loaded.zoneSet);
    await prober.firstRound(durationFlag(values['startup-limit'] as string, 'startup-limit'));
    await prober.stop(false);
    console.log(formatStatus(statusFromContents(await store.readAll(), Date.now(), 'none (--once)', loaded.zoneSet)));
    return 0;
  }
  if (!values.redis) throw new Error('--redis is required (or --once); `sitedns serve` without --redis probes in-process');

  const store = new RedisStateStore({ url: values.redis as string, prefix: values['redis-prefix'] as string, logger });
  try {
    await store.ready(5000);
    // Leftovers of probers that crashed long ago must not linger in `status`.
    await store.pruneProbers(3_600_000);
  } catch (error) {
    logger.warn({ err: (error as Error).message }, 'Redis not reachable yet: probing anyway and writing once it is');
  }
  const prober = new Prober({ store, logger, id: (values['prober-id'] as string | undefined) || undefined });
  await prober.start();
  prober.setZones(loaded.zoneSet);
  logger.info({ prober: prober.id, zones: [...loaded.zoneSet.zones.keys()], redis: values.redis }, 'probing');
  process.on('SIGHUP', () => {
    const r = zoneStore.load();
    for (const p of r.problems) logger.error({ code: p.code }, formatProblem(p));
    prober.setZones(r.zoneSet);
    logger.info({ zones: [...r.zoneSet.zones.keys()] }, 'zones reloaded');
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      prober
        .stop()
        .then(() => store.close())
        .then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
