/**
 * The state routes of the admin listener (docs/state.md "Admin API"):
 *
 *   GET    /v1/status                         site table + store + probers (sitedns status)
 *   POST   /v1/sites/<zone>/<site>/drain      {"for": "30m", "reason": "...", "by": "...", "state": "down"|"up"}
 *   DELETE /v1/sites/<zone>/<site>/drain      undrain
 *   POST   /v1/sites/<zone>/<site>/load       {"load": 0.42}  pushed load report (seed 002)
 *   GET    /v1/audit?site=&limit=             the audit trail (sitedns audit)
 *
 * Mutating routes need the bearer token when one is set (admin/http.ts). Drains, undrains and
 * force-ups, and the report events worth keeping, are logged and audited (state/audit.ts).
 */
import type { AdminRequest, AdminResponse, AdminRouter } from './http.js';
import type { Runtime } from '../state/runtime.js';
import type { StateFollower } from '../state/follower.js';
import { siteKey, siteRefProblem } from '../state/keys.js';
import { selectAudit, type AuditOrigin, type AuditReport } from '../state/audit.js';
import { drain, parseLoad, refuseReport, reportLoad, undrain, type DrainRequest } from '../state/service.js';
import { statusView, type StatusReport } from '../state/status.js';
import type { StateStore } from '../state/types.js';
import type { Logger } from '../util/logger.js';

export interface StateRouteContext {
  readonly store: StateStore;
  /** Where operator actions and report events are logged (the audit trail's log lines). */
  readonly auditLog: Logger;
  readonly follower: StateFollower;
  readonly runtime: Runtime;
  readonly staleAfterMs?: number;
}

export function buildStatus(ctx: StateRouteContext, now = Date.now()): StatusReport {
  const { store, follower, runtime } = ctx;
  return statusView(runtime.zones, runtime.state, { kind: store.kind, connected: follower.connected, ageMs: follower.ageMs(now), contents: follower.snapshotContents(), staleAfterMs: ctx.staleAfterMs, selfProbing: follower.selfProbingActive }, now);
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
  const origin = (req: AdminRequest): AuditOrigin => ({ from: `admin ${req.remoteAddress}`, log: ctx.auditLog });
  /** Who acts when the request does not say: the client's address. */
  const caller = (req: AdminRequest) => `admin@${req.remoteAddress}`;

  router.add('GET', '/v1/status', () => ({ status: 200, body: buildStatus(ctx) }));

  router.add('POST', '/v1/sites/:zone/:site/drain', async (req) => {
    const key = known(req);
    if (typeof key !== 'string') return key;
    const body = (req.body ?? {}) as DrainRequest;
    if (typeof body !== 'object') return { status: 400, body: { error: 'body must be a JSON object' } };
    try {
      const forced = await drain(ctx.store, key, { ...body, by: body.by ?? caller(req) }, origin(req));
      if ('error' in forced) return { status: 400, body: forced };
      return { status: 200, body: { site: key, forced } };
    } catch (error) {
      return unavailable(error);
    }
  });

  router.add('DELETE', '/v1/sites/:zone/:site/drain', async (req) => {
    const key = known(req);
    if (typeof key !== 'string') return key;
    const body = req.body as { by?: unknown } | undefined;
    const by = typeof body?.by === 'string' ? body.by : caller(req);
    try {
      await undrain(ctx.store, key, by, ctx.follower.snapshotContents().forced.get(key), origin(req));
      return { status: 200, body: { site: key, forced: null } };
    } catch (error) {
      return unavailable(error);
    }
  });

  router.add('POST', '/v1/sites/:zone/:site/load', async (req) => {
    // The reporter: `?by=`, else the client's address; a change of reporter is audited.
    const by = req.query.get('by') ?? caller(req);
    const refuse = async (response: AdminResponse): Promise<AdminResponse> => {
      await refuseReport(ctx.store, `${req.params.zone}/${req.params.site}`, by, (response.body as { error: string }).error, origin(req));
      return response;
    };
    const key = known(req);
    if (typeof key !== 'string') return refuse(key);
    const load = parseLoad(req.body);
    if (typeof load !== 'number') return refuse({ status: 400, body: load });
    try {
      const report = await reportLoad(ctx.store, key, load, by, ctx.follower.snapshotContents().reports.get(key), origin(req));
      return { status: 202, body: { site: key, report } };
    } catch (error) {
      return unavailable(error);
    }
  });

  router.add('GET', '/v1/audit', async (req) => {
    const limitText = req.query.get('limit');
    if (limitText !== null && !/^[1-9]\d{0,8}$/.test(limitText)) return { status: 400, body: { error: `limit ${JSON.stringify(limitText)} is not a whole number above 0` } };
    const limit = limitText === null ? undefined : Number(limitText);
    let entries;
    try {
      entries = await ctx.store.readAudit();
    } catch (error) {
      return unavailable(error);
    }
    const selected = selectAudit(entries, { site: req.query.get('site') ?? undefined, limit });
    if ('error' in selected) return { status: 400, body: selected };
    const report: AuditReport = { store: ctx.store.kind, entries: selected };
    return { status: 200, body: report };
  });
}
