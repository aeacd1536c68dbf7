/**
 * What the admin listener refuses, over real HTTP against a real `sitedns serve`, and what the
 * drain commands refuse on both their paths (the admin listener, and straight on a real Redis):
 * a malformed %-encoding (400), an over-size body (413, answered, not a reset), a drain longer
 * than 365d or not a finite duration (400), a site key with a control character (400), and a
 * drain of a site that does not exist (an error everywhere).
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { adminRequest, MAX_BODY_BYTES } from '../../src/admin/http.js';
import { tempZonesDir } from '../helpers/dns.js';
import { CLI, startSitedns } from '../helpers/net.js';
import { startRedis } from '../helpers/redis.js';

const run = promisify(execFile);
const SAMPLE = readFileSync(new URL('../../zones/app.example.com.yaml', import.meta.url), 'utf8');
/** The sample without probes: every site counts as up, so the server is ready at once. */
const NO_PROBES = SAMPLE.replace(/^\s+probe: .*\n/gm, '');

/** One raw HTTP/1.1 exchange: the status line the server answers (or the error the socket got). */
async function rawExchange(port: number, head: string, body: Buffer): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let reply = '';
  socket.on('data', (c: Buffer) => (reply += c.toString()));
  const closed = new Promise<string | undefined>((resolve) => {
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code));
    socket.on('close', () => resolve(undefined));
  });
  socket.write(head);
  // Written in pieces, as a client streaming a large body does, while the server may already answer.
  for (let i = 0; i < body.length && !socket.destroyed; i += 16_384) socket.write(body.subarray(i, i + 16_384));
  socket.end();
  const error = await closed;
  return reply.split('\r\n')[0] || `no reply (${error ?? 'closed'})`;
}

t.test('the admin listener refuses bad input with 4xx, never a 500 or a reset', async (t) => {
  const ns = await startSitedns(['serve', '--zones', tempZonesDir({ 'app.example.com.yaml': NO_PROBES }), '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0']);
  t.teardown(() => ns.stop());
  const port = (await ns.waitForLog((l) => l.msg === 'admin listening')).port;
  const http = `127.0.0.1:${port}`;

  t.test('a malformed %-encoding in the path is 400', async (t) => {
    for (const path of ['/v1/sites/app.example.com/bos%E0%A4%A/drain', '/v1/sites/%ZZ/boston/drain', '/v1/status%']) {
      const res = await adminRequest(http, 'POST', path, {});
      t.same(res, { status: 400, body: { error: 'the path has a malformed %-encoding' } }, path);
    }
    t.notOk(ns.logs.some((l) => l.msg === 'admin route failed'), 'no route failed (no stack in the log)');
  });

  t.test('an over-size body is answered 413', async (t) => {
    const big = JSON.stringify({ reason: 'x'.repeat(MAX_BODY_BYTES + 10) });
    const res = await fetch(`http://${http}/v1/sites/app.example.com/boston/drain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    t.equal(res.status, 413, 'with a Content-Length');
    t.match(await res.json(), { error: `body over ${MAX_BODY_BYTES} bytes` });
    const chunked = Buffer.alloc(4 * MAX_BODY_BYTES, 'a');
    const head = `POST /v1/sites/app.example.com/boston/drain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const framed = Buffer.concat([Buffer.from(`${chunked.length.toString(16)}\r\n`), chunked, Buffer.from('\r\n0\r\n\r\n')]);
    t.equal(await rawExchange(port, head, framed), 'HTTP/1.1 413 Payload Too Large', 'chunked, without a length: read to its end, then answered');
    const status = await adminRequest(http, 'GET', '/v1/status');
    t.not(status.body.sites.find((s: any) => s.site === 'app.example.com/boston').state, 'drained', 'nothing was drained');
  });

  t.test('a drain longer than 365d, or not a finite duration, is 400; 365d is taken and explained', async (t) => {
    const drain = (body: unknown) => adminRequest(http, 'POST', '/v1/sites/app.example.com/boston/drain', body);
    t.same(await drain({ for: '366d' }), { status: 400, body: { error: '"366d" is longer than 365d, the longest drain' } });
    t.same(await drain({ for: '1000000d' }), { status: 400, body: { error: '"1000000d" is longer than 365d, the longest drain' } }, 'long enough to end past the last date a Date can hold');
    t.equal((await drain({ for: 1e300 })).status, 400, 'a JSON 1e300');
    t.equal((await drain({ for: '1e300s' })).status, 400, 'an exponent');
    const raw = await fetch(`http://${http}/v1/sites/app.example.com/boston/drain`, { method: 'POST', body: '{"for": 1e999}' });
    t.equal(raw.status, 400, 'a JSON number that reads as Infinity');
    t.not((await adminRequest(http, 'GET', '/v1/status')).body.sites.find((s: any) => s.site === 'app.example.com/boston').state, 'drained', 'nothing refused was drained');

    const taken = await drain({ for: '365d', reason: 'long works' });
    t.equal(taken.status, 200, '365d is the longest drain');
    t.equal(taken.body.forced.until - taken.body.forced.at, 365 * 86_400_000);
    const explained = await adminRequest(http, 'GET', '/v1/explain?name=boston.app.example.com');
    t.equal(explained.status, 200, 'explain answers about the drained site');
    t.equal(explained.body.candidates.find((c: any) => c.site === 'boston')?.state, 'drained');
    t.equal((await adminRequest(http, 'DELETE', '/v1/sites/app.example.com/boston/drain')).status, 200);
  });

  t.test('a site key with a control character is 400; a site not served is 404', async (t) => {
    for (const path of ['/v1/sites/app.example.com/bos%0Aton/drain', '/v1/sites/app.example.com%00/boston/drain', '/v1/sites/app.example.com/boston%7F/load']) {
      const res = await adminRequest(http, 'POST', path, { load: 1 });
      t.equal(res.status, 400, path);
      t.match(res.body.error, /holds a control character/);
    }
    t.same(await adminRequest(http, 'POST', '/v1/sites/app.example.com/nosuch/drain', {}), { status: 404, body: { error: 'no site app.example.com/nosuch in the served zones' } });
    const cli = await run(process.execPath, [CLI, 'drain', 'app.example.com/nosuch', '--http', http]).then(() => null, (error) => error);
    t.ok(cli, 'sitedns drain of a site not served fails (--http)');
    t.match(cli?.stderr, /no site "app.example.com\/nosuch"/);
  });
});

t.test('sitedns drain --redis: a site no prober knows, or a control character, is an error and writes nothing', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = new Redis(redis.url);
  t.teardown(() => client.quit());
  // One prober with a view of one site: the sites the store knows.
  await client.hset('sitedns:probers', 'p1', JSON.stringify({ id: 'p1', heartbeatAt: Date.now(), startedAt: Date.now() }));
  await client.hset('sitedns:views:p1', 'app.example.com/boston', JSON.stringify({ up: true, checkedAt: Date.now(), since: Date.now(), reason: 'ok' }));

  for (const ref of ['app.example.com/nosuch', 'nosuch', 'app.example.com/bos\u001bton']) {
    const failed = await run(process.execPath, [CLI, 'drain', ref, '--redis', redis.url]).then(() => null, (error) => error);
    t.ok(failed, `drain ${JSON.stringify(ref)} fails`);
    t.match(failed?.stderr, ref.includes('\u001b') ? /holds a control character/ : /no site/);
  }
  t.same(await client.hgetall('sitedns:forced'), {}, 'nothing was written');
  const { stdout } = await run(process.execPath, [CLI, 'drain', 'app.example.com/boston', '--for', '10m', '--redis', redis.url]);
  t.match(stdout, /app\.example\.com\/boston: drained until/, 'a site the store knows is drained');
  t.same(Object.keys(await client.hgetall('sitedns:forced')), ['app.example.com/boston']);
  const tooLong = await run(process.execPath, [CLI, 'drain', 'boston', '--for', '400d', '--redis', redis.url]).then(() => null, (error) => error);
  t.match(tooLong?.stderr, /--for: "400d" is longer than 365d/, '--for is held to the same maximum');
});
