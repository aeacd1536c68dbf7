/**
 * The composition behind `sitedns serve`: nameserver + state store + follower + (embedded)
 * prober + admin listener (+ demo backends). serve.ts parses flags and calls this.
 *
 * Two modes, one code path:
 * - embedded default (no --redis): a MemoryStateStore; this process probes the zones itself.
 * - --redis or --redis-sentinels: a RedisStateStore written by `sitedns probe` processes; this
 *   process only follows it (and keeps a last-known-state file for starts while Redis is down).
 * Either way the zones come from the one reload path (zones/reload.ts: start, SIGHUP, file
 * watch, admin API) and the follower publishes the state, both into one Runtime that the
 * nameserver answers from and the prober follows. Answering starts only once the first probe
 * round / first store read is done, or `startupLimitMs` passed. A nameserver following Redis
 * without probing probes for itself while no prober is live (state/self-probing.ts).
 */
import { DEFAULT_KEY_DIR } from '../dnssec/key-file.js';
import { keyDirectory, type KeyDirectoryEvents, type KeySource } from '../dnssec/keys.js';
import { AdminRouter, startAdminServer, type AdminServer } from '../admin/http.js';
import { DemoBackends } from '../demo/backends.js';
import { shareCurrentSites } from '../policy/shared-current-sites.js';
import { Prober } from '../probe/prober.js';
import { startNameserver, type Nameserver, type NameserverOptions } from '../server/nameserver.js';
import { ReloadController } from '../zones/reload.js';
import { prebuildTableInSlices } from '../server/fast-path.js';
import { ZoneStore } from '../zones/zone-store.js';
import { registerStateRoutes } from '../admin/state-routes.js';
import { DEFAULT_STALE_AFTER_MS } from '../state/combine.js';
import { StateFollower } from '../state/follower.js';
import { MemoryStateStore } from '../state/memory-store.js';
import type { RedisConnection } from '../state/redis-connection.js';
import { RedisStateStore } from '../state/redis-store.js';
import type { Runtime } from '../state/runtime.js';
import type { SelfProber } from '../state/self-probing.js';
import { StateFileWriter } from '../state/state-file.js';
import type { StateStore } from '../state/types.js';
import { CodedError } from '../util/coded-error.js';
import { parseHostPort } from '../util/listen.js';
import { componentLogger, type Logger } from '../util/logger.js';

export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:8053';

/** The admin address given with --http could not be opened (EADMIN_LISTEN): the start fails. */
export class AdminListenError extends CodedError<'EADMIN_LISTEN'> {
  constructor(message: string) {
    super('EADMIN_LISTEN', message);
  }
}
export const DEFAULT_STARTUP_LIMIT_MS = 3000;

export interface ServeAppOptions {
  zonesPath: string;
  /** The key directory of signed zones (serve --keys): keys a signed zone lacks are created there. */
  keysDir?: string;
  /** The keys of signed zones from elsewhere than `keysDir` (tests and benches that make their own). */
  keys?: KeySource;
  listen: string[];
  logger: Logger;
  tcp?: NameserverOptions['tcp'];
  /** UDP response rate limiting. */
  rrl?: NameserverOptions['rrl'];
  /** UDP implementation: auto, dgram, batched. */
  udpPath?: NameserverOptions['udpPath'];
  /** NSID, server identity and DNS cookies. */
  edns?: NameserverOptions['edns'];
  /** `--udp-threads N`: UDP answered by N threads of this process. */
  udpThreads?: Omit<NonNullable<NameserverOptions['udpThreads']>, 'zonesPath' | 'zoneTexts'>;
  /** Admin listener host:port; null = none. */
  http: string | null;
  /** The admin address was chosen by the user: failing to listen is fatal (else a warning). */
  httpExplicit: boolean;
  httpToken?: string;
  /** The shared state store; without it this process probes and keeps the state in memory. */
  redis?: RedisConnection;
  redisPrefix?: string;
  /** Also probe in this process when following Redis. */
  probe?: boolean;
  proberId?: string;
  staleAfterMs?: number;
  startupLimitMs?: number;
  /** Last-known-state file (Redis mode); null disables it. */
  stateFile?: string | null;
  demoBackends?: boolean;
  /** The handler's observer (metrics, sampled query logs: src/app/ops.ts). */
  observer?: NameserverOptions['observer'];
  /** Extra routes on the admin listener (metrics, explain, reload, ...). */
  registerRoutes?: (router: AdminRouter, app: { runtime: Runtime }) => void;
}

export interface ServeApp {
  /** The zones and state answered from (published by `reloads` and the follower). */
  readonly runtime: Runtime;
  /** The one reload path (SIGHUP, file watch and POST /v1/reload go through it: app/ops.ts). */
  readonly reloads: ReloadController;
  readonly ns: Nameserver;
  readonly store: StateStore;
  readonly follower: StateFollower;
  readonly prober: Prober | undefined;
  readonly admin: AdminServer | undefined;
  readonly router: AdminRouter;
  readonly demo: DemoBackends | undefined;
  stop(): Promise<void>;
}

export async function startServeApp(o: ServeAppOptions): Promise<ServeApp> {
  const log = o.logger.child({ component: 'app' });
  const staleAfterMs = o.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const startupLimitMs = o.startupLimitMs ?? DEFAULT_STARTUP_LIMIT_MS;
  const store: StateStore = o.redis ? new RedisStateStore({ ...o.redis, prefix: o.redisPrefix, logger: o.logger }) : new MemoryStateStore();
  const router = new AdminRouter();
  let follower: StateFollower | undefined;
  let prober: Prober | undefined;
  let admin: AdminServer | undefined;
  let demo: DemoBackends | undefined;

  const cleanup = async () => {
    await prober?.stop().catch(() => undefined);
    await follower?.stop().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await demo?.stop().catch(() => undefined);
    await store.close().catch(() => undefined);
    await reloads.close().catch(() => undefined); // its loader thread, once a reload started one; its wait for a key change
  };

  // With UDP threads the store keeps its zones as validated: the threads compile those.
  const keys = o.keys ?? keyDirectory(o.keysDir ?? DEFAULT_KEY_DIR, { create: true, events: keyEvents(componentLogger(o.logger, 'keys')) });
  const zoneStore = new ZoneStore(o.zonesPath, { keepValidated: o.udpThreads !== undefined, keys });
  const reloads = new ReloadController({ zoneStore, prebuild: prebuildTableInSlices }, componentLogger(o.logger, 'reload'));
  const runtime = reloads.runtime;
  let ns: Nameserver;
  try {
    await reloads.start();
    // The state store and the prober start before any listener opens: answering begins only once
    // a first probe round finished (or its start-up limit passed), never saying "all down" for
    // lack of data.
    if (o.demoBackends) demo = await DemoBackends.start(runtime.zones, o.logger);
    let stateFile: StateFileWriter | undefined;
    if (o.redis && o.stateFile) {
      stateFile = new StateFileWriter(o.stateFile, o.logger);
      if (!stateFile.usable()) stateFile = undefined;
    }
    const selfProber = o.redis && !o.probe ? embeddedSelfProber(store, runtime, o.logger) : undefined;
    follower = new StateFollower({ store, runtime, logger: o.logger, staleAfterMs, stateFile, selfProber, currentSites: shareCurrentSites });
    registerStateRoutes(router, { store, follower, runtime, staleAfterMs, auditLog: componentLogger(o.logger, 'audit') });
    demo?.registerRoutes(router);
    o.registerRoutes?.(router, { runtime });
    if (o.http) admin = await startAdmin(o, router, log);

    const started = Date.now();
    const source = await follower.start(startupLimitMs);
    if (!o.redis || o.probe) {
      prober = new Prober({ store, logger: o.logger, id: o.proberId ?? (o.redis ? undefined : 'embedded') });
      await prober.start();
      prober.follow(runtime);
      const complete = await prober.firstRound(Math.max(0, startupLimitMs - (Date.now() - started)));
      await follower.resync();
      log.info({ complete, ms: Date.now() - started }, complete ? 'first probe round done' : 'start-up limit reached before every site was probed; unprobed sites count as up');
    }
    log.info({ store: store.kind, source, fresh: runtime.state.fresh }, o.redis ? 'following the Redis state store' : 'embedded state store: probing in this process');

    ns = await startNameserver({
      runtime,
      listen: o.listen,
      logger: o.logger,
      tcp: o.tcp,
      observer: o.observer,
      edns: o.edns,
      rrl: o.rrl,
      udpPath: o.udpPath,
      udpThreads: o.udpThreads === undefined ? undefined : { ...o.udpThreads, zonesPath: o.zonesPath, zoneTexts: () => reloads.zoneTexts() },
    });
  } catch (error) {
    await cleanup();
    throw error;
  }

  return {
    runtime,
    reloads,
    ns,
    store,
    follower: follower!,
    prober,
    admin,
    router,
    demo,
    async stop() {
      await ns.stop();
      await cleanup();
    },
  };
}

/**
 * The embedded prober over a memory store of its own, for a nameserver without a live prober:
 * its views reach this nameserver's answers only, never Redis (state/self-probing.ts says why).
 * The sites' pushed load reports are relayed from the shared store, so a site judged by its
 * reports is judged as the probers judge it.
 */
export function embeddedSelfProber(shared: StateStore, runtime: Runtime, logger: Logger, makeProber = (store: StateStore) => new Prober({ store, logger, id: 'self' })): SelfProber {
  let running: { prober: Prober; unsubscribe: () => void } | undefined;
  return {
    start(onView) {
      const own = new MemoryStateStore();
      own.subscribe((notice) => {
        if (notice.t === 'view') onView(notice.key, notice.view);
      });
      const unsubscribe = shared.subscribe((notice) => {
        if (notice.t === 'report') void own.report(notice.key, notice.report);
      });
      const prober = makeProber(own);
      const mine = { prober, unsubscribe };
      running = mine;
      void shared
        .readAll()
        .then((contents) => {
          for (const [key, report] of contents.reports) if (running === mine) void own.report(key, report);
        })
        .catch(() => undefined)
        .then(async () => {
          // Stopped before or while it started: it must not keep its heartbeat interval.
          if (running !== mine) return;
          await prober.start();
          if (running === mine) prober.follow(runtime);
          else await prober.stop(false);
        });
    },
    stop() {
      running?.unsubscribe();
      void running?.prober.stop(false);
      running = undefined;
    },
  };
}

async function startAdmin(o: ServeAppOptions, router: AdminRouter, log: Logger): Promise<AdminServer | undefined> {
  const { host, port } = parseHostPort(o.http!);
  try {
    const admin = await startAdminServer(router, { host, port, token: o.httpToken, onError: (error) => log.error({ err: error }, 'admin route failed') });
    log.info({ address: admin.address, port: admin.port }, 'admin listening');
    return admin;
  } catch (error) {
    if (o.httpExplicit) throw new AdminListenError(`--http ${o.http}: admin listener: ${(error as Error).message}`);
    // The default address is busy (another sitedns on this machine): serve DNS anyway.
    log.warn({ address: o.http, err: (error as Error).message }, 'admin listener not started (default address in use); status/drain need --http');
    return undefined;
  }
}

/** Keys created for a signed zone without any: one line; a key file others may read: a warning. */
function keyEvents(log: Logger): KeyDirectoryEvents {
  return {
    created: (zone, files) => log.info({ zone, files }, `DNSSEC keys created for signed zone ${zone} (it had none): ${files.join(', ')}`),
    warning: (w) => log.warn({ code: w.code }, `${w.file}: ${w.message}`),
  };
}
