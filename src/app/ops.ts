/**
 * Operations for a running nameserver: admin routes (metrics, health, readiness, explain, status,
 * reload, the status page and its history), per-query metrics and sampled query logs, live reload on SIGHUP and on zone file
 * changes, all-down tracking, and the graceful stop. `serve` uses it in steps:
 * `prepareOps()` before the nameserver starts (the handler takes its observer at construction),
 * `registerRoutes(router, runtime)` on the admin listener's router (serve-app owns the listener),
 * `attach(ns)` once DNS is served (then /readyz says ready), `stop(...)` on SIGTERM.
 */
import { AdminRouter, startAdminServer, type AdminServer } from '../admin/http.js';
import { allDownNames, beforeScrape, ready as readyGauge, registry, renderMetrics, udpThreadsLive } from '../metrics/definitions.js';
import { renderAnswererMetrics, siteAnswerCounts } from '../admin/answerer-metrics.js';
import { AnswerHistory } from '../admin/answer-history.js';
import { registerStatusPage } from '../admin/status-page.js';
import { QueryMetrics } from '../admin/query-metrics.js';
import { registerOpsRoutes, type Readiness } from '../admin/routes.js';
import type { ZoneSet } from '../model/zone-model.js';
import { systemEnv, type PolicyEnv } from '../policy/types.js';
import type { ReloadController, ReloadOutcome, ReloadTrigger } from '../zones/reload.js';
import { watchZones, type ZoneWatcher } from '../server/watch.js';
import type { Runtime } from '../state/runtime.js';
import { stateOf, type StateSnapshot } from '../state/snapshot.js';
import { parseHostPort } from '../util/listen.js';
import { componentLogger, type Logger } from '../util/logger.js';

/** The operator's settings (serve: --query-log-sample, --watch-debounce, --stop-timeout). */
export interface OpsConfig {
  /** Start an admin listener of its own on host:port (serve: no, serve-app has one). */
  http?: string | null;
  httpToken?: string;
  /** Fraction of queries logged, 0 to 1. */
  querySample: number;
  /** 0: no file watching. */
  watchDebounceMs: number;
  stopTimeoutMs: number;
}

export interface OpsOptions extends OpsConfig {
  logger: Logger;
  env?: PolicyEnv;
  /** The admin router; other components (state store: drain, load reports) add their routes to it. */
  router?: AdminRouter;
  /** What `sitedns status` prints; default: this nameserver's snapshot. */
  status?: () => unknown | Promise<unknown>;
  /**
   * True once a first site state is known (the state store's first probe round, or its start-up
   * limit). Default: a snapshot marked fresh has been seen, or no site has a probe to wait for.
   */
  stateKnown?: () => boolean;
  /** Install SIGHUP (reload). serve: yes; tests running several in one process: no. */
  signals?: boolean;
  /** After `stop`, exit the process if it is still alive at stopTimeoutMs (serve only). */
  forceExit?: boolean;
}

export interface OpsTarget {
  readonly runtime: Runtime;
  /** The reload path that publishes to `runtime`: SIGHUP, file changes and POST /v1/reload go through it. */
  readonly reloads: ReloadController;
  /** The handler: explain uses its env (clock, random source, the policies' memory). */
  readonly handler?: { readonly env: PolicyEnv };
  /** `serve --udp-threads N` (the nameserver's pool): not ready while none listens. */
  readonly threads?: { live(): number; readonly threads: number } | undefined;
}

export interface Ops {
  /** Pass to startNameserver({ observer }). */
  readonly observer: QueryMetrics;
  readonly router: AdminRouter;
  /** Its own admin listener, when `http` was given. */
  readonly admin: AdminServer | undefined;
  /** Adds the ops routes to an admin router (GET /v1/status only if no one registered it). */
  registerRoutes(router: AdminRouter, runtime: Runtime): void;
  /** DNS is being served: start reloads, watching, SIGHUP; /readyz may say ready from now on. */
  attach(target: OpsTarget): Promise<void>;
  /** Reloads through the target's ReloadController; undefined before attach and once stopping. */
  reload(trigger?: ReloadTrigger): Promise<ReloadOutcome> | undefined;
  /** Run at stop after the listeners closed (e.g. close Redis). */
  onStop(hook: () => unknown): void;
  readiness(): Readiness;
  /** Stop: unready, stop watching, run `stopNameserver` (answers what is in flight), stop hooks, admin last. */
  stop(stopNameserver: () => Promise<void>): Promise<void>;
}

export function prepareOps(options: OpsOptions): Ops {
  const log = componentLogger(options.logger, 'ops');
  const env = options.env ?? systemEnv;
  const router = options.router ?? new AdminRouter();
  const observer = new QueryMetrics({ logger: componentLogger(options.logger, 'query'), sample: options.querySample }, undefined, componentLogger(options.logger, 'handler'));
  const stopHooks: (() => unknown)[] = [];
  const cleanups: (() => void)[] = [];
  let target: OpsTarget | undefined;
  let admin: AdminServer | undefined;
  let watcher: ZoneWatcher | undefined;
  let stopping = false;
  let stateSeen = false;

  const defaultStateKnown = () => {
    if (stateSeen) return true;
    const rt = target?.runtime;
    if (rt === undefined) return false;
    if (rt.state.fresh) return (stateSeen = true);
    // Nothing to learn: every site counts as up without a probe (the embedded default).
    for (const zone of rt.zones.zones.values()) for (const site of zone.sites) if (site.probe !== undefined) return false;
    return true;
  };
  const stateKnown = options.stateKnown ?? defaultStateKnown;

  let routeRuntime: Runtime | undefined;
  const readiness = (): Readiness => {
    const runtime = target?.runtime ?? routeRuntime;
    const zonesLoaded = runtime !== undefined && runtime.zones.zones.size > 0;
    const known = zonesLoaded && target !== undefined && stateKnown();
    const threads = target?.threads;
    if (threads === undefined) return { ready: zonesLoaded && known && !stopping, zonesLoaded, stateKnown: known, stopping };
    // With UDP threads, one listening is enough; none (all dead and restarting) answers no UDP.
    const live = threads.live();
    return { ready: zonesLoaded && known && !stopping && live > 0, zonesLoaded, stateKnown: known, stopping, udpListening: live > 0, udpThreads: { live, total: threads.threads } };
  };
  const registerRoutes = (r: AdminRouter, runtime: Runtime) => {
    routeRuntime = runtime;
    registerOpsRoutes(r, { runtime, env: () => target?.handler?.env ?? env, readiness, status: options.status, reload: () => reload('api'), metrics: () => renderAnswererMetrics() });
    const history = new AnswerHistory({ runtime, counts: () => siteAnswerCounts(), now: () => env.now() });
    history.start();
    cleanups.push(() => history.stop());
    registerStatusPage(r, history);
  };

  const reload = (trigger: ReloadTrigger = 'api') => {
    if (target === undefined || stopping) return undefined;
    return target.reloads.reload(trigger);
  };

  if (options.signals ?? true) {
    // Installed now, not at attach: during start-up (the first probe round) SIGHUP's default
    // action would kill the process; until attached a reload is simply not possible yet.
    const onHup = () => {
      if (reload('sighup') === undefined) log.warn(stopping ? 'SIGHUP while stopping: ignored' : 'SIGHUP before the zones are served: ignored');
    };
    process.on('SIGHUP', onHup);
    cleanups.push(() => process.off('SIGHUP', onHup));
  }

  const ops: Ops = {
    observer,
    router,
    get admin() {
      return admin;
    },
    readiness,
    reload,
    registerRoutes,
    onStop(hook) {
      stopHooks.push(hook);
    },

    async attach(t) {
      target = t;

      cleanups.push(
        beforeScrape(() => {
          readyGauge.set(readiness().ready ? 1 : 0);
          udpThreadsLive.set(t.threads?.live() ?? 0);
          allDownNames.set(countAllDownNames(t.runtime.zones, t.runtime.state));
        }),
      );

      if (options.watchDebounceMs > 0) {
        watcher = watchZones(t.reloads.zoneStore.path, () => void reload('watch'), { debounceMs: options.watchDebounceMs, logger: componentLogger(options.logger, 'watch') });
      }

      if (options.http) {
        registerRoutes(router, t.runtime);
        const { host, port } = parseHostPort(options.http);
        const adminLog = componentLogger(options.logger, 'admin');
        admin = await startAdminServer(router, { host, port, token: options.httpToken, onError: (error) => adminLog.error({ err: error }, 'admin request failed') });
        adminLog.info({ address: admin.address, port: admin.port }, 'admin listening');
      }
    },

    async stop(stopNameserver) {
      if (stopping) return;
      stopping = true;
      readyGauge.set(0);
      if (options.forceExit) {
        setTimeout(() => {
          log.warn({ stopTimeoutMs: options.stopTimeoutMs }, 'stop took too long; exiting now');
          process.exit(0);
        }, options.stopTimeoutMs).unref();
      }
      watcher?.close();
      for (const c of cleanups) c();
      try {
        await stopNameserver();
      } catch (error) {
        log.error({ err: error }, 'closing the DNS listeners failed');
      }
      for (const hook of stopHooks) {
        try {
          await hook();
        } catch (error) {
          log.error({ err: error }, 'a stop hook failed');
        }
      }
      observer.close();
      await admin?.close();
      log.info('stopped');
    },
  };
  return ops;
}

/**
 * Names whose every candidate site is down right now (sitedns_all_down_names), read at scrape
 * time. The transitions themselves are counted and logged by the handler's all-down watch
 * (policy/all-down-watch.ts), once each.
 */
export function countAllDownNames(zones: ZoneSet, state: StateSnapshot): number {
  let n = 0;
  for (const zone of zones.zones.values()) {
    for (const name of zone.dynamicNames) {
      if (name.sites.length > 0 && name.sites.every((s) => !stateOf(state, s.key).up)) n++;
    }
  }
  return n;
}

/**
 * A metrics-and-health listener for processes that serve no DNS (`sitedns probe`): GET /metrics
 * (probe latency and failures live there), /healthz and /readyz (`ready()`, default true).
 */
export async function startMetricsListener(o: { http: string; token?: string; logger: Logger; ready?: () => boolean }): Promise<AdminServer> {
  const router = new AdminRouter();
  const ready = o.ready ?? (() => true);
  router.add('GET', '/metrics', async () => ({ status: 200, body: await renderMetrics(), contentType: registry.contentType }));
  router.add('GET', '/healthz', () => ({ status: 200, body: { status: 'ok' } }));
  router.add('GET', '/readyz', () => (ready() ? { status: 200, body: { status: 'ready' } } : { status: 503, body: { status: 'not ready' } }));
  const { host, port } = parseHostPort(o.http);
  const log = componentLogger(o.logger, 'admin');
  const server = await startAdminServer(router, { host, port, token: o.token, onError: (error) => log.error({ err: error }, 'admin request failed') });
  log.info({ address: server.address, port: server.port }, 'metrics listening');
  return server;
}
