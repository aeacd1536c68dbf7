/**
 * The status page and its data behind the admin listener's token rules: off loopback a browser
 * is asked for Basic credentials (the token as the password) and may read with them; a change
 * still needs the bearer token, whatever Basic credentials a browser holds.
 */
import t, { type Test } from 'tap';
import { AnswerHistory } from '../../src/admin/answer-history.js';
import { AdminRouter, startAdminServer } from '../../src/admin/http.js';
import { registerStatusPage } from '../../src/admin/status-page.js';
import { Runtime } from '../../src/state/runtime.js';

const TOKEN = 'a-token-of-some-length';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function start(t: Test, host: string) {
  const router = new AdminRouter();
  const history = new AnswerHistory({ runtime: new Runtime(), counts: async () => [] });
  registerStatusPage(router, history);
  let changed = 0;
  router.add('POST', '/v1/change', () => ({ status: 200, body: { changed: ++changed } }));
  const server = await startAdminServer(router, { host, port: 0, token: TOKEN });
  t.teardown(() => server.close());
  return `http://127.0.0.1:${server.port}`;
}

t.test('off loopback: the page asks for Basic, reads accept it, changes do not', async (t) => {
  const base = await start(t, '0.0.0.0');
  const page = await fetch(`${base}/`);
  t.equal(page.status, 401);
  t.equal(page.headers.get('www-authenticate'), 'Basic realm="sitedns admin", charset="UTF-8"');
  t.equal((await fetch(`${base}/v1/history`)).headers.get('www-authenticate'), 'Bearer', 'the API itself asks for the bearer token');

  t.equal((await fetch(`${base}/`, { headers: { authorization: basic('ops', 'wrong') } })).status, 401);
  t.equal((await fetch(`${base}/`, { headers: { authorization: `Basic ${Buffer.from(TOKEN).toString('base64')}` } })).status, 401, 'no user:password pair');
  const ok = await fetch(`${base}/`, { headers: { authorization: basic('ops', TOKEN) } });
  t.equal(ok.status, 200);
  t.match(ok.headers.get('content-type'), /^text\/html/);
  t.match(ok.headers.get('content-security-policy'), /default-src 'none'/);
  t.match(await ok.text(), /<title>sitedns status<\/title>/);
  const history = await fetch(`${base}/v1/history`, { headers: { authorization: basic('', TOKEN) } });
  t.equal(history.status, 200);
  t.match(await history.json(), { samples: [], changes: [], windowMs: Number, intervalMs: Number });

  t.equal((await fetch(`${base}/v1/change`, { method: 'POST', headers: { authorization: basic('ops', TOKEN) } })).status, 401, 'a change never on Basic');
  t.equal((await fetch(`${base}/v1/change`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
});

t.test('on loopback the page is open like every read', async (t) => {
  const base = await start(t, '127.0.0.1');
  const page = await fetch(`${base}/`);
  t.equal(page.status, 200);
  t.match(await page.text(), /\/v1\/status/);
});
