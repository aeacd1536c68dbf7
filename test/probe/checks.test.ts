/** The probe kinds against real HTTP and TCP backends on 127.0.0.x. */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { compileCheck, loadFromJson } from '../../src/probe/checks.js';
import { startBackend, startTcpBackend } from '../helpers/backends.js';

t.test('HTTP: 2xx healthy with the load from a JSON field or a header, rtt measured', async (t) => {
  const b = await startBackend('127.0.0.2', 42);
  t.teardown(() => b.stop());
  const field = await compileCheck({ http: b.url, load: 'load', timeout: 1000 })!.run();
  t.equal(field.ok, true);
  t.equal(field.load, 42);
  t.ok(field.rttMs! >= 0);
  const header = await compileCheck({ http: b.url, load_header: 'X-Load', timeout: 1000 })!.run();
  t.equal(header.load, 42);
  const none = await compileCheck({ http: b.url, load: 'missing', timeout: 1000 })!.run();
  t.equal(none.ok, true, 'a missing load field is still healthy');
  t.equal(none.load, undefined);
  t.match(none.reason, /no "missing" with a number >= 0/);
});

t.test('HTTP: a bad status or missing body text is decisive', async (t) => {
  const b = await startBackend('127.0.0.3');
  t.teardown(() => b.stop());
  b.status = 503;
  const r = await compileCheck({ http: b.url, timeout: 1000 })!.run();
  t.same([r.ok, r.decisive, r.reason], [false, true, 'HTTP 503']);
  t.equal((await compileCheck({ http: b.url, timeout: 1000, expect_status: [503] })!.run()).ok, true, 'expect_status');
  b.status = 200;
  const body = await compileCheck({ http: b.url, timeout: 1000, expect_body: 'nope' })!.run();
  t.same([body.ok, body.decisive], [false, true]);
  t.equal((await compileCheck({ http: b.url, timeout: 1000, expect_body: '"load"' })!.run()).ok, true);
});

t.test('HTTP: refused is decisive, silence is a (soft) timeout', async (t) => {
  const b = await startBackend('127.0.0.4');
  const url = b.url;
  await b.stop();
  const refused = await compileCheck({ http: url, timeout: 1000 })!.run();
  t.same([refused.ok, refused.decisive, refused.reason], [false, true, 'connection refused']);
  await b.start();
  t.teardown(() => b.stop());
  b.dropRate = 1;
  const timeout = await compileCheck({ http: b.url, timeout: 200 })!.run();
  t.same([timeout.ok, timeout.decisive, timeout.reason], [false, false, 'timeout after 200ms']);
});

t.test('HTTP: the Host header is sent as configured', async (t) => {
  let host = '';
  const server = net.createServer((s) => {
    s.once('data', (d) => {
      host = /host: (.*)\r\n/i.exec(d.toString())?.[1] ?? '';
      s.end('HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n');
    });
  });
  server.listen(0, '127.0.0.5');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const r = await compileCheck({ http: `http://127.0.0.5:${port}/h`, host: 'app.example.com', timeout: 1000 })!.run();
  t.equal(r.ok, true);
  t.equal(host, 'app.example.com');
});

t.test('TCP: connect is healthy, refused is decisive', async (t) => {
  const b = await startTcpBackend('127.0.0.6');
  const ok = await compileCheck({ tcp: `127.0.0.6:${b.port}`, timeout: 1000 })!.run();
  t.equal(ok.ok, true);
  await b.stop();
  const refused = await compileCheck({ tcp: `127.0.0.6:${b.port}`, timeout: 1000 })!.run();
  t.same([refused.ok, refused.decisive], [false, true]);
});

t.test('load paths', async (t) => {
  t.equal(loadFromJson('{"load": 0.42}', 'load'), 0.42);
  t.equal(loadFromJson('{"stats": {"load": "7"}}', 'stats.load'), 7);
  t.equal(loadFromJson('not json', 'load'), undefined);
  t.equal(loadFromJson('{"load": null}', 'load'), undefined);
  t.equal(loadFromJson('{"load": -50}', 'load'), undefined, 'a negative load is refused, as the push API refuses it');
  t.equal(loadFromJson('{"load": "-0.5"}', 'load'), undefined);
  t.equal(loadFromJson('{"load": 0}', 'load'), 0);
});

t.test('HTTP: a negative load from a probe is no load, and the check says why', async (t) => {
  const b = await startBackend('127.0.0.2', -50);
  t.teardown(() => b.stop());
  for (const probe of [{ load: 'load' }, { load_header: 'X-Load' }]) {
    const r = await compileCheck({ http: b.url, timeout: 1000, ...probe })!.run();
    t.equal(r.ok, true, 'still healthy');
    t.equal(r.load, undefined, `${Object.keys(probe)[0]}: no load taken`);
    t.match(r.reason, /with a number >= 0/);
  }
});

t.test('HTTPS: certificate checked unless insecure; Host and SNI from `host`', { skip: !hasOpenssl() && 'openssl not installed' }, async (t) => {
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const https = await import('node:https');
  const dir = mkdtempSync(join(tmpdir(), 'sitedns-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=health.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  let sni: string | undefined;
  const server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
    sni = (req.socket as any).servername;
    res.end('{"load": 3}');
  });
  server.listen(0, '127.0.0.9');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const url = `https://127.0.0.9:${(server.address() as net.AddressInfo).port}/health`;
  const strict = await compileCheck({ https: url, timeout: 2000 })!.run();
  t.same([strict.ok, strict.decisive], [false, true], 'self-signed: refused, decisively');
  const loose = await compileCheck({ https: url, timeout: 2000, insecure: true, host: 'health.test', load: 'load' })!.run();
  t.equal(loose.ok, true, loose.reason);
  t.equal(loose.load, 3);
  t.equal(sni, 'health.test', 'SNI from host');
});

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
