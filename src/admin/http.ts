/**
 * The admin HTTP listener (`--http`, loopback by default): a tiny router on node:http that the
 * components register their routes with (status/drain/reports from the state store, metrics,
 * health, explain). Anything that changes state needs the bearer token when one is configured;
 * tokens are compared in constant time.
 */
import http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface AdminRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Path parameters from `:name` segments. */
  readonly params: Record<string, string>;
  readonly headers: http.IncomingHttpHeaders;
  /** Parsed JSON body (POST/PUT), or undefined. */
  readonly body: unknown;
  readonly remoteAddress: string;
}

export interface AdminResponse {
  status: number;
  /** An object is sent as JSON; a string as text/plain (or `contentType`). */
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export type RouteHandler = (req: AdminRequest) => AdminResponse | Promise<AdminResponse>;

interface Route {
  method: string;
  segments: string[];
  handler: RouteHandler;
  /** Changes state: needs the token when one is set. */
  mutating: boolean;
  /** A page a browser navigates to: a 401 asks for Basic credentials, which a browser can send. */
  page: boolean;
}

export const MAX_BODY_BYTES = 64 * 1024;

export class AdminRouter {
  private readonly routes: Route[] = [];

  /** `path` like `/v1/sites/:zone/:site/load`. */
  add(method: string, path: string, handler: RouteHandler, options: { mutating?: boolean; page?: boolean } = {}): void {
    this.routes.push({ method: method.toUpperCase(), segments: path.split('/').filter(Boolean), handler, mutating: options.mutating ?? method.toUpperCase() !== 'GET', page: options.page ?? false });
  }

  match(method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
    const parts = path.split('/').filter(Boolean);
    let methodMismatch = false;
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = route.segments[i];
        if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(parts[i]);
        else ok = seg === parts[i];
      }
      if (!ok) continue;
      if (route.method !== method) {
        methodMismatch = true;
        continue;
      }
      return { route, params };
    }
    return methodMismatch ? 'method' : undefined;
  }
}

export interface AdminServerOptions {
  host: string;
  port: number;
  /** Bearer token required for mutating routes (and for everything but health when not on loopback). */
  token?: string;
  onError?: (error: Error) => void;
}

export interface AdminServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * `Authorization: Bearer <token>`; for reads also Basic (RFC 7617) with the token as the password
 * and any user name: a browser cannot add a bearer token to a page it navigates to (the status
 * page), but asks for Basic credentials on a 401 and sends them with the page's own requests.
 * Never for a change: a browser also sends cached Basic credentials with a request another site
 * makes it send (cross-site request forgery), and a bearer token it never sends on its own.
 */
function tokenMatches(expected: string, header: string | undefined, basic: boolean): boolean {
  const given = presentedToken(header, basic);
  if (given === undefined) return false;
  // Hash both sides so the comparison is constant-time whatever the lengths.
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

function presentedToken(header: string | undefined, basic: boolean): string | undefined {
  if (header === undefined) return undefined;
  if (header.startsWith('Bearer ')) return header.slice(7);
  if (!basic || !header.startsWith('Basic ')) return undefined;
  const credentials = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  return colon < 0 ? undefined : credentials.slice(colon + 1);
}

export async function startAdminServer(router: AdminRouter, options: AdminServerOptions): Promise<AdminServer> {
  if (!isLoopback(options.host) && !options.token) {
    throw new Error(`the admin listener on ${options.host} is not loopback: set --http-token (SITEDNS_HTTP_TOKEN)`);
  }
  const server = http.createServer((req, res) => {
    handle(router, options, req, res).catch((error) => {
      options.onError?.(error as Error);
      if (!res.headersSent) send(res, { status: 500, body: { error: 'internal error' } });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    address: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

/** Whether every `%` of the path starts a valid UTF-8 escape (RFC 3986 §2.1): route parameters are decoded. */
function wellEncoded(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

async function handle(router: AdminRouter, options: AdminServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const method = (req.method ?? 'GET').toUpperCase();
  if (!wellEncoded(url.pathname)) return send(res, { status: 400, body: { error: 'the path has a malformed %-encoding' } });
  const found = router.match(method, url.pathname);
  if (found === undefined) return send(res, { status: 404, body: { error: 'not found' } });
  if (found === 'method') return send(res, { status: 405, body: { error: 'method not allowed' } });
  const needsToken = options.token !== undefined && (found.route.mutating || !isLoopback(options.host));
  const isHealth = url.pathname === '/healthz' || url.pathname === '/readyz';
  if (needsToken && !isHealth && !tokenMatches(options.token!, req.headers.authorization, !found.route.mutating)) {
    const challenge = found.route.page ? 'Basic realm="sitedns admin", charset="UTF-8"' : 'Bearer';
    return send(res, { status: 401, body: { error: 'bearer token required' }, headers: { 'www-authenticate': challenge } });
  }
  let body: unknown;
  if (method === 'POST' || method === 'PUT' || method === 'DELETE') {
    const raw = await readBody(req);
    if (raw === null) return send(res, { status: 413, body: { error: `body over ${MAX_BODY_BYTES} bytes` }, headers: { connection: 'close' } });
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        return send(res, { status: 400, body: { error: 'body is not JSON' } });
      }
    }
  }
  const response = await found.route.handler({
    method,
    path: url.pathname,
    query: url.searchParams,
    params: found.params,
    headers: req.headers,
    body,
    remoteAddress: req.socket.remoteAddress ?? '',
  });
  send(res, response);
}

/** How much of an over-size body is read and thrown away so the client reads its 413 rather than a reset. */
const MAX_DISCARD_BYTES = 16 * MAX_BODY_BYTES;

/**
 * The body as text, or null when it is over MAX_BODY_BYTES. An over-size body is refused from
 * its Content-Length when it has one; otherwise the rest is read and dropped (up to
 * MAX_DISCARD_BYTES, then the connection is closed), because a server that closes while the
 * client still sends makes the client see a reset instead of the answer (RFC 9110 §15.5.14).
 */
function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES;
    if (over) resolve(null);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (!over && size > MAX_BODY_BYTES) {
        over = true;
        chunks.length = 0;
        resolve(null);
      }
      if (over) {
        if (size > MAX_DISCARD_BYTES) req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, r: AdminResponse): void {
  const isText = typeof r.body === 'string';
  const payload = isText ? (r.body as string) : JSON.stringify(r.body, null, 2) + '\n';
  res.writeHead(r.status, {
    'content-type': r.contentType ?? (isText ? 'text/plain; charset=utf-8' : 'application/json'),
    'cache-control': 'no-store',
    ...r.headers,
  });
  res.end(payload);
}

/** Client side for the CLI's admin commands (status, drain, report) against the embedded default. */
export async function adminRequest(base: string, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(new URL(path, base.includes('://') ? base : `http://${base}`), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body: parsed };
}
