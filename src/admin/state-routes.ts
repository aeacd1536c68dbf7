/**
 * The state routes of the admin listener (docs/state.md "Admin API"):
 *
 *   GET    /v1/status                         site table + store + probers (sitedns status)
 *   POST   /v1/sites/<zone>/<site>/drain      {"for": "30m", "reason": "...", "by": "...", "state": "down"|"up"}
 *   DELETE /v1/sites/<zone>/<site>/drain      undrain
 *   POST   /v1/sites/<zone>/<site>/load       {"load": 0.42}  pushed load report (seed 002)
 *
 * Mutating routes need the bearer token when one is set (admin/http.ts).
 */
import type { AdminRequest, AdminResponse, AdminRouter } from './http.js';
import type { Runtime } from '../state/runtime.js';
import type { StateFollower } from '../state/follower.js';
import { siteKey, siteRefProblem } from '../state/keys.js';
import { drain, parseLoad, reportLoad, undrain, type DrainRequest } from '../state/service.js';
import { statusView, type StatusReport } from '../state/status.js';
import type { StateStore } from '../state/types.js';

export interface StateRouteContext {
  readonly store: StateStore;
  readonly follower: StateFollower;
  readonly runtime: Runtime;
  readonly staleAfterMs?: number;
}

export function buildStatus(ctx: StateRouteContext, now = Date.now()): StatusReport {
  const { store, follower, runtime } = ctx;
  return statusView(runtime.zones, runtime.state, { kind: store.kind, connected: follower.connected, ageMs: follower.ageMs(now), contents: follower.snapshotContents(), staleAfterMs: ctx.staleAfterMs }, now);
}

export function registerStateRoutes(router: AdminRouter, ctx: StateRouteContext): void {
  const known = (req: AdminRequest): string | AdminResponse => {
    const problem = siteRefProblem(req.params.zone) ?? siteRefProblem(req.params.site);
    if (problem !== undefined) return { status: 400, body: { error: problem } };
    const key = siteKey(req.params.zone, req.params.site);
    for (const zone of ctx.runtime.zones.zones.values()) for (const site of zone.sites) if (site.key === key) return key;
    return { status: 404, body: { error: `no site ${key} in the served zones` } };
  };
  const unavailable = (error: unknown): AdminResponse => ({ status: 503, body: { error: `state store unavailable: ${(error as Error).message}` } });

  router.add('GET', '/v1/status', () => ({ status: 200, body: buildStatus(ctx) }));

  router.add('POST', '/v1/sites/:zone/:site/drain', async (req) => {
    const key = known(req);
    if (typeof key !== 'string') return key;
    const body = (req.body ?? {}) as DrainRequest;
    if (typeof body !== 'object') return { status: 400, body: { error: 'body must be a JSON object' } };
    try {
      const forced = await drain(ctx.store, key, { ...body, by: body.by ?? `admin@${req.remoteAddress}` });
      if ('error' in forced) return { status: 400, body: forced };
      return { status: 200, body: { site: key, forced } };
    } catch (error) {
      return unavailable(error);
    }
  });

  router.add('DELETE', '/v1/sites/:zone/:site/drain', async (req) => {
    const key = known(req);
    if (typeof key !== 'string') return key;
    try {
      await undrain(ctx.store, key);
      return { status: 200, body: { site: key, forced: null } };
    } catch (error) {
      return unavailable(error);
    }
  });

  router.add('POST', '/v1/sites/:zone/:site/load', async (req) => {
    const key = known(req);
    if (typeof key !== 'string') return key;
    const load = parseLoad(req.body);
    if (typeof load !== 'number') return { status: 400, body: load };
    try {
      const report = await reportLoad(ctx.store, key, load, typeof req.query.get('by') === 'string' ? req.query.get('by')! : undefined);
      return { status: 202, body: { site: key, report } };
    } catch (error) {
      return unavailable(error);
    }
  });
}
