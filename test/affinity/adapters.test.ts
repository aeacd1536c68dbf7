/**
 * What docs/affinity.md's Fastify and Koa adapters rely on: the middleware has decided when it
 * returns, having either called next() or ended the response, on every kind of request (pass,
 * session, redirect, busy, a throwing hook). Real node:http requests on loopback.
 */
import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { siteAffinity } from '../../src/affinity/index.js';
import { signMarker } from '../../src/affinity/marker.js';

const SECRET = 'a shared secret of the whole pool';
const NOW = 1_800_000_000_000;
const marker = signMarker({ secrets: [Buffer.from(SECRET)], zone: 'app.example.com' }, { issuedAt: Math.floor(NOW / 1000), to: 'boston' });

t.test('the middleware has decided when it returns', async (t) => {
  let busy = false;
  let throwing = false;
  const affinity = siteAffinity({
    zone: 'test/fixtures/app.example.com.yaml',
    site: 'boston',
    secret: SECRET,
    now: () => NOW,
    hasSession: (req) => /sid=live/.test(req.headers.cookie ?? ''),
    isBusy: () => {
      if (throwing) throw new Error('hook failed');
      return busy;
    },
  });
  const outcomes: string[] = [];
  const server = http.createServer((req, res) => {
    let next: string | undefined;
    affinity(req, res, (error) => (next = error ? 'next(error)' : 'next()'));
    // Decided by now: exactly one of the two happened.
    const outcome = next ?? (res.writableEnded ? `answered ${res.statusCode}` : 'undecided');
    outcomes.push(outcome);
    if (!res.writableEnded) res.end(outcome);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const get = async (host: string, path: string, cookie = '') => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host, cookie } });
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.resume();
    await once(res, 'end');
  };

  await get('app.example.com', '/');                                  // Pool Name: redirect
  await get('boston.app.example.com', `/?_affinity=${marker}`);       // valid marker: pass
  await get('boston.app.example.com', '/', 'sid=live');               // in a session
  busy = true;
  await get('boston.app.example.com', `/?_affinity=${marker}`);       // busy: redirect to the next site
  throwing = true;
  await get('boston.app.example.com', `/?_affinity=${marker}`);       // a throwing hook
  t.same(outcomes, ['answered 302', 'next()', 'next()', 'answered 302', 'next(error)']);
});
