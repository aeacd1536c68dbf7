/**
 * The audit trail end to end: a real redis-server, a `serve --redis --probe` nameserver with its
 * admin listener, and the CLI. A drain through the CLI on Redis, an undrain through the admin
 * API and a force-up through the CLI on the admin listener are each logged by the process that
 * performed it, and `sitedns audit` (on Redis and on the admin listener) lists all three with
 * who, why and until. Then the embedded default, whose trail lives in the serve's memory.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { adminRequest } from '../../src/admin/http.js';
import { AUDIT_TRAIL_LENGTH } from '../../src/state/audit.js';
import { RedisStateStore } from '../../src/state/redis-store.js';
import { createLogger } from '../../src/util/logger.js';
import { eventually, probedZone, startBackend } from '../helpers/backends.js';
import { tempZonesDir } from '../helpers/dns.js';
import { CLI, freeTcpPort, startSitedns } from '../helpers/net.js';
import { startRedis } from '../helpers/redis.js';

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const jsonLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

t.test('Redis: drain by CLI, undrain by the admin API, force-up; sitedns audit lists them', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const a = await startBackend('127.0.0.1', 10);
  const b = await startBackend('127.0.0.1', 20);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const zones = tempZonesDir({ 'r.yaml': probedZone(a.url, b.url) });
  const http = `127.0.0.1:${await freeTcpPort()}`;
  const ns = await startSitedns(['serve', '--zones', zones, '--listen', '127.0.0.1:0', '--http', http, '--redis', redis.url, '--probe', '--state-file', 'off']);
  t.teardown(() => ns.stop());
  const siteRow = async (id: string) => (await adminRequest(http, 'GET', '/v1/status')).body.sites.find((s: any) => s.site === `r.test/${id}`);
  await eventually('the prober wrote both sites to Redis', async () => {
    const { stdout } = await cli('status', '--redis', redis.url);
    return /r\.test\/a\s+up/.test(stdout) && /r\.test\/b\s+up/.test(stdout);
  });

  // Drain through the CLI on Redis: the CLI performs it, so the CLI logs it (stderr).
  const drained = await cli('drain', 'a', '--for', '30m', '--reason', 'kernel upgrade', '--by', 'alice', '--redis', redis.url);
  t.match(drained.stdout, /r\.test\/a: drained until/);
  const cliLine = jsonLines(drained.stderr).find((l) => l.component === 'audit');
  t.match(cliLine, { level: 'info', audit: { action: 'drain', site: 'r.test/a', by: 'alice', reason: 'kernel upgrade', from: /^cli .+\/\d+$/ } }, 'the CLI logged its drain');
  t.match(cliLine.msg, /^r\.test\/a drained until \S+Z by alice: kernel upgrade$/);
  t.notOk(ns.logs.some((l) => l.component === 'audit'), 'the nameserver did not perform it and does not log it');

  // Undrain through the admin API: the nameserver performs it and names the drain it ended.
  await eventually('the nameserver sees the drain', async () => (await siteRow('a')).state === 'drained');
  const undrained = await adminRequest(http, 'DELETE', '/v1/sites/r.test/a/drain', { by: 'bob' });
  t.equal(undrained.status, 200);
  const undrainLine = await ns.waitForLog((l) => l.component === 'audit' && l.audit?.action === 'undrain');
  t.match(undrainLine.audit, { site: 'r.test/a', by: 'bob', from: 'admin 127.0.0.1', ended: { state: 'down', by: 'alice', reason: 'kernel upgrade' } });
  t.match(undrainLine.msg, 'r.test/a undrained by bob: ended a drain by alice until');

  // Force-up through the CLI on the admin listener: the nameserver logs it.
  await cli('drain', 'b', '--up', '--for', '10m', '--reason', 'the probe is wrong', '--by', 'carol', '--http', http);
  const forceLine = await ns.waitForLog((l) => l.component === 'audit' && l.audit?.action === 'force-up');
  t.match(forceLine.audit, { site: 'r.test/b', by: 'carol', from: 'admin 127.0.0.1', state: 'up', reason: 'the probe is wrong' });

  // Report events: a first report, a refused one (own trail).
  t.equal((await adminRequest(http, 'POST', '/v1/sites/r.test/a/load?by=site-a', { load: 5 })).status, 202);
  t.equal((await adminRequest(http, 'POST', '/v1/sites/r.test/a/load?by=site-a', { load: -1 })).status, 400);
  const refusedLine = await ns.waitForLog((l) => l.component === 'audit' && l.audit?.action === 'report-refused');
  t.match(refusedLine, { level: 'warn', audit: { site: 'r.test/a', by: 'site-a', from: 'admin 127.0.0.1' } });

  await t.test('sitedns audit --redis: the table, newest last, with who, until and why', async (t) => {
    const { stdout } = await cli('audit', '--redis', redis.url);
    const lines = stdout.trim().split('\n');
    t.match(lines[0], /^TIME\s+ACTION\s+SITE\s+BY\s+FROM\s+UNTIL\s+WHY$/);
    const rows = lines.slice(1).map((l) => l.split(/ {2,}/));
    t.same(rows.map((r) => [r[1], r[2], r[3]]), [
      ['drain', 'r.test/a', 'alice'],
      ['undrain', 'r.test/a', 'bob'],
      ['force-up', 'r.test/b', 'carol'],
      ['report', 'r.test/a', 'site-a'],
      ['report-refused', 'r.test/a', 'site-a'],
    ]);
    t.match(rows[0], [/Z$/, 'drain', 'r.test/a', 'alice', /^cli /, /^\d{4}-\d\d-\d\dT.*Z$/, 'kernel upgrade']);
    t.match(rows[1][6], /^ended a drain by alice until \S+Z: kernel upgrade$/);
    t.match(rows[2], [/Z$/, 'force-up', 'r.test/b', 'carol', 'admin 127.0.0.1', /Z$/, 'the probe is wrong']);
  });

  await t.test('--site, --limit, --output json; the admin listener gives the same trail', async (t) => {
    const viaRedis = JSON.parse((await cli('audit', '--redis', redis.url, '--site', 'a.r.test', '--limit', '2', '--output', 'json')).stdout);
    t.equal(viaRedis.store, 'redis');
    t.same(viaRedis.entries.map((e: any) => e.action), ['report', 'report-refused'], 'the newest two of site a, newest last');
    const viaHttp = JSON.parse((await cli('audit', '--http', http, '--site', 'a', '--limit', '2', '-o', 'json')).stdout);
    t.same(viaHttp, viaRedis);
    const drains = JSON.parse((await cli('audit', '--http', http, '--site', 'r.test/b', '-o', 'json')).stdout);
    t.same(drains.entries.map((e: any) => e.action), ['force-up']);
    t.ok(drains.entries[0].until > drains.entries[0].at + 599_000, 'until: ten minutes after the action');
    const bad = await adminRequest(http, 'GET', '/v1/audit?limit=0');
    t.equal(bad.status, 400);
  });

  await t.test('the Redis streams: documented keys, one JSON field each, trimmed to the last 1,000', async (t) => {
    const raw = new Redis(redis.url);
    t.teardown(() => raw.disconnect());
    t.equal(await raw.xlen('sitedns:audit'), 3, 'drain, undrain, force-up');
    t.equal(await raw.xlen('sitedns:audit:reports'), 2, 'the first report and the refusal');
    const [[, fields]] = await raw.xrange('sitedns:audit', '-', '+', 'COUNT', 1);
    t.equal(fields[0], 'entry');
    t.match(JSON.parse(fields[1]), { action: 'drain', site: 'r.test/a', by: 'alice' });
    const store = new RedisStateStore({ url: redis.url, prefix: 'bounded:', logger: createLogger('silent') });
    t.teardown(() => store.close());
    await store.ready(5000);
    const n = AUDIT_TRAIL_LENGTH + 300;
    const pipeline = raw.pipeline();
    for (let i = 0; i < n; i++) pipeline.xadd('bounded:audit', 'MAXLEN', '~', AUDIT_TRAIL_LENGTH, '*', 'entry', JSON.stringify({ at: i, action: 'drain', site: 'z/a', by: 'x', from: 'y' }));
    await pipeline.exec();
    await store.appendAudit({ at: n, action: 'undrain', site: 'z/a', by: 'x', from: 'y' });
    t.ok((await raw.xlen('bounded:audit')) < n, 'the stream is trimmed as it grows');
    const read = await store.readAudit();
    t.equal(read.length, AUDIT_TRAIL_LENGTH, 'a read takes the last 1,000');
    t.same([read[0].at, read.at(-1)!.at], [n - AUDIT_TRAIL_LENGTH + 1, n], 'oldest first, the newest last');
  });
});

t.test('embedded: the trail lives in the serve process; sitedns audit asks its admin listener', async (t) => {
  const zones = tempZonesDir({ 'e.yaml': 'zone: e.test\nsoa: { mname: ns1.e.test, rname: h.e.test }\nnameservers: { ns1.e.test: [192.0.2.1] }\nsites:\n  a: { addresses: [192.0.2.10] }\n  b: { addresses: [192.0.2.20] }\ngroups:\n  all: [a, b]\npool: { name: "@", policy: least-busy }\n' });
  const http = `127.0.0.1:${await freeTcpPort()}`;
  const ns = await startSitedns(['serve', '--zones', zones, '--listen', '127.0.0.1:0', '--http', http]);
  t.teardown(() => ns.stop());
  const drained = await cli('drain', 'a', '--for', '1h', '--reason', 'disk swap', '--by', 'dana', '--http', http);
  t.equal(jsonLines(drained.stderr).length, 0, 'the CLI only asked: it logs nothing');
  await cli('undrain', 'a', '--by', 'erin', '--http', http);
  await ns.waitForLog((l) => l.component === 'audit' && l.audit?.action === 'undrain' && l.audit.by === 'erin');
  const report = JSON.parse((await cli('audit', '--http', http, '-o', 'json')).stdout);
  t.equal(report.store, 'memory');
  t.match(report.entries, [
    { action: 'drain', site: 'e.test/a', by: 'dana', reason: 'disk swap', from: 'admin 127.0.0.1' },
    { action: 'undrain', site: 'e.test/a', by: 'erin', ended: { by: 'dana', reason: 'disk swap' } },
  ]);
  t.equal(report.entries.length, 2);
});
