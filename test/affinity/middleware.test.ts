/** The middleware on a real node:http server on loopback: responses, URL hygiene, hooks, both styles. */
import t from 'tap';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { siteAffinity, type SiteAffinityOptions } from '../../src/affinity/index.js';
import { AffinityError } from '../../src/affinity/errors.js';
import { signMarker } from '../../src/affinity/marker.js';

const ZONE = 'test/fixtures/app.example.com.yaml';
const SECRET = 'a shared secret of the whole pool';
const NOW = 1_800_000_000_000;
const KEYS = { secrets: [Buffer.from(SECRET)], zone: 'app.example.com' };
const fresh = (to: string, extra = {}) => signMarker(KEYS, { issuedAt: Math.floor(NOW / 1000), to, ...extra });

interface Seen {
  url: string;
  originalUrl?: string;
  query?: unknown;
}

async function serve(t: { teardown(fn: () => unknown): void }, opts: Partial<SiteAffinityOptions> & { style?: 'connect' | 'wrap'; mount?: string } = {}) {
  const seen: Seen[] = [];
  const affinity = siteAffinity({ zone: ZONE, site: 'boston', secret: SECRET, now: () => NOW, hasSession: (req) => /sid=live/.test(req.headers.cookie ?? ''), ...opts });
  const app = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const r = req as any;
    seen.push({ url: req.url!, originalUrl: r.originalUrl, query: r.query });
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`app saw ${req.url}`);
  };
  const server =
    opts.style === 'wrap'
      ? http.createServer(affinity.wrap(app))
      : http.createServer((req, res) => {
          const r = req as any;
          if (opts.mount && req.url!.startsWith(opts.mount)) {
            // What express does for app.use('/mount', ...): originalUrl keeps the whole target.
            r.originalUrl = req.url;
            req.url = req.url!.slice(opts.mount.length) || '/';
          }
          // express 4 parses the query before any middleware.
          r.query = Object.fromEntries(new URL(req.url!, 'http://x').searchParams);
          affinity(req, res, (err?: unknown) => {
            if (err) {
              res.writeHead(500, { 'Content-Type': 'text/plain' });
              res.end(`error: ${(err as AffinityError).code}`);
              return;
            }
            app(req, res);
          });
        });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  return { port, seen, affinity };
}

async function request(port: number, host: string | undefined, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers, setHost: host !== undefined });
  if (host !== undefined) req.setHeader('Host', host);
  req.end(opts.body);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let body = '';
  for await (const chunk of res) body += chunk;
  return { status: res.statusCode!, headers: res.headers, body };
}

t.test('connect style: lock-down, redistribution, pass with the marker removed', async (t) => {
  const { port, seen } = await serve(t);
  // Step 1: Pool Name -> this Site Name with a marker; path, query and port preserved.
  let r = await request(port, 'app.example.com:8080', '/shop/cart?item=7&q=a%20b+c');
  t.equal(r.status, 302);
  t.equal(r.headers['x-affinity-stage'], '540');
  t.equal(r.headers['cache-control'], 'no-store');
  t.equal(r.headers.location, `http://boston.app.example.com:8080/shop/cart?item=7&q=a%20b+c&_affinity=${fresh('boston')}`);
  t.match(r.body, /Continue at <a href="http:\/\/boston\.app\.example\.com:8080\/shop\/cart\?item=7&amp;q=a%20b\+c&amp;_affinity=/);
  t.equal(seen.length, 0, 'the application saw nothing');

  // Old markers never pile up: a URL with two stale markers gets exactly one fresh one.
  r = await request(port, 'americas.app.example.com', `/x?_affinity=${fresh('chicago')}&a=1&_affinity=junk`);
  t.equal(r.headers.location, `http://boston.app.example.com/x?a=1&_affinity=${fresh('boston')}`);

  // Step 2: the Site Name without a marker -> the proper Group Name (default group: americas).
  r = await request(port, 'boston.app.example.com', '/shop?x=1');
  t.equal(r.status, 302);
  t.equal(r.headers['x-affinity-stage'], '545');
  t.equal(r.headers.location, 'http://americas.app.example.com/shop?x=1');

  // Step 3 not busy: pass; the application sees the URL without the marker.
  r = await request(port, 'boston.app.example.com', `/shop/cart?item=7&_affinity=${fresh('boston')}&q=a%20b+c`);
  t.equal(r.status, 200);
  t.same(seen.at(-1), { url: '/shop/cart?item=7&q=a%20b+c', originalUrl: undefined, query: { item: '7', q: 'a b c' } }, 'marker gone from url and the parsed query');

  // In a session: everything bypassed, whatever the name; a stale marker is still hidden.
  r = await request(port, 'app.example.com', `/in/session?_affinity=${fresh('chicago')}`, { headers: { Cookie: 'sid=live' } });
  t.equal(r.status, 200);
  t.equal(seen.at(-1)!.url, '/in/session');
});

t.test('methods: 302 for GET/HEAD, 307 keeps other methods; HEAD has no body', async (t) => {
  const { port } = await serve(t);
  let r = await request(port, 'app.example.com', '/form', { method: 'POST', body: 'a=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  t.equal(r.status, 307);
  r = await request(port, 'app.example.com', '/page', { method: 'HEAD' });
  t.equal(r.status, 302);
  t.equal(r.body, '');
  t.ok(r.headers.location);
});

t.test('scheme: from the socket, X-Forwarded-Proto only with trustProxy', async (t) => {
  const plain = await serve(t);
  let r = await request(plain.port, 'app.example.com', '/', { headers: { 'X-Forwarded-Proto': 'https' } });
  t.match(r.headers.location, /^http:\/\/boston\./, 'ignored by default');
  const proxied = await serve(t, { trustProxy: true });
  r = await request(proxied.port, 'app.example.com', '/', { headers: { 'X-Forwarded-Proto': 'https' } });
  t.match(r.headers.location, /^https:\/\/boston\.app\.example\.com\/\?_affinity=/);
  r = await request(proxied.port, 'app.example.com', '/', { headers: { 'X-Forwarded-Proto': 'gopher' } });
  t.match(r.headers.location, /^http:\/\//, 'only http or https');
  // X-Forwarded-For picks the topology group: a European client belongs to Europe.
  r = await request(proxied.port, 'app.example.com', '/', { headers: { 'X-Forwarded-For': '203.0.113.1, 198.51.100.20' } });
  t.equal(r.headers.location, 'http://europe.app.example.com/', 'stage 545: the last entry (added by our proxy) decides');
  r = await request(plain.port, 'app.example.com', '/', { headers: { 'X-Forwarded-For': '198.51.100.20' } });
  t.match(r.headers.location, /^http:\/\/boston\./, 'without trustProxy the socket address decides');
});

t.test('stage 570: 503 with Retry-After and the busy page; overflow redirect when others remain', async (t) => {
  // Boston is busy: its group (americas: boston, chicago) continues at Chicago.
  const busy = await serve(t, { isBusy: () => true, retryAfter: '45s' });
  let r = await request(busy.port, 'boston.app.example.com', `/a?b=1&_affinity=${fresh('boston')}`);
  t.equal(r.status, 302);
  t.equal(r.headers['x-affinity-stage'], '595');
  t.equal(r.headers.location, `http://chicago.app.example.com/a?b=1&_affinity=${fresh('chicago', { initial: 'boston', group: 'americas' })}`);
  // A chain that began at Chicago reaches busy Boston: Boston's next is Chicago, stage 585 -> 570.
  r = await request(busy.port, 'boston.app.example.com', `/a?_affinity=${fresh('boston', { initial: 'chicago', group: 'americas' })}`);
  t.equal(r.status, 503);
  t.equal(r.headers['retry-after'], '45');
  t.equal(r.headers['cache-control'], 'no-store');
  t.match(r.headers['content-type'], /^text\/html/);
  t.match(r.body, /All sites are busy/);
  r = await request(busy.port, 'boston.app.example.com', `/a?_affinity=${fresh('boston', { initial: 'chicago', group: 'americas' })}`, { method: 'HEAD' });
  t.equal(r.status, 503);
  t.equal(r.body, '');
  const custom = await serve(t, { isBusy: () => true, busyPage: '<p>Come back soon</p>' });
  r = await request(custom.port, 'boston.app.example.com', `/?_affinity=${fresh('boston', { initial: 'chicago', group: 'americas' })}`);
  t.equal(r.body, '<p>Come back soon</p>');
  t.equal(r.headers['retry-after'], '30', 'default Retry-After');
  const numeric = await serve(t, { isBusy: () => true, retryAfter: 12_000 });
  r = await request(numeric.port, 'boston.app.example.com', `/?_affinity=${fresh('boston', { initial: 'chicago', group: 'americas' })}`);
  t.equal(r.headers['retry-after'], '12', 'a JavaScript number option is milliseconds');
});

t.test('wrap style around a plain handler', async (t) => {
  const { port, seen } = await serve(t, { style: 'wrap' });
  let r = await request(port, 'app.example.com', '/w?z=1');
  t.equal(r.status, 302);
  r = await request(port, 'boston.app.example.com', `/w?_affinity=${fresh('boston')}&z=1`);
  t.equal(r.status, 200);
  t.equal(r.body, 'app saw /w?z=1');
  t.equal(seen.length, 1);
});

t.test('express-style mount: the Location uses the whole path; both urls are cleaned', async (t) => {
  const { port, seen } = await serve(t, { mount: '/app' });
  let r = await request(port, 'app.example.com', '/app/page?x=1');
  t.equal(r.headers.location, `http://boston.app.example.com/app/page?x=1&_affinity=${fresh('boston')}`);
  r = await request(port, 'boston.app.example.com', `/app/page?x=1&_affinity=${fresh('boston')}`);
  t.equal(r.status, 200);
  t.same(seen.at(-1), { url: '/page?x=1', originalUrl: '/app/page?x=1', query: { x: '1' } });
});

t.test('hooks: properGroup by id, by name, refining the topology; errors reach next() or a 500', async (t) => {
  const byId = await serve(t, { properGroup: () => 'europe' });
  t.equal((await request(byId.port, 'app.example.com', '/')).headers.location, 'http://europe.app.example.com/');
  const byName = await serve(t, { properGroup: () => 'Europe.App.Example.com.' });
  t.equal((await request(byName.port, 'app.example.com', '/')).headers.location, 'http://europe.app.example.com/');
  let asked: string | undefined;
  const refining = await serve(t, { properGroup: (req, byTopology) => ((asked = byTopology()), req.headers['accept-language']?.startsWith('fr') ? 'europe' : byTopology()) });
  t.equal((await request(refining.port, 'app.example.com', '/', { headers: { 'Accept-Language': 'fr-CH' } })).headers.location, 'http://europe.app.example.com/');
  t.equal(asked, 'americas', 'byTopology() gives the zone default');
  t.match((await request(refining.port, 'app.example.com', '/')).headers.location, /^http:\/\/boston\./);
  const none = await serve(t, { properGroup: () => null });
  t.equal((await request(none.port, 'boston.app.example.com', '/')).headers.location, 'http://app.example.com/', 'no group: the Pool Name');

  const unknown = await serve(t, { properGroup: () => 'asia' });
  let r = await request(unknown.port, 'app.example.com', '/');
  t.equal(r.status, 500);
  t.equal(r.body, 'error: EAFFINITY_HOOK');
  const asyncHook = await serve(t, { hasSession: (async () => false) as any });
  r = await request(asyncHook.port, 'app.example.com', '/');
  t.equal(r.body, 'error: EAFFINITY_HOOK');
  const errors: unknown[] = [];
  const wrapped = await serve(t, { style: 'wrap', isBusy: (() => Promise.resolve(true)) as any, onError: (e) => errors.push(e) });
  r = await request(wrapped.port, 'boston.app.example.com', `/?_affinity=${fresh('boston')}`);
  t.equal(r.status, 500);
  t.equal((errors[0] as AffinityError).code, 'EAFFINITY_HOOK');
});

/** An HTTP/1.0 request without a Host header (node's client always sends one). */
async function http10(port: number, path: string): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  socket.end(`GET ${path} HTTP/1.0\r\n\r\n`);
  let text = '';
  for await (const chunk of socket) text += chunk;
  return text;
}

t.test('Host absent (HTTP/1.0) and odd targets', async (t) => {
  const { port, seen, affinity } = await serve(t);
  let text = await http10(port, '/old');
  t.match(text, /^HTTP\/1\.1 302 [^]*X-Affinity-Stage: 545\r\n/, 'no Host: Appendix B skips step 1, step 2 redirects');
  t.match(text, /Location: http:\/\/americas\.app\.example\.com\/old\r\n/);
  text = await http10(port, `/old?_affinity=${fresh('boston')}`);
  t.match(text, /^HTTP\/1\.1 200 /);
  t.equal(seen.at(-1)!.url, '/old');
  let r = await request(port, 'app.example.com', '*', { method: 'OPTIONS' });
  t.equal(r.status, 200, '"*" is not a page: passed through');
  t.equal(seen.at(-1)!.url, '*');
  const fake = { url: '/', headers: { host: 'app.example.com' }, socket: { remoteAddress: '198.51.100.1' } } as unknown as http.IncomingMessage;
  t.same(affinity.decide(fake), { kind: 'redirect', stage: 545, host: 'europe.app.example.com', marker: undefined, reason: 'pool name, proper group is europe' });
});

t.test('configuration errors are coded and say what to fix', async (t) => {
  const base = { zone: ZONE, site: 'boston', secret: SECRET, hasSession: () => false };
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return [(e as AffinityError).code, (e as Error).message];
    }
    return ['none', ''];
  };
  t.match(code(() => siteAffinity({ ...base, site: 'paris' })), ['EAFFINITY_SITE', /no site "paris".*boston \(boston\.app\.example\.com\)/]);
  t.equal(code(() => siteAffinity({ ...base, site: 'Chicago.App.Example.Com.' }))[0], 'none', 'a Site Name works as well as an id');
  t.match(code(() => siteAffinity({ ...base, secret: 'short' })), ['EAFFINITY_SECRET', /16 bytes/]);
  t.match(code(() => siteAffinity({ ...base, secret: [] })), ['EAFFINITY_SECRET']);
  t.match(code(() => siteAffinity({ ...base, hasSession: undefined as any })), ['EAFFINITY_OPTION', /hasSession/]);
  t.match(code(() => siteAffinity({ ...base, maxAge: 'soon' })), ['EAFFINITY_OPTION', /maxAge/]);
  t.match(code(() => siteAffinity({ ...base, clockSkew: '5000' })), ['EAFFINITY_OPTION', /^clockSkew: "5000" is not a duration: give it a unit \(d, h, m, s, ms\)/], 'text without a unit');
  t.match(code(() => siteAffinity({ ...base, retryAfter: -1 })), ['EAFFINITY_OPTION', /^retryAfter: -1 is not a duration: a number is whole milliseconds/]);
  t.match(code(() => siteAffinity({ ...base, maxAge: 1.5 })), ['EAFFINITY_OPTION', /^maxAge: 1\.5 is not a duration: a number is whole milliseconds/]);
  t.equal(code(() => siteAffinity({ ...base, maxAge: '1m30s', clockSkew: 5000, retryAfter: '0.5m' }))[0], 'none', 'the duration syntax of docs/zones.md, or milliseconds');
  t.match(code(() => siteAffinity({ ...base, param: 'a b' })), ['EAFFINITY_OPTION', /param/]);
  t.match(code(() => siteAffinity({ ...base, zone: 'test/fixtures/missing.yaml' })), ['EAFFINITY_ZONE', /missing\.yaml/]);
  t.match(code(() => siteAffinity({ ...base, zone: 'package.json' })), ['EAFFINITY_ZONE', /package\.json:\d+: /]);
});

t.test('scheme: https on a TLS socket, port kept unless it is the default', async (t) => {
  const fixtures = new URL('./fixtures/', import.meta.url);
  const affinity = siteAffinity({ zone: ZONE, site: 'boston', secret: SECRET, now: () => NOW, hasSession: () => false });
  const server = https.createServer(
    { key: readFileSync(new URL('test-key.pem', fixtures)), cert: readFileSync(new URL('test-cert.pem', fixtures)) },
    affinity.wrap((_req, res) => res.end('ok')),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const get = async (host: string) => {
    // A self-signed test certificate: verification is beside the point here.
    const req = https.get({ host: '127.0.0.1', port, path: '/secure?a=1', headers: { Host: host }, rejectUnauthorized: false });
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.resume();
    return res.headers.location;
  };
  t.equal(await get('app.example.com'), `https://boston.app.example.com/secure?a=1&_affinity=${fresh('boston')}`);
  t.equal(await get('app.example.com:443'), `https://boston.app.example.com/secure?a=1&_affinity=${fresh('boston')}`, 'default port dropped');
  t.equal(await get('app.example.com:8443'), `https://boston.app.example.com:8443/secure?a=1&_affinity=${fresh('boston')}`);
});
