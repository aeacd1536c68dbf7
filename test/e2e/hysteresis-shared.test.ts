/**
 * Hysteresis (seed 002) decided once and answered by everyone: real HTTP backends whose load the
 * test sets, probed every 200 ms. `serve --udp-threads 2`: 8 client sockets asking the same Pool
 * Name in a burst (spread over both threads) all get the same site, before and after a move.
 * Two nameservers on one real Redis answer the same site, including one started after the first
 * pick whose own first pick would differ; the decision is the `<prefix>current` record.
 * The threads part is skipped where the batched addon is not built (unless SITEDNS_REQUIRE_ADDON=1).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';
import { RedisStateStore } from '../../src/state/redis-store.js';
import { createLogger } from '../../src/util/logger.js';
import { answer, eventually, probedZone, startBackend, type Backend } from '../helpers/backends.js';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { metric, parseMetrics } from '../helpers/metrics.js';
import { CLI, startSitedns } from '../helpers/net.js';
import { startRedis } from '../helpers/redis.js';

const A = '192.0.2.10';
const B = '192.0.2.20';
const C = '192.0.2.30';

/** Sites a, b, c (capacity 100: a load of 30 is 30 %), one least-busy Pool Name with hysteresis at the apex. */
async function threeBackends(t: Tap.Test, loads: [number, number, number]): Promise<{ backends: Backend[]; zones: string }> {
  const backends = await Promise.all(loads.map((load, i) => startBackend(`127.0.0.${i + 2}`, load)));
  t.teardown(() => Promise.all(backends.map((b) => b.stop())));
  const [a, b, c] = backends;
  const zone = probedZone(a.url, b.url, {
    moreSites: `  c: { addresses: [${C}], capacity: 100, probe: { http: "${c.url}", interval: 200ms, timeout: 300ms, load: load } }\n`,
    rest: 'pool: { name: "@", policy: least-busy, hysteresis: { stay_below: 0.5, differential: 0.2 } }\n',
  });
  return { backends, zones: tempZonesDir({ 'r.yaml': zone }) };
}

const setLoads = (backends: Backend[], loads: number[]) => backends.forEach((b, i) => (b.load = loads[i]));

/** `sockets` client sockets each send `each` queries for r.test A without waiting; the answers each socket got. */
async function burst(port: number, sockets: number, each: number): Promise<Set<string>[]> {
  const seen = Array.from({ length: sockets }, () => new Set<string>());
  let replies = 0;
  const clients = await Promise.all(seen.map((set) => new Promise<dgram.Socket>((resolve) => {
    const s = dgram.createSocket('udp4');
    s.on('message', (raw) => {
      replies++;
      set.add(decode(raw).answers[0]?.address ?? 'no answer');
    });
    s.bind(0, '127.0.0.1', () => resolve(s));
  })));
  const packet = query('r.test');
  for (let round = 0; round < each; round++) for (const s of clients) s.send(packet, port, '127.0.0.1');
  // Until the replies stop coming (a busy machine answers a burst for a while).
  for (let last = -1, waited = 0; (replies === 0 || replies !== last) && waited < 10_000; waited += 300) {
    last = replies;
    await new Promise((r) => setTimeout(r, 300));
  }
  clients.forEach((s) => s.close());
  return seen;
}

t.test('serve --udp-threads 2: every thread answers the one current site', async (t) => {
  const why = udpThreadsUnavailable();
  if (why !== null && process.env.SITEDNS_REQUIRE_ADDON !== '1') return t.skip(`UDP threads cannot run here: ${why}`);
  // Equal loads: without one decision, each thread's first pick is its own weighted draw.
  const { backends, zones } = await threeBackends(t, [20, 20, 20]);
  const server = await startSitedns(['serve', '--zones', zones, '--listen', '127.0.0.1:0', '--udp-threads', '2', '--http', '127.0.0.1:0']);
  t.teardown(() => server.stop('SIGKILL'));
  const admin = await server.waitForLog((l) => l.msg === 'admin listening');
  const received = async () => {
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text());
    return [0, 1].map((thread) => metric(m, 'sitedns_udp_thread_received_total', { thread: String(thread) }));
  };
  await server.waitForLog((l) => l.msg === 'hysteresis: current site decided' && l.list === 'r.test');
  await eventually('loads probed', async () => {
    const status = await (await fetch(`http://127.0.0.1:${admin.port}/v1/status`)).json();
    return status.sites.filter((s: any) => s.load === 20).length === 3;
  });

  // Bursts until both threads have answered part of them: the steering spreads a burst over the
  // threads only when thread 0 falls behind (policy/udp-steering.ts), which a busy machine decides.
  const check = async (site: string, what: string) => {
    const before = await received();
    const seen = Array.from({ length: 8 }, () => new Set<string>());
    let after = before;
    for (let i = 0; i < 6 && !(after[0] > before[0] && after[1] > before[1]); i++) {
      (await burst(server.port, 8, 1500)).forEach((set, socket) => set.forEach((address) => seen[socket].add(address)));
      after = await received();
    }
    t.ok(after[1] - before[1] > 0 && after[0] - before[0] > 0, `both threads answered the bursts (thread 0: ${after[0] - before[0]}, thread 1: ${after[1] - before[1]})`);
    t.same(seen.map((s) => [...s]), Array(8).fill([site]), what);
  };
  await check(A, 'equal loads: all 8 sockets get a (the tie goes to the first listed)');

  setLoads(backends, [90, 20, 30]);
  await eventually('the move reaches the answers', async () => (await answer(server.port, 'r.test')) === B);
  await check(B, 'after a moves above stay_below: all 8 sockets get b, the least utilized');
});

t.test('two nameservers on one Redis answer the same current site', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const { backends, zones } = await threeBackends(t, [30, 10, 20]);
  const prober = spawn(process.execPath, [CLI, 'probe', '--zones', zones, '--redis', redis.url, '--prober-id', 'p1'], { stdio: 'ignore' });
  t.teardown(async () => {
    if (prober.exitCode !== null) return;
    prober.kill('SIGKILL');
    await once(prober, 'exit');
  });
  const reader = new RedisStateStore({ url: redis.url, logger: createLogger('silent') });
  t.teardown(() => reader.close());
  const loadsStored = (loads: number[]) => eventually(`loads ${loads} in Redis`, async () => {
    if (!reader.connected()) return false;
    const views = (await reader.readAll()).views.get('p1');
    return loads.every((load, i) => views?.get(`r.test/${'abc'[i]}`)?.load === load);
  });
  const stored = async () => (reader.connected() ? (await reader.readAll()).current.get('r.test') : undefined);
  const serveArgs = ['serve', '--zones', zones, '--listen', '127.0.0.1:0', '--http', 'off', '--redis', redis.url];

  await loadsStored([30, 10, 20]);
  const ns1 = await startSitedns(serveArgs);
  t.teardown(() => ns1.stop());
  await eventually('ns1 answers', async () => (await answer(ns1.port, 'r.test')) === B);
  t.same(await stored(), { site: 'b' }, 'ns1\'s first pick (b, the least utilized) is the record in Redis');

  // b stays below stay_below; a is now the least utilized: a newcomer's own first pick.
  setLoads(backends, [10, 40, 30]);
  await loadsStored([10, 40, 30]);
  const ns2 = await startSitedns(serveArgs);
  t.teardown(() => ns2.stop());
  await new Promise((r) => setTimeout(r, 500));
  t.same([await answer(ns1.port, 'r.test'), await answer(ns2.port, 'r.test')], [B, B], 'a nameserver started after the first pick adopts it');

  setLoads(backends, [10, 90, 30]);
  await eventually('ns1 moves', async () => (await answer(ns1.port, 'r.test')) === A);
  await eventually('ns2 moves', async () => (await answer(ns2.port, 'r.test')) === A);
  t.same(await stored(), { site: 'a' }, 'the move is the record in Redis');
  const answers = new Set<string>();
  for (let i = 0; i < 20; i++) for (const ns of [ns1, ns2]) answers.add(await answer(ns.port, 'r.test'));
  t.same([...answers], [A], 'and both keep answering it');
});
