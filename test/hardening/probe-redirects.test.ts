/**
 * Probes never follow redirects to other hosts (src/probe/checks.ts): a health endpoint
 * that redirects elsewhere must not make the prober fetch (and trust) another host. Same-host
 * redirects are followed only with `follow_redirects: true`. Real HTTP servers on 127.0.0.1 and
 * 127.0.0.2 (two hosts as far as URLs go).
 */
import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import { compileCheck } from '../../src/probe/checks.js';

async function server(host: string, handler: http.RequestListener): Promise<{ port: number; hits: string[] }> {
  const hits: string[] = [];
  const s = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  s.listen(0, host);
  await once(s, 'listening');
  t.teardown(() => new Promise((r) => s.close(r)));
  return { port: (s.address() as { port: number }).port, hits };
}

t.test('redirects', async (t) => {
  const other = await server('127.0.0.2', (_req, res) => res.end('{"load":0.1}'));
  const origin = await server('127.0.0.1', (req, res) => {
    if (req.url === '/elsewhere') return res.writeHead(302, { location: `http://127.0.0.2:${other.port}/health` }).end();
    if (req.url === '/same') return res.writeHead(301, { location: '/health' }).end();
    res.end('{"load":0.2}');
  });
  const check = (path: string, follow?: boolean) =>
    compileCheck({ http: `http://127.0.0.1:${origin.port}${path}`, timeout: 2000, ...(follow === undefined ? {} : { follow_redirects: follow }) } as any)!.run();

  const a = await check('/elsewhere');
  t.notOk(a.ok, 'a redirect to another host fails the probe');
  t.match(a.reason, /redirect to http:\/\/127\.0\.0\.2.*not followed/);
  const b = await check('/elsewhere', true);
  t.notOk(b.ok, 'even with follow_redirects: true, another host is never fetched');
  t.same(other.hits, [], 'the other host saw no request');

  const c = await check('/same');
  t.notOk(c.ok, 'a same-host redirect is not followed by default');
  const d = await check('/same', true);
  t.ok(d.ok, 'a same-host redirect is followed with follow_redirects: true');
  t.same(origin.hits.filter((h) => h === '/health').length, 1);
});
