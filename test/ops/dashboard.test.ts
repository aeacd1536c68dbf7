/**
 * The shipped Grafana dashboard (deploy/grafana/sitedns.json) and Prometheus alert rules
 * (deploy/prometheus/sitedns.rules.yml): promtool accepts the rules and their unit tests pass,
 * and every metric they name is one a live `sitedns serve` exports on /metrics.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tempZonesDir } from '../helpers/dns.js';
import { startSitedns } from '../helpers/net.js';

const PROMETHEUS_DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const RULES = readFileSync(`${PROMETHEUS_DIR}sitedns.rules.yml`, 'utf8');
const DASHBOARD = JSON.parse(readFileSync(new URL('../../deploy/grafana/sitedns.json', import.meta.url), 'utf8'));
const SAMPLE = readFileSync(new URL('../../zones/app.example.com.yaml', import.meta.url), 'utf8');

/** The metric names a PromQL text uses: sitedns's own and the process's (prom-client's defaults). */
function metricNames(promql: string): string[] {
  return [...promql.matchAll(/\b(?:sitedns|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);
}

/** Every PromQL text of the dashboard: panel targets and template variable queries. */
function dashboardQueries(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) dashboardQueries(item, out);
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if ((key === 'expr' || key === 'definition') && typeof value === 'string') out.push(value);
      else dashboardQueries(value, out);
    }
  }
  return out;
}

/** `# TYPE name type` lines of a scrape: name -> type. */
function exportedTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1], m[2]);
  return types;
}

/** The exported metric a name in a query reads: a histogram's or summary's series carry a suffix. */
function exportedAs(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const type = types.get(base);
  return type === 'histogram' || (type === 'summary' && !name.endsWith('_bucket')) ? base : undefined;
}

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const noPromtool = promtool.error ? 'promtool is not installed (Debian `prometheus`; .ci/run installs it)' : false;

t.test('promtool: the rules are valid and each alert fires as its unit test says', { skip: noPromtool }, async (t) => {
  const check = spawnSync('promtool', ['check', 'rules', 'sitedns.rules.yml'], { cwd: PROMETHEUS_DIR, encoding: 'utf8' });
  t.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`);
  t.match(check.stdout, /SUCCESS: 8 rules found/);
  const test = spawnSync('promtool', ['test', 'rules', 'sitedns.rules.test.yml'], { cwd: PROMETHEUS_DIR, encoding: 'utf8' });
  t.equal(test.status, 0, `promtool test rules: ${test.stdout}${test.stderr}`);
  const alerts = [...RULES.matchAll(/^\s+- alert: (\S+)$/gm)].map((m) => m[1]);
  const tested = readFileSync(`${PROMETHEUS_DIR}sitedns.rules.test.yml`, 'utf8');
  for (const alert of alerts) t.match(tested, `alertname: ${alert}\n`, `${alert} has a unit test`);
});

t.test('every metric the dashboard and the rules name is exported by a live serve', async (t) => {
  const ns = await startSitedns(['serve', '--zones', tempZonesDir({ 'app.example.com.yaml': SAMPLE.replace(/^\s+probe: .*\n/gm, '') }), '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0']);
  t.teardown(() => ns.stop());
  const port = (await ns.waitForLog((l) => l.msg === 'admin listening')).port;
  const types = exportedTypes(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  t.notOk(exportedAs('sitedns_process_process_cpu_seconds_total', types), 'a name nothing exports is told apart (the check can fail)');

  const queries = dashboardQueries(DASHBOARD.panels).concat(dashboardQueries(DASHBOARD.templating));
  t.ok(queries.length >= 40, `the dashboard's queries are found (${queries.length})`);
  const named = new Map<string, Set<string>>([['the dashboard', new Set(queries.flatMap(metricNames))], ['the alert rules', new Set(metricNames(RULES))]]);
  t.ok(named.get('the dashboard')!.size >= 30 && named.get('the alert rules')!.size >= 7, 'both name many metrics');
  for (const [where, names] of named) for (const name of names) t.ok(exportedAs(name, types), `${name} (in ${where}) is on /metrics`);

  // Every sitedns metric is on the dashboard, so a new one is not forgotten there.
  const onDashboard = new Set([...named.get('the dashboard')!].map((n) => exportedAs(n, types)));
  for (const name of types.keys()) if (name.startsWith('sitedns_')) t.ok(onDashboard.has(name), `${name} is on the dashboard`);
});

t.test('metric names: standard process names, no gauge named like a counter', async (t) => {
  const ns = await startSitedns(['serve', '--zones', tempZonesDir({ 'app.example.com.yaml': SAMPLE.replace(/^\s+probe: .*\n/gm, '') }), '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0'], { SITEDNS_UDP_THREADS: '1' });
  t.teardown(() => ns.stop());
  const port = (await ns.waitForLog((l) => l.msg === 'admin listening')).port;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const types = exportedTypes(text);
  for (const [name, type] of [['process_cpu_seconds_total', 'counter'], ['process_resident_memory_bytes', 'gauge'], ['process_start_time_seconds', 'gauge'], ['nodejs_eventloop_lag_p99_seconds', 'gauge'], ['nodejs_heap_size_used_bytes', 'gauge'], ['nodejs_gc_duration_seconds', 'histogram']]) {
    t.equal(types.get(name), type, `${name} is a ${type}, under its standard name`);
  }
  t.notOk([...types.keys()].some((n) => n.startsWith('sitedns_process_')), 'no prefixed copy');
  const gaugesNamedTotal = [...types].filter(([name, type]) => type === 'gauge' && name.endsWith('_total')).map(([name]) => name);
  t.same(gaugesNamedTotal, [], 'no gauge ends in _total');
  t.ok([...types].some(([, type]) => type === 'counter'), 'the check sees the types');
  const info = [...text.matchAll(/^sitedns_build_info\{(.*)\} (\S+)$/gm)];
  t.equal(info.length, 1, 'one build info series (with a UDP thread too)');
  t.equal(info[0]?.[2], '1');
  const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
  t.match(info[0]?.[1], `version="${version}"`);
  t.match(info[0]?.[1], `node="${process.versions.node}"`);
  t.match(text, /^sitedns_site_state\{zone="app\.example\.com",site="boston",state="unknown"\} 1$/m, 'an unprobed site is in state unknown');
  t.match(text, /^sitedns_site_state\{zone="app\.example\.com",site="boston",state="down"\} 0$/m);
});
