/**
 * `serve --udp-threads 2`: /metrics adds up the queries the threads answered (UDP) and those the
 * main thread answered (TCP), by label, with the main thread's own metrics beside them. Skipped
 * where the batched addon is not built, unless SITEDNS_REQUIRE_ADDON=1.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';
import { query, tempZonesDir } from '../helpers/dns.js';
import { metric, parseMetrics } from '../helpers/metrics.js';
import { startSitedns, tcpQueries, udpQuery } from '../helpers/net.js';

const why = udpThreadsUnavailable();
if (why !== null && process.env.SITEDNS_REQUIRE_ADDON !== '1') t.skip(`UDP threads cannot run here: ${why}`);
else {
  t.test('metrics over HTTP count the queries of every thread', async (t) => {
    const sample = readFileSync(new URL('../../zones/app.example.com.yaml', import.meta.url), 'utf8').replace(/^\s+probe: .*\n/gm, '');
    const dir = tempZonesDir({ 'app.example.com.yaml': sample });
    const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--udp-threads', '2']);
    t.teardown(() => server.stop());
    const admin = await server.waitForLog((l) => l.msg === 'admin listening');
    // Fresh source ports: both threads' sockets get some of them.
    for (let i = 0; i < 6; i++) t.ok(await udpQuery(server.port, query('boston.app.example.com', 'A', { id: i })), `UDP reply ${i}`);
    await tcpQueries(server.port, [query('nope.app.example.com'), query('geneva.app.example.com')]);
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text());
    t.equal(metric(m, 'sitedns_queries_total', { zone: 'app.example.com', qtype: 'A', rcode: 'NOERROR', transport: 'udp' }), 6);
    t.equal(metric(m, 'sitedns_queries_total', { rcode: 'NXDOMAIN', transport: 'tcp' }), 1);
    t.equal(metric(m, 'sitedns_site_answers_total', { name: 'boston.app.example.com', site: 'boston' }), 6);
    t.ok(metric(m, 'sitedns_config_generation') > 0, "the main thread's own metrics are there too");
    const code = await server.stop();
    t.equal(code, 0);
  });
}
