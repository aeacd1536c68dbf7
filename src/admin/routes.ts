/**
 * The operations routes of the admin listener: /metrics, /healthz, /readyz, /v1/explain,
 * /v1/status and POST /v1/reload. The state-store routes (drain, load reports) are registered by
 * their own component on the same router.
 */
import type { PolicyEnv } from '../policy/types.js';
import type { Runtime } from '../state/runtime.js';
import { statusView } from '../state/status.js';
import { explain, ExplainInputError } from './explain.js';
import type { AdminRouter } from './http.js';
import { registry, renderMetrics } from '../metrics/definitions.js';

export interface Readiness {
  ready: boolean;
  zonesLoaded: boolean;
  stateKnown: boolean;
  stopping: boolean;
  /** `serve --udp-threads N` only: false while no UDP thread listens (all died, restarting). */
  udpListening?: boolean;
  /** `serve --udp-threads N` only: threads listening now, of N. */
  udpThreads?: { live: number; total: number };
}

export interface OpsRouteDeps {
  runtime: Runtime;
  /** The handler's env (its clock, random source and policy memory), read per request. */
  env: () => PolicyEnv;
  readiness(): Readiness;
  /** What `sitedns status` prints, as JSON. Default: the site view of this nameserver's snapshot, with no store (state/status.ts). */
  status?: () => unknown | Promise<unknown>;
  /** POST /v1/reload: the reload's outcome, or undefined when no reload is possible (not serving yet, stopping). */
  reload?: () => Promise<unknown> | undefined;
  /** /metrics text; default: this process's registry. */
  metrics?: () => Promise<string>;
}

export function registerOpsRoutes(router: AdminRouter, deps: OpsRouteDeps): void {
  const metrics = deps.metrics ?? renderMetrics;
  router.add('GET', '/metrics', async () => ({ status: 200, body: await metrics(), contentType: registry.contentType }));

  router.add('GET', '/healthz', () => {
    // Alive and serving: 503 only once a stop has begun (load balancers stop sending then).
    const r = deps.readiness();
    return { status: r.stopping ? 503 : 200, body: { status: r.stopping ? 'stopping' : 'ok' } };
  });

  router.add('GET', '/readyz', () => {
    const r = deps.readiness();
    return { status: r.ready ? 200 : 503, body: { status: r.ready ? 'ready' : 'not ready', ...r } };
  });

  router.add('GET', '/v1/explain', (req) => {
    const name = req.query.get('name');
    if (!name) return { status: 400, body: { error: 'name= is required, e.g. /v1/explain?name=app.example.com&type=A&client=198.51.100.7' } };
    try {
      const body = explain(deps.runtime, deps.env(), { name, type: req.query.get('type') ?? undefined, client: req.query.get('client') ?? undefined, ecs: req.query.get('ecs') ?? undefined });
      return { status: 200, body };
    } catch (error) {
      if (error instanceof ExplainInputError) return { status: 400, body: { error: error.message } };
      throw error;
    }
  });

  // The state store registers the status with its probers and connection (admin/state-routes.ts);
  // without one, the same view of the sites this nameserver answers from, with no store.
  const ownStatus = () => statusView(deps.runtime.zones, deps.runtime.state, { kind: 'none', connected: true }, deps.env().now());
  if (deps.status !== undefined || router.match('GET', '/v1/status') === undefined) router.add('GET', '/v1/status', async () => ({ status: 200, body: await (deps.status ?? ownStatus)() }));

  if (deps.reload) {
    const reload = deps.reload;
    router.add('POST', '/v1/reload', async () => {
      const outcome = await reload();
      return outcome === undefined ? { status: 503, body: { error: 'not serving yet, or stopping' } } : { status: 200, body: outcome };
    }, { mutating: true });
  }
}
