/**
 * End-to-end, embedded default (no Redis): a real `sitedns serve` probing real HTTP backends on
 * 127.0.0.x. Failover and recovery of a Site Name, least-busy change after a load change, pushed
 * reports, drain/undrain with expiry through the admin listener and the CLI.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { adminRequest } from '../../src/admin/http.js';
import { answer, eventually, probedZone, startBackend } from '../helpers/backends.js';
import { tempZonesDir } from '../helpers/dns.js';
import { CLI, startSitedns } from '../helpers/net.js';

const run = promisify(execFile);

const E2E_REST = 'groups:\n  all: [a, b]\npool: { name: "@", policy: least-busy, sites: [a, b] }\n';
const zoneText = (a: string, b: string, moreSites = '') => probedZone(a, b, { zone: 'e2e.test', moreSites, rest: E2E_REST });

t.test('embedded: failover, recovery, least-busy, drains, status', async (t) => {
  const a = await startBackend('127.0.0.2', 10);
  const b = await startBackend('127.0.0.3', 50);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const dir = tempZonesDir({ 'e2e.yaml': zoneText(a.url, b.url, '  c: { addresses: [192.0.2.30], probe: { push_interval: 300ms } }\n') });
  const ns = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0']);
  t.teardown(() => ns.stop());
  const adminPort = ns.logs.find((l) => l.msg === 'admin listening').port;
  const http = `127.0.0.1:${adminPort}`;
  t.ok(ns.logs.some((l) => l.msg === 'first probe round done' && l.complete === true), 'answering began after a first probe round');

  t.equal(await answer(ns.port, 'a.e2e.test'), '192.0.2.10', 'Site Name: the site while up');
  t.equal(await answer(ns.port, 'e2e.test'), '192.0.2.10', 'Pool Name: least busy (a: 10%, b: 50%)');

  await t.test('Site Name fails over when its server dies, and comes back', async (t) => {
    await a.stop();
    await eventually('a.e2e.test answers b', async () => (await answer(ns.port, 'a.e2e.test')) === '192.0.2.20');
    t.equal(await answer(ns.port, 'e2e.test'), '192.0.2.20', 'the pool avoids the dead site');
    const status = await adminRequest(http, 'GET', '/v1/status');
    const row = status.body.sites.find((s: any) => s.site === 'e2e.test/a');
    t.equal(row.state, 'down');
    t.equal(row.reason, 'connection refused');
    await a.start();
    await eventually('a.e2e.test answers a again', async () => (await answer(ns.port, 'a.e2e.test')) === '192.0.2.10');
    t.pass('recovered');
  });

  await t.test('least-busy follows a load change', async (t) => {
    a.load = 90;
    await eventually('the pool moves to b', async () => (await answer(ns.port, 'e2e.test')) === '192.0.2.20');
    a.load = 5;
    await eventually('the pool moves back to a', async () => (await answer(ns.port, 'e2e.test')) === '192.0.2.10');
    t.pass('followed');
  });

  await t.test('pushed load reports: POST /load, and silence counts as down', async (t) => {
    const posted = await adminRequest(http, 'POST', '/v1/sites/e2e.test/c/load', { load: 0.5 });
    t.equal(posted.status, 202);
    await eventually('c shows the pushed load', async () => {
      const s = await adminRequest(http, 'GET', '/v1/status');
      const row = s.body.sites.find((x: any) => x.site === 'e2e.test/c');
      return row.state === 'up' && row.load === 0.5;
    });
    await eventually('c is down after 3 silent intervals', async () => {
      const s = await adminRequest(http, 'GET', '/v1/status');
      return s.body.sites.find((x: any) => x.site === 'e2e.test/c').state === 'down';
    });
    const bad = await adminRequest(http, 'POST', '/v1/sites/e2e.test/c/load', { load: 'lots' });
    t.equal(bad.status, 400);
    const unknown = await adminRequest(http, 'POST', '/v1/sites/e2e.test/nope/load', { load: 1 });
    t.equal(unknown.status, 404);
  });

  await t.test('drain and undrain with the CLI through the admin listener', async (t) => {
    const { stdout } = await run(process.execPath, [CLI, 'drain', 'a', '--for', '1h', '--reason', 'kernel upgrade', '--by', 'tester', '--http', http]);
    t.match(stdout, /e2e\.test\/a: drained until .* by tester: kernel upgrade/);
    t.equal(await answer(ns.port, 'a.e2e.test'), '192.0.2.20', 'drained: fails over at once');
    const { stdout: table } = await run(process.execPath, [CLI, 'status', '--http', http]);
    t.match(table, /SITE\s+STATE\s+LOAD\s+UTIL\s+LAST CHECK\s+WHY/);
    t.match(table, /e2e\.test\/a\s+drained\s.*drained by tester: kernel upgrade \(60m left\)/, table);
    const { stdout: un } = await run(process.execPath, [CLI, 'undrain', 'a.e2e.test', '--http', http]);
    t.match(un, /e2e\.test\/a: undrained/);
    t.equal(await answer(ns.port, 'a.e2e.test'), '192.0.2.10', 'undrained at once');
  });

  await t.test('a drain expires by itself', async (t) => {
    const res = await adminRequest(http, 'POST', '/v1/sites/e2e.test/a/drain', { for: '1s', reason: 'short', by: 'tester' });
    t.equal(res.status, 200);
    t.equal(await answer(ns.port, 'a.e2e.test'), '192.0.2.20', 'drained');
    await eventually('the drain expires', async () => (await answer(ns.port, 'a.e2e.test')) === '192.0.2.10');
    const status = await adminRequest(http, 'GET', '/v1/status');
    t.equal(status.body.sites.find((s: any) => s.site === 'e2e.test/a').state, 'up', 'status no longer shows it');
    t.equal((await adminRequest(http, 'POST', '/v1/sites/e2e.test/a/drain', { for: 'soon' })).status, 400, 'a bad duration is refused');
    t.same(
      await adminRequest(http, 'POST', '/v1/sites/e2e.test/a/drain', { for: 1_800_000 }),
      { status: 400, body: { error: '1800000 is not a duration: give it a unit (d, h, m, s, ms), e.g. 1800000ms or 1800000s' } },
      'a JSON number without a unit is refused, naming the units',
    );
    t.same(
      await adminRequest(http, 'POST', '/v1/sites/e2e.test/a/drain', { for: 0 }),
      { status: 400, body: { error: '0 is not longer than 0' } },
      'a JSON 0 is a duration (zero), refused only as a drain not longer than 0',
    );
    const after = await adminRequest(http, 'GET', '/v1/status');
    t.equal(after.body.sites.find((s: any) => s.site === 'e2e.test/a').state, 'up', 'nothing refused was drained');
  });
});

t.test('embedded: never "all down" before the first probe round', async (t) => {
  // Both targets refuse: the first round makes them down, but only after probing them.
  const dir = tempZonesDir({ 'e2e.yaml': zoneText('http://127.0.0.7:1/h', 'http://127.0.0.7:2/h') });
  const ns = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', 'off']);
  t.teardown(() => ns.stop());
  const first = ns.logs.findIndex((l) => l.msg === 'first probe round done');
  const listening = ns.logs.findIndex((l) => l.msg === 'listening on UDP and TCP');
  t.ok(first >= 0 && first < listening, 'listening only after the first round');
  const downs = ns.logs.filter((l) => l.msg === 'site down').length;
  t.equal(downs, 2, 'both sites were probed before answering');
});
