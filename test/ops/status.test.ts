/**
 * One site-state view (state/status.ts) behind every surface: the view itself, GET /v1/status
 * through the real admin routers (the state store's and the nameserver-only one), explain's
 * candidates and the `sitedns status` table all say the same of the same snapshot.
 */
import t from 'tap';
import { registerOpsRoutes } from '../../src/admin/routes.js';
import { explain } from '../../src/admin/explain.js';
import { AdminRouter, startAdminServer } from '../../src/admin/http.js';
import { formatStatus } from '../../src/cli/status.js';
import { Runtime } from '../../src/state/runtime.js';
import { registerStateRoutes } from '../../src/admin/state-routes.js';
import { StateFollower } from '../../src/state/follower.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { makeSnapshot, type SiteState } from '../../src/state/snapshot.js';
import { statusFromContents, statusView, type SiteView, type StatusReport } from '../../src/state/status.js';
import { emptyContents } from '../../src/state/types.js';
import { createLogger } from '../../src/util/logger.js';
import { compileText, fixedEnv } from '../helpers/dns.js';

// Real time, rounded: the state store's route reads the system clock, so every boundary below is
// at least 4 s away from what a slow run could cross.
const NOW = Math.floor(Date.now() / 1000) * 1000;
const MIN = 60_000;

const SITES = ['up', 'down', 'drained', 'expired', 'forcedup', 'stale', 'unknown'];
const ZONE = `zone: v.test
soa: { mname: ns1.v.test, rname: h.v.test }
nameservers: { ns1.v.test: [192.0.2.1] }
sites:
${SITES.map((id, i) => `  ${id}: { addresses: [192.0.2.${10 + i}], capacity: 100, probe: { http: "http://127.0.0.1:1/h", interval: 1s } }`).join('\n')}
pool: { name: "@", policy: least-busy }
`;

const drain = (state: 'down' | 'up', until: number) => ({ state, by: 'ops@vm', reason: 'kernel upgrade', until });

/** Each case: the snapshot's state of one site, and what every surface must say of it. */
const cases: { id: string; state?: SiteState; expect: Partial<SiteView>; util: string; why: string }[] = [
  {
    id: 'up',
    state: { up: true, load: 40, utilization: 0.4, rttMs: 3, checkedAt: NOW - 500, loadAt: NOW - 500, reason: 'HTTP 200' },
    expect: { state: 'up', up: true, loadStale: false, reason: 'HTTP 200' },
    util: '40%',
    why: 'HTTP 200',
  },
  {
    id: 'down',
    state: { up: false, checkedAt: NOW - 300, reason: 'connection refused' },
    expect: { state: 'down', up: false, reason: 'connection refused' },
    util: '-',
    why: 'connection refused',
  },
  {
    id: 'drained',
    state: { up: false, load: 10, utilization: 0.1, checkedAt: NOW - 200, loadAt: NOW - 200, reason: 'drained by ops@vm: kernel upgrade', forced: drain('down', NOW + 30 * MIN) },
    expect: { state: 'drained', up: false, reason: 'drained by ops@vm: kernel upgrade', forced: { ...drain('down', NOW + 30 * MIN), expired: false } },
    util: '10%',
    why: 'drained by ops@vm: kernel upgrade (30m left)',
  },
  {
    // The snapshot still holds a drain whose time has passed: answers avoid the site until the
    // next re-evaluation, and every surface says so.
    id: 'expired',
    state: { up: false, checkedAt: NOW - 200, reason: 'drained by ops@vm: kernel upgrade', forced: drain('down', NOW - MIN) },
    expect: { state: 'drained', up: false, forced: { ...drain('down', NOW - MIN), expired: true } },
    util: '-',
    why: 'drained by ops@vm: kernel upgrade (expired)',
  },
  {
    id: 'forcedup',
    state: { up: true, reason: 'forced up by ops@vm: kernel upgrade', forced: drain('up', NOW + 2 * 3_600_000) },
    expect: { state: 'forced-up', up: true },
    util: '-',
    why: 'forced up by ops@vm: kernel upgrade (2.0h left)',
  },
  {
    // Measured a minute ago, limit 5 s: the policies ignore this load.
    id: 'stale',
    state: { up: true, load: 20, utilization: 0.2, checkedAt: NOW - MIN, loadAt: NOW - MIN, reason: 'HTTP 200' },
    expect: { state: 'up', up: true, load: 20, utilization: 0.2, loadStale: true },
    util: '20% stale',
    why: 'HTTP 200',
  },
  {
    id: 'unknown',
    expect: { state: 'unknown', up: true, reason: 'not probed' },
    util: '-',
    why: 'not probed',
  },
];

const zones = compileText(ZONE);
const snapshot = makeSnapshot(new Map(cases.filter((c) => c.state).map((c) => [`v.test/${c.id}`, c.state!])), true, NOW);
const view = statusView(zones, snapshot, { kind: 'none', connected: true }, NOW);
const rowOf = (report: { sites: readonly SiteView[] }, id: string) => report.sites.find((s) => s.site === `v.test/${id}`);

t.test('the view: one row per site of the zones, in key order, each state as documented', async (t) => {
  t.same(view.sites.map((s) => s.site), SITES.map((id) => `v.test/${id}`).sort());
  t.same(view.store, { kind: 'none', connected: true, fresh: true });
  for (const c of cases) t.match(rowOf(view, c.id), c.expect, c.id);
  t.notOk('loadStale' in rowOf(view, 'down')!, 'no load: nothing to call stale');
  t.same(rowOf(view, 'unknown'), { site: 'v.test/unknown', state: 'unknown', up: true, reason: 'not probed' });
});

async function getStatus(router: AdminRouter): Promise<StatusReport> {
  const server = await startAdminServer(router, { host: '127.0.0.1', port: 0 });
  try {
    return (await (await fetch(`http://127.0.0.1:${server.port}/v1/status`)).json()) as StatusReport;
  } finally {
    await server.close();
  }
}

t.test('GET /v1/status without a state store: the view as JSON', async (t) => {
  const router = new AdminRouter();
  const env = fixedEnv(NOW);
  registerOpsRoutes(router, { runtime: new Runtime(zones, snapshot), env: () => env, readiness: () => ({ ready: true, zonesLoaded: true, stateKnown: true, stopping: false }) });
  t.same(await getStatus(router), JSON.parse(JSON.stringify(view)));
});

t.test('GET /v1/status of the state store: the same sites, with the store and its probers', async (t) => {
  const router = new AdminRouter();
  const runtime = new Runtime(zones, snapshot);
  const store = new MemoryStateStore();
  await store.heartbeat({ id: 'p1', heartbeatAt: Date.now(), startedAt: NOW - MIN }, true);
  const follower = new StateFollower({ store, runtime, logger: createLogger('silent') });
  t.teardown(() => follower.stop());
  await follower.start(1000);
  runtime.publishState(snapshot); // the snapshot under test, in place of what the follower combined
  registerStateRoutes(router, { store, follower, runtime, auditLog: createLogger('silent') });
  const body = await getStatus(router);
  t.same(body.sites, JSON.parse(JSON.stringify(view.sites)));
  t.match(body.store, { kind: 'memory', connected: true, fresh: true });
  t.match(body.probers, [{ id: 'p1', live: true }], 'the probers the store knows');
  t.ok(body.now >= NOW);
});

t.test('explain: each candidate carries its row of the view', async (t) => {
  const e: any = explain(new Runtime(zones, snapshot), fixedEnv(NOW), { name: 'v.test' });
  t.same(e.candidates.map((c: any) => c.key), SITES.map((id) => `v.test/${id}`));
  for (const c of e.candidates) {
    const row = rowOf(view, c.site)!;
    const fields = ['state', 'up', 'load', 'utilization', 'loadStale', 'rttMs', 'checkedAt', 'reason', 'forced'] as const;
    t.same(Object.fromEntries(fields.map((f) => [f, c[f]])), Object.fromEntries(fields.map((f) => [f, row[f] ?? null])), c.site);
  }
  t.notOk(e.selection.sites.includes('stale'), 'the stale load counted as unknown, not as 20 %');
});

t.test('the status table renders the view; the JSON from HTTP renders the same', async (t) => {
  const table = formatStatus(view);
  const lines = table.split('\n');
  t.match(lines[0], /^SITE\s+STATE\s+LOAD\s+UTIL\s+LAST CHECK\s+WHY$/);
  for (const c of cases) {
    const line = lines.find((l) => l.startsWith(`v.test/${c.id} `))!;
    const cols = line.split(/ {2,}/);
    t.same([cols[1], cols[3], cols.at(-1)], [rowOf(view, c.id)!.state, c.util, c.why], c.id);
  }
  t.same(lines.slice(-2), ['state store: none', 'probers: none']);
  const router = new AdminRouter();
  registerOpsRoutes(router, { runtime: new Runtime(zones, snapshot), env: () => fixedEnv(NOW), readiness: () => ({ ready: true, zonesLoaded: true, stateKnown: true, stopping: false }) });
  t.equal(formatStatus(await getStatus(router)), table);
});

t.test('from the store contents: every site of the zones, drains as combined at that moment', async (t) => {
  const contents = emptyContents();
  contents.forced.set('v.test/drained', { ...drain('down', NOW + 30 * MIN), at: NOW });
  contents.forced.set('v.test/expired', { ...drain('down', NOW - MIN), at: NOW - 2 * MIN });
  const report = statusFromContents(contents, NOW, 'redis', zones);
  t.equal(report.sites.length, SITES.length, 'unprobed sites are listed when the zones are known');
  t.match(rowOf(report, 'drained'), { state: 'drained', forced: { expired: false } });
  t.same(rowOf(report, 'expired'), { site: 'v.test/expired', state: 'unknown', up: true, reason: 'not probed' }, 'an expired drain is not combined in');
  t.equal(statusFromContents(contents, NOW, 'redis').sites.length, 1, 'without the zones: the sites the store has a state for');
});
