/**
 * Access to the admin listener (src/admin/http.ts): loopback by default; a non-loopback
 * address is refused without a token; with a token, every state-changing route needs it
 * (everything but health when not on loopback); a wrong token of any length is rejected.
 */
import t from 'tap';
import { AdminRouter, adminRequest, isLoopback, startAdminServer } from '../../src/admin/http.js';

function router(calls: string[]): AdminRouter {
  const r = new AdminRouter();
  r.add('GET', '/v1/status', () => ({ status: 200, body: { ok: true } }));
  r.add('GET', '/healthz', () => ({ status: 200, body: 'ok' }));
  r.add('POST', '/v1/sites/:zone/:site/drain', (req) => (calls.push(`drain ${req.params.zone}/${req.params.site}`), { status: 200, body: { drained: true } }));
  r.add('PUT', '/v1/sites/:zone/:site/load', (req) => (calls.push(`load ${JSON.stringify(req.body)}`), { status: 200, body: {} }));
  r.add('GET', '/v1/reload', () => (calls.push('reload'), { status: 200, body: {} }), { mutating: true });
  return r;
}

t.test('a non-loopback admin address without a token is refused before listening', async (t) => {
  await t.rejects(startAdminServer(router([]), { host: '0.0.0.0', port: 0 }), /not loopback: set --http-token/);
  await t.rejects(startAdminServer(router([]), { host: '192.0.2.1', port: 0 }), /not loopback/);
  t.ok(isLoopback('127.0.0.1') && isLoopback('127.9.9.9') && isLoopback('::1') && isLoopback('localhost'));
  t.notOk(isLoopback('0.0.0.0') || isLoopback('::') || isLoopback('10.0.0.1'));
});

t.test('on loopback without a token: open (the operator is on the machine)', async (t) => {
  const calls: string[] = [];
  const s = await startAdminServer(router(calls), { host: '127.0.0.1', port: 0 });
  t.teardown(() => s.close());
  const base = `http://127.0.0.1:${s.port}`;
  t.equal((await adminRequest(base, 'POST', '/v1/sites/z/a/drain')).status, 200);
  t.same(calls, ['drain z/a']);
});

t.test('with a token: every mutating route needs it; reads and health do not (loopback)', async (t) => {
  const calls: string[] = [];
  const token = 's3cret-token-value';
  const s = await startAdminServer(router(calls), { host: '127.0.0.1', port: 0, token });
  t.teardown(() => s.close());
  const base = `http://127.0.0.1:${s.port}`;
  for (const [method, path, body] of [['POST', '/v1/sites/z/a/drain', undefined], ['PUT', '/v1/sites/z/a/load', { load: 0.5 }], ['GET', '/v1/reload', undefined]] as const) {
    const none = await adminRequest(base, method, path, body);
    t.equal(none.status, 401, `${method} ${path} without a token`);
    t.equal((await adminRequest(base, method, path, body, 'wrong')).status, 401, 'a short wrong token');
    t.equal((await adminRequest(base, method, path, body, token + 'x')).status, 401, 'the token plus a byte');
    t.equal((await adminRequest(base, method, path, body, token.slice(0, -1))).status, 401, 'the token minus a byte');
    t.equal((await adminRequest(base, method, path, body, token)).status, 200, 'the token');
  }
  t.same(calls, ['drain z/a', 'load {"load":0.5}', 'reload'], 'only the authorized calls ran');
  t.equal((await adminRequest(base, 'GET', '/v1/status')).status, 200, 'reads stay open on loopback');
  const res = await fetch(`${base}/v1/sites/z/a/drain`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` } });
  t.equal(res.status, 401, 'only a Bearer token counts');
  t.equal(res.headers.get('www-authenticate'), 'Bearer');
});

t.test('listening elsewhere: everything but health needs the token', async (t) => {
  // The only non-loopback listener a test may open is one that still only loopback can reach:
  // the IPv4-mapped loopback address, which isLoopback() does not count as loopback.
  const calls: string[] = [];
  const token = 'another-token';
  let s;
  try {
    s = await startAdminServer(router(calls), { host: '::ffff:127.0.0.1', port: 0, token });
  } catch (error) {
    t.skip(`cannot bind ::ffff:127.0.0.1 here: ${(error as Error).message}`);
    return;
  }
  t.teardown(() => s!.close());
  const base = `http://127.0.0.1:${s.port}`;
  t.equal((await adminRequest(base, 'GET', '/v1/status')).status, 401, 'reads need the token too');
  t.equal((await adminRequest(base, 'GET', '/v1/status', undefined, token)).status, 200);
  t.equal((await adminRequest(base, 'GET', '/healthz')).status, 200, 'health stays open for load balancers');
  t.equal((await adminRequest(base, 'POST', '/v1/sites/z/a/drain')).status, 401);
  t.same(calls, []);
});

t.test('bodies are capped', async (t) => {
  const s = await startAdminServer(router([]), { host: '127.0.0.1', port: 0 });
  t.teardown(() => s.close());
  const res = await fetch(`http://127.0.0.1:${s.port}/v1/sites/z/a/load`, { method: 'PUT', body: 'x'.repeat(70 * 1024), headers: { 'content-type': 'application/json' } }).catch((e) => e);
  t.ok(res instanceof Error || res.status === 413, 'over 64 KiB: 413 or the connection is cut');
});
