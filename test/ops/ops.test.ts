/** prepareOps in-process: readiness, all-down transitions, the admin routes over real HTTP. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { countAllDownNames, prepareOps } from '../../src/app/ops.js';
import { renderMetrics } from '../../src/metrics/definitions.js';
import { ReloadController } from '../../src/zones/reload.js';
import { prebuildTableInSlices } from '../../src/server/fast-path.js';
import { ZoneStore } from '../../src/zones/zone-store.js';
import { makeSnapshot } from '../../src/state/snapshot.js';
import { compileText, tempZonesDir } from '../helpers/dns.js';
import { memoryLogger, metric, parseMetrics } from '../helpers/metrics.js';

const SAMPLE = readFileSync(new URL('../fixtures/app.example.com.yaml', import.meta.url), 'utf8');

t.test('names whose every site is down are counted at scrape', async (t) => {
  const zones = compileText(SAMPLE);
  const down = makeSnapshot(new Map([['app.example.com/boston', { up: false }], ['app.example.com/chicago', { up: false }]]), true);
  t.equal(countAllDownNames(zones, down), 3, 'boston, chicago (each failing over to the other) and americas');
  t.equal(countAllDownNames(zones, makeSnapshot(new Map(), true)), 0);
});

t.test('readiness: zones loaded and a first state known; health and routes over HTTP', async (t) => {
  const dir = tempZonesDir({ 'app.example.com.yaml': SAMPLE });
  const { logger } = memoryLogger('warn');
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir), prebuild: prebuildTableInSlices }, logger);
  t.teardown(() => reloads.zoneStore.close());
  await reloads.start();
  const runtime = reloads.runtime;
  const ops = prepareOps({ http: '127.0.0.1:0', querySample: 0, watchDebounceMs: 0, stopTimeoutMs: 1000, logger, signals: false });
  await ops.attach({ runtime, reloads });
  const base = `http://127.0.0.1:${ops.admin!.port}`;
  const get = async (path: string): Promise<{ status: number; body: any }> => {
    const res = await fetch(base + path);
    return { status: res.status, body: res.headers.get('content-type')!.includes('json') ? await res.json() : await res.text() };
  };
  t.equal((await get('/healthz')).status, 200);
  const notReady = await get('/readyz');
  t.equal(notReady.status, 503, 'sites have probes and no state is known yet');
  t.match(notReady.body, { zonesLoaded: true, stateKnown: false });
  runtime.publishState(makeSnapshot(new Map([['app.example.com/boston', { up: false, reason: 'timeout' }]]), true));
  t.equal((await get('/readyz')).status, 200, 'ready once a fresh state arrived');
  runtime.publishState(makeSnapshot(runtime.state.sites, false));
  t.equal((await get('/readyz')).status, 200, 'stays ready when the state goes stale (fail static)');

  const status = await get('/v1/status');
  t.match(status.body.sites.find((s: any) => s.site === 'app.example.com/boston'), { state: 'down', reason: 'timeout' });
  t.match(status.body.sites.find((s: any) => s.site === 'app.example.com/geneva'), { state: 'unknown', up: true, reason: 'not probed' });
  t.equal((await get('/v1/explain')).status, 400);
  t.equal((await get('/v1/explain?name=boston.app.example.com')).body.answer[0].data, '203.0.113.20');
  t.equal((await get('/nope')).status, 404);
  const reload = await fetch(base + '/v1/reload', { method: 'POST' });
  t.equal(reload.status, 200);
  t.match(await reload.json(), { trigger: 'api', zones: ['app.example.com'] });
  const metrics = await get('/metrics');
  t.match(metrics.body, /sitedns_ready 1/);

  let stopped = false;
  await ops.stop(async () => {
    stopped = true;
  });
  t.ok(stopped);
  await t.rejects(fetch(base + '/healthz'), 'admin closed after stop');
});

t.test('a status provider replaces the default; the token guards reload', async (t) => {
  const dir = tempZonesDir({ 'app.example.com.yaml': SAMPLE });
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir), prebuild: prebuildTableInSlices }, memoryLogger('warn').logger);
  t.teardown(() => reloads.zoneStore.close());
  await reloads.start();
  const ops = prepareOps({ http: '127.0.0.1:0', httpToken: 's3cret', querySample: 0, watchDebounceMs: 0, stopTimeoutMs: 1000, logger: memoryLogger('warn').logger, signals: false, status: async () => ({ source: 'redis', sites: [] }) });
  await ops.attach({ runtime: reloads.runtime, reloads });
  t.teardown(() => ops.stop(async () => {}));
  const base = `http://127.0.0.1:${ops.admin!.port}`;
  t.same(await (await fetch(base + '/v1/status')).json(), { source: 'redis', sites: [] });
  t.equal((await fetch(base + '/v1/reload', { method: 'POST' })).status, 401);
  t.equal((await fetch(base + '/v1/reload', { method: 'POST', headers: { authorization: 'Bearer s3cret' } })).status, 200);
});

t.test('startMetricsListener serves /metrics and health for processes without DNS', async (t) => {
  const { startMetricsListener } = await import('../../src/app/ops.js');
  const server = await startMetricsListener({ http: '127.0.0.1:0', logger: memoryLogger('warn').logger });
  t.teardown(() => server.close());
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  t.equal(res.status, 200);
  t.match(await res.text(), /# TYPE sitedns_probe_seconds histogram/);
  t.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
});
