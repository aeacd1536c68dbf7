/** examples/site: the stateful example application (it imports the built sitedns/affinity). */
import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
// @ts-expect-error: plain JavaScript example without type declarations
import { createSiteApp } from '../../examples/site/app.js';

const SECRET = 'example test secret, 16+ bytes';

async function start(t: { teardown(fn: () => unknown): void }, opts: Record<string, unknown> = {}) {
  const logs: any[] = [];
  const app = createSiteApp({ site: 'geneva', zone: 'test/fixtures/app.example.com.yaml', secret: SECRET, log: (l: unknown) => logs.push(l), ...opts });
  app.server.listen(0, '127.0.0.1');
  await once(app.server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => app.server.close(() => resolve())));
  return { app, port: (app.server.address() as AddressInfo).port, logs };
}

async function get(port: number, host: string, path: string, cookie?: string) {
  const req = http.get({ host: '127.0.0.1', port, path, headers: { Host: host, ...(cookie ? { Cookie: cookie } : {}) } });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let body = '';
  for await (const chunk of res) body += chunk;
  return { status: res.statusCode!, headers: res.headers, body };
}

t.test('example site: health, a session per client, page views counted', async (t) => {
  const { app, port, logs } = await start(t, { capacity: 2 });
  t.same(JSON.parse((await get(port, '127.0.0.1', '/health')).body), { site: 'geneva', load: 0, capacity: 2, busy: false });

  // From the Pool Name (the client 127.0.0.1 belongs to the default group americas; Geneva is
  // Europe only): to the Americas Group Name.
  let r = await get(port, 'app.example.com', '/');
  t.equal(r.headers.location, `http://americas.app.example.com/`);
  // From the Europe Group Name: onto Geneva's Site Name.
  r = await get(port, 'europe.app.example.com', '/hello?x=1');
  t.match(r.headers.location, /^http:\/\/geneva\.app\.example\.com\/hello\?x=1&_affinity=/);
  const target = new URL(r.headers.location!);
  r = await get(port, target.host, target.pathname + target.search);
  t.equal(r.status, 200);
  t.equal(r.headers['x-site'], 'geneva');
  t.equal(r.headers['x-session-views'], '1');
  t.match(r.body, /You asked for <code>\/hello\?x=1<\/code>/);
  const cookie = r.headers['set-cookie']![0].split(';')[0];
  t.match(r.headers['set-cookie']![0], /HttpOnly/);
  for (let i = 2; i <= 4; i++) {
    r = await get(port, 'geneva.app.example.com', '/again', cookie);
    t.equal(r.headers['x-session-views'], String(i));
  }
  t.equal(JSON.parse((await get(port, '127.0.0.1', '/health')).body).load, 1);
  t.ok(logs.some((l) => l.stage === 540) && logs.some((l) => l.stage === 588), 'decisions are logged with their stage');

  // An unknown cookie is no session.
  r = await get(port, 'geneva.app.example.com', '/again', 'sid=forged');
  t.equal(r.status, 302);

  // Full (capacity 2) or told to be busy: stage 550 overflows to the next site of Europe (Chicago).
  const second = new URL((await get(port, 'europe.app.example.com', '/')).headers.location!);
  t.equal((await get(port, second.host, second.pathname + second.search)).status, 200);
  t.equal(JSON.parse((await get(port, '127.0.0.1', '/health')).body).busy, true, 'two sessions: full');
  const third = new URL((await get(port, 'europe.app.example.com', '/')).headers.location!);
  r = await get(port, third.host, third.pathname + third.search);
  t.equal(r.status, 302);
  t.match(r.headers.location, /^http:\/\/chicago\.app\.example\.com\/\?_affinity=/);
  t.equal(app.sessions.size, 2);
});

t.test('example site: an operator can mark it busy; sessions still served', async (t) => {
  const { app, port } = await start(t);
  const dotted = await get(port, 'geneva.app.example.com.', '/');
  t.equal(dotted.headers['x-affinity-stage'], '545', 'a Site Name with a trailing dot is this Site Name (step 2, not step 1)');
  const entry = new URL((await get(port, 'europe.app.example.com', '/')).headers.location!);
  const r = await get(port, entry.host, entry.pathname + entry.search);
  const cookie = r.headers['set-cookie']![0].split(';')[0];
  app.busy = true;
  t.equal(JSON.parse((await get(port, '127.0.0.1', '/health')).body).busy, true);
  t.equal((await get(port, 'geneva.app.example.com', '/', cookie)).status, 200, 'a session bypasses the busy check');
  const other = new URL((await get(port, 'europe.app.example.com', '/')).headers.location!);
  t.equal((await get(port, other.host, other.pathname + other.search)).headers['x-affinity-stage'], '595');
});
