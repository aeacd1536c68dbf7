/**
 * Redis URLs with a password and with TLS: the state store (src/state/redis-store.ts,
 * ioredis) against a real redis-server with `requirepass`, and with `--tls-port` when this
 * redis-server was built with TLS. The CA of the test certificate reaches the client through
 * NODE_EXTRA_CA_CERTS, so a spawned `sitedns serve --redis rediss://...` verifies the server
 * certificate as in production (no "insecure" switch exists for Redis).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisStateStore } from '../../src/state/redis-store.js';
import { createLogger } from '../../src/util/logger.js';
import { adminRequest } from '../../src/admin/http.js';
import { freePort, startRedis, startServe } from '../../bench/soak/procs.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI } from '../helpers/net.js';

const run = promisify(execFile);

const logger = createLogger('error');

t.test('requirepass: the password in the URL works; a wrong or missing one does not connect', async (t) => {
  const redis = await startRedis(['--requirepass', 'pw-for-test']);
  t.teardown(() => redis.stop());
  const good = new RedisStateStore({ url: `redis://:pw-for-test@127.0.0.1:${redis.port}`, logger });
  t.teardown(() => good.close());
  await good.ready(5000);
  t.ok(good.connected(), 'connected with the password');
  await good.report('app.example.com/boston', { load: 0.25, at: Date.now() } as any).catch(() => undefined);
  const contents = await good.readAll();
  t.ok(contents.reports instanceof Map, 'reads work');

  for (const url of [`redis://:wrong@127.0.0.1:${redis.port}`, `redis://127.0.0.1:${redis.port}`]) {
    const bad = new RedisStateStore({ url, logger });
    await t.rejects(bad.ready(1500), undefined, `${url.replace(/:wrong@/, ':***@')}: not ready`);
    t.notOk(bad.connected());
    await bad.close();
  }
});

t.test('a refused password says so, and no log line or error message holds a password', async (t) => {
  const redis = await startRedis(['--requirepass', 'pw-for-test']);
  t.teardown(() => redis.stop());
  const base = `127.0.0.1:${redis.port}`;

  // The store: a coded error naming Redis's refusal, and one error line, without the password.
  for (const [url, refusal] of [[`redis://${base}`, 'NOAUTH'], [`redis://:wrong-secret@${base}`, 'WRONGPASS'], [`redis://sitedns:wrong-secret@${base}`, 'WRONGPASS']]) {
    const lines: string[] = [];
    const store = new RedisStateStore({ url, logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
    const error = await store.ready(1500).then(() => undefined, (e: Error & { code?: string }) => e);
    await store.close();
    t.equal(error?.code, 'ESTORE_AUTH', `${refusal}: an authentication error, not "not reachable"`);
    t.match(error?.message, new RegExp(`refused the credentials \\(${refusal}\\)`));
    t.notMatch(error?.message, /wrong-secret/, 'the message hides the password');
    const refused = lines.filter((l) => l.includes('Redis refused the credentials'));
    t.equal(refused.length, 1, 'logged once, however often the client retries');
    t.match(JSON.parse(refused[0] ?? '{}'), { level: 'error', err: new RegExp(`^${refusal}`) });
    t.notMatch(lines.join(''), /wrong-secret/, 'no log line holds the password');
  }

  // The CLI straight on Redis: one line saying so, without the password.
  const status = await run(process.execPath, [CLI, 'status', '--redis', `redis://:wrong-secret@${base}`]).then(() => null, (e) => e);
  t.match(status?.stderr, /refused the credentials \(WRONGPASS\): the user or password is wrong/);
  t.notMatch(status?.stderr, /wrong-secret/);
  const unreachable = await run(process.execPath, [CLI, 'status', '--redis', `redis://:pw-for-test@127.0.0.1:${await freePort()}`]).then(() => null, (e) => e);
  t.match(unreachable?.stderr, /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/, 'an unreachable URL is shown with its password hidden');
  t.notMatch(unreachable?.stderr, /pw-for-test/);

  // serve and probe: their logs say the credentials were refused, never the password.
  const serve = await startServe(['--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--redis', `redis://:wrong-secret@${base}`, '--state-file', 'off'], 1024);
  t.teardown(() => serve.stop());
  await serve.waitFor((l) => l.msg === 'following the Redis state store');
  t.ok(serve.lines.some((l) => l.msg === 'Redis refused the credentials: check the password (and user) in the Redis URL' && l.redis === `redis://:***@${base}`), 'serve: the refusal is logged, with the URL hidden');
  t.match(serve.lines.find((l) => l.msg?.startsWith('state store unreachable at start')), { store: /WRONGPASS/ }, 'and the start says why the store was not read');
  t.notMatch(JSON.stringify(serve.lines), /wrong-secret/, 'serve logs no password');
  const probe = await run(process.execPath, [CLI, 'probe', '--zones', 'zones/', '--redis', `redis://:wrong-secret@${base}`]).then(() => null, (e) => e);
  t.match(probe?.stderr, /refused the credentials \(WRONGPASS\)/, 'probe stops: retrying cannot fix a password');
  t.notMatch(`${probe?.stdout}${probe?.stderr}`, /wrong-secret/);
  const good = await startServe(['--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--redis', `redis://:pw-for-test@${base}`, '--state-file', 'off'], 1024);
  t.teardown(() => good.stop());
  await good.waitFor((l) => l.msg === 'following the Redis state store');
  t.notMatch(JSON.stringify(good.lines), /pw-for-test/, 'nor with the right one');
});

t.test('the logger censors credentials in logged objects', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', { write: (line: string) => void lines.push(line) });
  log.info({ token: 'tok-1', headers: { authorization: 'Bearer tok-2' }, req: { headers: { authorization: 'Bearer tok-3' } }, options: { password: 'pw-4', httpToken: 'tok-5' } }, 'a request');
  const line = JSON.parse(lines[0]);
  t.same([line.token, line.headers.authorization, line.req.headers.authorization, line.options.password, line.options.httpToken], Array(5).fill('[redacted]'));
  t.notMatch(lines[0], /tok-|pw-4/);
});

t.test('rediss:// with a certificate the client verifies', async (t) => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'pipe' });
  } catch {
    t.skip('openssl is not installed (.ci/run installs it): no test certificate');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'sitedns-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=sitedns test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  require_ext(dir);
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.pem');

  const tlsPort = await freePort();
  let redis;
  try {
    redis = await startRedis(['--tls-port', String(tlsPort), '--tls-cert-file', join(dir, 'server.pem'), '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', join(dir, 'ca.pem'), '--tls-auth-clients', 'no', '--requirepass', 'tls-pw']);
  } catch (error) {
    t.skip(`this redis-server has no TLS support: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`);
    return;
  }
  t.teardown(() => redis!.stop());

  const server = await startServe(['--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--redis', `rediss://:tls-pw@127.0.0.1:${tlsPort}`, '--state-file', 'off'], 1024, { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') });
  t.teardown(() => server.stop());
  const admin = await server.waitFor((l) => typeof l.msg === 'string' && /admin/i.test(l.msg) && l.port !== undefined).catch(() => undefined);
  await server.waitFor((l) => l.msg === 'following the Redis state store');
  t.pass('serve started against rediss://');
  if (admin?.port) {
    const status = await adminRequest(`127.0.0.1:${admin.port}`, 'GET', '/v1/status');
    t.equal(status.body?.store?.connected, true, 'the store is connected over TLS');
  }
  t.notOk(server.lines.some((l) => l.msg && /state store unreachable/.test(l.msg)), 'never unreachable');

  // The same URL without the CA: the certificate is not trusted, so no connection.
  const untrusted = new RedisStateStore({ url: `rediss://:tls-pw@127.0.0.1:${tlsPort}`, logger });
  await t.rejects(untrusted.ready(1500), undefined, 'an unverified certificate is refused');
  await untrusted.close();
});

function require_ext(dir: string): void {
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ${join(dir, 'ext.cnf')}`]);
}
