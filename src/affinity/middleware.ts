/**
 * The site-affinity middleware (seed 004, Figs. 5A/5B, Appendix B) for node:http servers:
 *
 *   const affinity = siteAffinity({ zone: 'zones/app.example.com.yaml', site: 'boston', secret, hasSession });
 *   app.use(affinity);                                   // connect / express: (req, res, next)
 *   http.createServer(affinity.wrap(handler));           // a plain node:http handler
 *
 * Per request: a request in a session goes straight to the application; any other is decided
 * by decide.ts (Steps 1-3) and answered here with a redirect or the "all sites busy" page, or
 * passed on with the marker removed from req.url, so the application never sees it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { GroupModel, ZoneModel } from '../model/zone-model.js';
import { decide, type Decision, type DecideContext } from './decide.js';
import { AffinityError } from './errors.js';
import { signMarker } from './marker.js';
import { groupByTopology } from './topology.js';
import { buildLocation, parseHost, parseTarget, type RequestTarget } from './url.js';
import { affinityZone, compileZoneFile, type AffinityZone } from './zone.js';
import { durationMs } from '../util/duration.js';

/**
 * A duration as text (`60s`, `1h30m`; docs/zones.md#durations), or a JavaScript number of whole
 * milliseconds: in JavaScript code a number is milliseconds by JavaScript's own convention
 * (setTimeout, Date), unlike a YAML or JSON number.
 */
export type Duration = number | string;

export interface SiteAffinityOptions {
  /** The zone file `sitedns serve` answers (or an already compiled zone). */
  readonly zone: string | ZoneModel;
  /** "I am site X": the site id (`boston`) or its Site Name (`boston.app.example.com`). */
  readonly site: string;
  /**
   * Shared by every site of the pool; signs the markers. At least 16 bytes. A list rotates:
   * the first signs, all verify.
   */
  readonly secret: string | Buffer | readonly (string | Buffer)[];
  /** True when the request belongs to a live session here: it then bypasses everything. */
  readonly hasSession: (req: IncomingMessage) => boolean;
  /**
   * Stage 530: the proper group for this request, as a group id or Group Name; undefined or
   * null means any group (the Pool). Default: the zone's topology for the client address;
   * `byTopology()` gives that default to a hook that only refines it.
   */
  readonly properGroup?: (req: IncomingMessage, byTopology: () => string | undefined) => string | undefined | null;
  /** Stage 550: whether this site is too busy to start a new session now. Default: never. */
  readonly isBusy?: (req: IncomingMessage) => boolean;
  /** Stage 520's expiry of a marker (default 60s; a number is milliseconds). */
  readonly maxAge?: Duration;
  /** Clock difference between sites that markers tolerate (default 5s). */
  readonly clockSkew?: Duration;
  /** Name of the marker's query parameter (default `_affinity`). */
  readonly param?: string;
  /**
   * Behind a proxy: take the scheme from X-Forwarded-Proto and the client address (for the
   * topology) from the last X-Forwarded-For entry. Off by default: a client could forge them.
   */
  readonly trustProxy?: boolean;
  /** Retry-After of the "all sites busy" answer (default 30s). */
  readonly retryAfter?: Duration;
  /** HTML of the "all sites busy" page (default: a plain page). */
  readonly busyPage?: string;
  /** Called with every decision (not for requests in a session): logs, metrics. */
  readonly onDecision?: (decision: Decision, req: IncomingMessage) => void;
  /** Called when a hook throws under `wrap()` (the client gets a 500). Default: console.error. */
  readonly onError?: (error: unknown, req: IncomingMessage) => void;
  /** Clock (ms since the epoch), for tests. */
  readonly now?: () => number;
}

export type Next = (error?: unknown) => void;
export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface SiteAffinity {
  (req: IncomingMessage, res: ServerResponse, next: Next): void;
  /** Wraps a plain node:http request handler. */
  wrap(handler: Handler): Handler;
  /** What the middleware would do with this request (no response written): for tests and explain. */
  decide(req: IncomingMessage): Decision | { readonly kind: 'session' };
  readonly zone: AffinityZone;
}

export const DEFAULT_PARAM = '_affinity';
export const MIN_SECRET_BYTES = 16;

export const DEFAULT_BUSY_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>All sites busy</title></head>
<body><h1>All sites are busy</h1><p>Every site of this service is too busy to start a new session right now. Please try again in a little while.</p></body></html>
`;

function optionMs(value: Duration | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new AffinityError('EAFFINITY_OPTION', `${option}: ${value} is not a duration: a number is whole milliseconds, 0 or more`);
  }
  try {
    return durationMs(value);
  } catch (error) {
    throw new AffinityError('EAFFINITY_OPTION', `${option}: ${(error as Error).message}`);
  }
}

function secretsOf(secret: SiteAffinityOptions['secret']): Buffer[] {
  const list = (Array.isArray(secret) ? secret : [secret]) as (string | Buffer)[];
  if (list.length === 0) throw new AffinityError('EAFFINITY_SECRET', 'secret: at least one secret is needed');
  return list.map((s, i) => {
    const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.isBuffer(s) ? s : undefined;
    if (!bytes || bytes.length < MIN_SECRET_BYTES) {
      throw new AffinityError('EAFFINITY_SECRET', `secret${list.length > 1 ? `[${i}]` : ''}: at least ${MIN_SECRET_BYTES} bytes, shared by every site of the pool`);
    }
    return bytes;
  });
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** Hooks are synchronous so a request never waits on them; compute load elsewhere, read it here. */
function syncResult<T>(value: T, hook: string): T {
  if (isThenable(value)) throw new AffinityError('EAFFINITY_HOOK', `${hook} returned a Promise; hooks must answer synchronously (keep the answer in memory and update it elsewhere)`);
  return value;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Host, or HTTP/2's :authority under the node:http2 compatibility API. */
function hostHeaderOf(req: IncomingMessage): string | undefined {
  return firstHeader(req.headers.host) ?? firstHeader(req.headers[':authority'] as string | string[] | undefined);
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

export function siteAffinity(options: SiteAffinityOptions): SiteAffinity {
  if (!options || typeof options !== 'object') throw new AffinityError('EAFFINITY_OPTION', 'siteAffinity(options): options are required');
  if (typeof options.hasSession !== 'function') throw new AffinityError('EAFFINITY_OPTION', 'hasSession: a function (req) => boolean is required; without it every request would look like a new session');
  if (typeof options.site !== 'string' || options.site === '') throw new AffinityError('EAFFINITY_OPTION', 'site: "I am site X" is required (a site id or Site Name of the zone)');
  if (options.zone === undefined) throw new AffinityError('EAFFINITY_OPTION', 'zone: the zone file is required');
  const param = options.param ?? DEFAULT_PARAM;
  if (!/^[A-Za-z0-9_.~-]{1,64}$/.test(param)) throw new AffinityError('EAFFINITY_OPTION', `param: "${param}" must be 1-64 URL-safe characters`);

  const compiled = typeof options.zone === 'string' ? compileZoneFile(options.zone) : options.zone;
  const zone = affinityZone(compiled, options.site);
  const ctx: DecideContext = {
    zone,
    keys: { secrets: secretsOf(options.secret), zone: compiled.origin },
    timing: { maxAgeMs: optionMs(options.maxAge, 60_000, 'maxAge'), clockSkewMs: optionMs(options.clockSkew, 5_000, 'clockSkew') },
  };
  const retryAfterSeconds = String(Math.ceil(optionMs(options.retryAfter, 30_000, 'retryAfter') / 1000));
  const busyPage = Buffer.from(options.busyPage ?? DEFAULT_BUSY_PAGE, 'utf8');
  const now = options.now ?? Date.now;
  const trustProxy = options.trustProxy === true;

  const clientAddress = (req: IncomingMessage): string | undefined => {
    if (trustProxy) {
      const forwarded = firstHeader(req.headers['x-forwarded-for']);
      // The last entry is the one our proxy added; earlier ones are whatever the client sent.
      const last = forwarded?.split(',').pop()?.trim();
      if (last) return last;
    }
    return req.socket?.remoteAddress;
  };

  const schemeOf = (req: IncomingMessage): 'http' | 'https' => {
    if (trustProxy) {
      const proto = firstHeader(req.headers['x-forwarded-proto'])?.split(',')[0].trim().toLowerCase();
      if (proto === 'http' || proto === 'https') return proto;
    }
    return (req.socket as TLSSocket | undefined)?.encrypted ? 'https' : 'http';
  };

  const properGroupOf = (req: IncomingMessage): GroupModel | undefined => {
    const topology = () => groupByTopology(zone.pool, clientAddress(req));
    if (!options.properGroup) return topology();
    const answer = syncResult(
      options.properGroup(req, () => topology()?.id),
      'properGroup',
    );
    if (answer === undefined || answer === null) return undefined;
    const group = typeof answer === 'string' ? zone.groupByKey.get(answer.toLowerCase().replace(/\.$/, '')) : undefined;
    if (!group) throw new AffinityError('EAFFINITY_HOOK', `properGroup returned ${JSON.stringify(answer)}, not a group of zone ${compiled.origin}`);
    return group;
  };

  /** The decision, with the request target as the application sees it and as the client sent it. */
  type Prepared = { decision: Decision | { readonly kind: 'session' }; target: RequestTarget; fullTarget: RequestTarget };

  const prepare = (req: IncomingMessage): Prepared | undefined => {
    // Express mounts rewrite req.url; the whole path is in originalUrl.
    const original = (req as { originalUrl?: string }).originalUrl;
    const target = parseTarget(req.url ?? '/', param);
    const fullTarget = typeof original === 'string' ? parseTarget(original, param) : target;
    if (!target || !fullTarget) return undefined; // "*" and CONNECT targets: not a page
    if (syncResult(options.hasSession(req), 'hasSession')) return { decision: { kind: 'session' }, target, fullTarget };
    const decision = decide(
      ctx,
      { host: parseHost(hostHeaderOf(req))?.name, markers: fullTarget.markers, nowMs: now() },
      { properGroup: () => properGroupOf(req), isBusy: () => (options.isBusy ? syncResult(options.isBusy(req), 'isBusy') === true : false) },
    );
    return { decision, target, fullTarget };
  };

  /** Removes markers from what the application sees (a session's URL may still carry one). */
  const cleanRequest = (req: IncomingMessage, p: Prepared) => {
    if (p.target.markers.length > 0) req.url = p.target.clean;
    const r = req as { originalUrl?: string; query?: unknown };
    if (typeof r.originalUrl === 'string' && p.fullTarget.markers.length > 0) r.originalUrl = p.fullTarget.clean;
    // Express 4 parses req.query before any middleware runs.
    if (r.query && typeof r.query === 'object' && Object.prototype.hasOwnProperty.call(r.query, param)) delete (r.query as Record<string, unknown>)[param];
  };

  const respond = (req: IncomingMessage, res: ServerResponse, decision: Decision, p: Prepared) => {
    const headOnly = req.method === 'HEAD';
    if (decision.kind === 'busy') {
      // Stage 570. The seed returns a 200 page; 503 + Retry-After tells clients and crawlers the truth.
      res.writeHead(503, {
        'Retry-After': retryAfterSeconds,
        'Cache-Control': 'no-store',
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': busyPage.length,
        'X-Affinity-Stage': String(decision.stage),
      });
      res.end(headOnly ? undefined : busyPage);
      return;
    }
    if (decision.kind !== 'redirect') return;
    const host = parseHost(hostHeaderOf(req));
    const marker = decision.marker ? { param, value: signMarker(ctx.keys, decision.marker) } : undefined;
    const location = buildLocation(schemeOf(req), decision.host, host?.port, p.fullTarget.path, p.fullTarget.query, marker);
    const body = Buffer.from(`<!doctype html>\n<title>Moved</title>\n<p>Continue at <a href="${escapeHtml(location)}">${escapeHtml(location)}</a>.</p>\n`, 'utf8');
    // Stages 540/545/595 redirect with "HTTP/1.0 3xx and the Location header". 302 as Appendix B
    // for GET and HEAD; 307 for other methods keeps the method and body (RFC 9110 §15.4.8).
    res.writeHead(req.method === 'GET' || headOnly ? 302 : 307, {
      Location: location,
      // The answer depends on the time and on the marker: never cache it (RFC 9111 §5.2.2.5).
      'Cache-Control': 'no-store',
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': body.length,
      'X-Affinity-Stage': String(decision.stage),
    });
    res.end(headOnly ? undefined : body);
  };

  /** Runs operation 500; returns true when the application should handle the request. */
  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const p = prepare(req);
    if (!p) return true;
    if (p.decision.kind !== 'session') options.onDecision?.(p.decision, req);
    if (p.decision.kind === 'session' || p.decision.kind === 'pass') {
      cleanRequest(req, p);
      return true;
    }
    respond(req, res, p.decision, p);
    return false;
  };

  const middleware = ((req: IncomingMessage, res: ServerResponse, next: Next) => {
    let pass: boolean;
    try {
      pass = handle(req, res);
    } catch (error) {
      next(error);
      return;
    }
    if (pass) next();
  }) as SiteAffinity;

  middleware.wrap = (handler: Handler): Handler => (req, res) => {
    let pass: boolean;
    try {
      pass = handle(req, res);
    } catch (error) {
      (options.onError ?? ((e: unknown) => console.error(e)))(error, req);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end('internal error\n');
      return;
    }
    if (pass) handler(req, res);
  };
  middleware.decide = (req: IncomingMessage) => prepare(req)?.decision ?? { kind: 'session' as const };
  Object.defineProperty(middleware, 'zone', { value: zone, enumerable: true });
  return middleware;
}
