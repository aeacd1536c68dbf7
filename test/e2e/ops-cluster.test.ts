/** serve --workers 2: the primary's /metrics adds up the queries the workers answered. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { query, tempZonesDir } from '../helpers/dns.js';
import { metric, parseMetrics } from '../helpers/metrics.js';
import { startSitedns, tcpQueries, udpQuery } from '../helpers/net.js';

t.test('metrics over HTTP count the queries of every worker', async (t) => {
  const sample = readFileSync(new URL('../../zones/app.example.com.yaml', import.meta.url), 'utf8').replace(/^\s+probe: .*\n/gm, '');
  const dir = tempZonesDir({ 'app.example.com.yaml': sample });
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0'], { SITEDNS_WORKERS: '2' });
  t.teardown(() => server.stop());
  const admin = await server.waitForLog((l) => l.msg === 'admin listening');
  for (let i = 0; i < 6; i++) t.ok(await udpQuery(server.port, query('boston.app.example.com', 'A', { id: i })), `UDP reply ${i}`);
  await tcpQueries(server.port, [query('nope.app.example.com'), query('geneva.app.example.com')]);
  const m = parseMetrics(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text());
  t.equal(metric(m, 'sitedns_queries_total', { zone: 'app.example.com', qtype: 'A', rcode: 'NOERROR', transport: 'udp' }), 6);
  t.equal(metric(m, 'sitedns_queries_total', { rcode: 'NXDOMAIN', transport: 'tcp' }), 1);
  t.equal(metric(m, 'sitedns_site_answers_total', { name: 'boston.app.example.com', site: 'boston' }), 6);
  t.ok(metric(m, 'sitedns_config_generation') > 0, 'the primary\'s own metrics are there too');
  const code = await server.stop();
  t.equal(code, 0);
});
