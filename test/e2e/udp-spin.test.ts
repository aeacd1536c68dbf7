/**
 * `serve --udp-threads 2 --udp-spin <µs>` end to end: under a burst of queries every one
 * is answered, /metrics reports sitedns_udp_spin_total by outcome, `--udp-spin 0` never polls,
 * and out-of-range values are refused. Whether a thread spins depends on timing, so the
 * spin-then-sleep rule itself is tested deterministically on the addon (test/addon/
 * blocking.test.ts, "spinMicros: ..."). Skipped where the batched addon is not built, unless
 * SITEDNS_REQUIRE_ADDON=1.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';
import { decode, query } from '../helpers/dns.js';
import { metric, parseMetrics } from '../helpers/metrics.js';
import { serveRefusal, startSitedns, udpQuery } from '../helpers/net.js';

/**
 * `total` queries from `clients` sockets (so both threads' sockets get some), each keeping
 * `window` outstanding like dnsperf: a reply sends the next. Resolves with the answers' addresses.
 */
async function burst(port: number, total: number, clients = 4, window = 8): Promise<string[]> {
  const addresses: string[] = [];
  const perClient = Math.ceil(total / clients);
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const socket = dgram.createSocket('udp4');
      socket.bind(0, '127.0.0.1');
      await once(socket, 'listening');
      let sent = 0;
      const next = () => {
        if (sent < perClient) socket.send(query('boston.app.example.com', 'A', { id: (sent++ % 65535) + 1 }), port, '127.0.0.1');
      };
      const done = new Promise<void>((resolve, reject) => {
        let replies = 0;
        const timer = setTimeout(() => reject(new Error(`only ${replies} of ${perClient} replies`)), 20_000);
        socket.on('message', (m) => {
          addresses.push(decode(m).answers[0]?.address);
          if (++replies === perClient) {
            clearTimeout(timer);
            resolve();
          } else next();
        });
      });
      for (let k = 0; k < window; k++) next();
      await done.finally(() => socket.close());
    }),
  );
  return addresses;
}

async function run(): Promise<void> {
  for (const spin of ['200', '0']) {
    t.test(`--udp-spin ${spin}: a burst is answered in full; /metrics has the spin outcomes`, async (t) => {
      const server = await startSitedns(['serve', '--zones', 'zones', '--listen', '127.0.0.1:0', '--udp-threads', '2', '--udp-spin', spin, '--http', '127.0.0.1:0']);
      t.teardown(() => server.stop('SIGKILL'));
      const admin = await server.waitForLog((l) => l.msg === 'admin listening');
      const addresses = await burst(server.port, 4000);
      t.equal(addresses.length, 4000, 'every query answered');
      t.same([...new Set(addresses)], ['203.0.113.10'], 'with the Site Name\'s address');
      const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text());
      const hits = metric(metrics, 'sitedns_udp_spin_total', { outcome: 'hit' });
      const misses = metric(metrics, 'sitedns_udp_spin_total', { outcome: 'miss' });
      // metric() sums to 0 for a series that is missing: look for the series themselves.
      const exported = ['hit', 'miss'].every((o) => metrics.has(`sitedns_udp_spin_total{outcome="${o}"}`));
      t.ok(exported, `both outcomes exported (hit ${hits}, miss ${misses})`);
      if (spin === '0') t.equal(hits + misses, 0, 'spinning off: no wait ever polled');
      t.equal(await server.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
    });
  }

  t.test('--udp-spin out of range or not a number is refused', async (t) => {
    const refuse = (args: string[], pattern: RegExp, what: string) => {
      const r = serveRefusal(['--udp-threads', '2', ...args]);
      t.equal(r.status, 1, `${what}: exit 1`);
      t.match(r.output, pattern, what);
    };
    refuse(['--udp-spin', '1001'], /--udp-spin: at most 1000/, 'above 1 ms');
    refuse(['--udp-spin', 'fast'], /--udp-spin: .*fast.* is not a whole number/, 'not a number');
    refuse(['--udp-threads', '0', '--udp-spin', '50'], /--udp-spin applies to the threads of --udp-threads only/, 'without --udp-threads');
  });

  // Any value, one out of range too: the setting is not this server's.
  for (const value of ['50', '5000']) {
    t.test(`SITEDNS_UDP_SPIN=${value} in the environment of a server without threads is ignored, with a warning`, async (t) => {
      const server = await startSitedns(['serve', '--zones', 'zones', '--listen', '127.0.0.1:0', '--http', 'off'], { SITEDNS_UDP_SPIN: value });
      t.teardown(() => server.stop('SIGKILL'));
      t.ok(server.logs.some((l) => l.msg === 'SITEDNS_UDP_SPIN ignored: it applies to --udp-threads only'), 'warned');
      t.equal(decode((await udpQuery(server.port, query('boston.app.example.com')))!).answers[0]?.address, '203.0.113.10', 'and serving');
      t.equal(await server.stop('SIGTERM'), 0);
    });
  }
}

const why = udpThreadsUnavailable();
if (why !== null && process.env.SITEDNS_REQUIRE_ADDON !== '1') t.skip(`UDP threads cannot run here: ${why}`);
else await run();
