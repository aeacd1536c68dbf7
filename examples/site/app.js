/**
 * A tiny stateful web application behind the site-affinity middleware (sitedns/affinity): it
 * counts page views per session, and keeps its sessions in memory, so a client that wandered to
 * another site would lose its count. That is exactly the state seed 004 keeps a client next to.
 *
 * Plain JavaScript so it runs with `node` after `npm run build` (it imports the built package).
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { siteAffinity } from 'sitedns/affinity';

const COOKIE = 'sid';

/** Reads one cookie. (A whole cookie library is more than an example needs: name=value pairs split on ";".) */
function cookieValue(req, name) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * @param {object} o
 * @param {string} o.site        "I am site X" (site id or Site Name in the zone)
 * @param {string} o.zone        the zone file sitedns serves
 * @param {string|string[]} o.secret  shared by every site (at least 16 bytes)
 * @param {number} [o.capacity]  sessions this site holds before it calls itself busy (default 100)
 * @param {number} [o.sessionTtlMs]  idle sessions expire after this (default 30 minutes)
 * @param {string|number} [o.maxAge]  marker expiry (default 60s)
 * @param {string|number} [o.clockSkew]  tolerated clock difference (default 5s)
 * @param {boolean} [o.trustProxy]  trust X-Forwarded-Proto/-For (behind a proxy only)
 * @param {(line: object) => void} [o.log]
 */
export function createSiteApp(o) {
  const capacity = o.capacity ?? 100;
  const sessionTtlMs = o.sessionTtlMs ?? 30 * 60_000;
  const log = o.log ?? (() => {});
  /** id -> { views, lastSeen } */
  const sessions = new Map();
  let forcedBusy = false;

  const sessionOf = (req) => {
    const id = cookieValue(req, COOKIE);
    const session = id === undefined ? undefined : sessions.get(id);
    if (!session) return undefined;
    if (Date.now() - session.lastSeen > sessionTtlMs) {
      sessions.delete(id);
      return undefined;
    }
    return { id, session };
  };

  const affinity = siteAffinity({
    zone: o.zone,
    site: o.site,
    secret: o.secret,
    maxAge: o.maxAge,
    clockSkew: o.clockSkew,
    trustProxy: o.trustProxy,
    hasSession: (req) => sessionOf(req) !== undefined,
    // Stage 550: busy when full, or when an operator said so (SIGUSR2 in server.js).
    isBusy: () => forcedBusy || sessions.size >= capacity,
    onDecision: (decision, req) => log({ msg: 'affinity', stage: decision.stage, kind: decision.kind, to: decision.host, reason: decision.reason, host: req.headers.host, url: req.url }),
  });
  const site = affinity.zone.self;

  /** The application: it only ever sees requests the middleware let through, without markers. */
  const page = (req, res) => {
    let found = sessionOf(req);
    const headers = { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'X-Site': site.id };
    if (!found) {
      // Stage 588: the new session starts here.
      found = { id: randomBytes(18).toString('base64url'), session: { views: 0, lastSeen: Date.now() } };
      sessions.set(found.id, found.session);
      // Host-only cookie: it belongs to this Site Name and never reaches another site.
      headers['Set-Cookie'] = `${COOKIE}=${found.id}; Path=/; HttpOnly; SameSite=Lax`;
      headers['X-Session-New'] = '1';
    }
    found.session.views += 1;
    found.session.lastSeen = Date.now();
    headers['X-Session-Views'] = String(found.session.views);
    const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(site.id)}</title></head>
<body><h1>Site ${escapeHtml(site.id)}</h1>
<p>Page views in this session: <strong>${found.session.views}</strong></p>
<p>You asked for <code>${escapeHtml(req.url)}</code> on <code>${escapeHtml(req.headers.host ?? '')}</code>.</p>
<p><a href="/">Again</a> · <a href="/other?x=1">another page</a></p></body></html>
`;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const guarded = affinity.wrap(page);

  const load = () => {
    const now = Date.now();
    for (const [id, s] of sessions) if (now - s.lastSeen > sessionTtlMs) sessions.delete(id);
    return sessions.size;
  };

  const server = http.createServer((req, res) => {
    // The prober asks by address; health sits outside the affinity flow.
    if (req.url === '/health' || req.url?.startsWith('/health?')) {
      const body = JSON.stringify({ site: site.id, load: load(), capacity, busy: forcedBusy || sessions.size >= capacity });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(body);
      return;
    }
    guarded(req, res);
  });
  const sweep = setInterval(load, 60_000);
  sweep.unref();
  server.on('close', () => clearInterval(sweep));

  return {
    server,
    site,
    sessions,
    get busy() {
      return forcedBusy;
    },
    set busy(value) {
      forcedBusy = value;
    },
  };
}
