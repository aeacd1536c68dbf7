/**
 * `serve --udp-threads 2` end to end: one process whose UDP is answered by two threads
 * waiting in recvmmsg and whose TCP, probes and admin stay on the main thread. A probed site
 * going down and up reaches every thread (by deltas), a drain too, and a reload (with the main
 * thread's generation, the drain kept); /metrics adds up the threads' queries and the main
 * thread's; /readyz counts the threads listening; a thread that cannot bind fails the start;
 * conflicting flags are refused. Skipped where the batched addon is not built, unless
 * SITEDNS_REQUIRE_ADDON=1.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { adminRequest } from '../../src/admin/http.js';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';
import { decode, query } from '../helpers/dns.js';
import { probeTarget, probedZonesDir } from '../helpers/probe-target.js';
import { metric, parseMetrics } from '../helpers/metrics.js';
import { SITEDNS_VERSION } from '../../src/util/version.js';
import { CLI, serveRefusal, startSitedns, tcpQueries, udpQuery } from '../helpers/net.js';

async function run(): Promise<void> {
  t.test('a probed site flips in every thread; metrics add up threads and main thread', async (t) => {
    // Boston's probe target: a listener this test opens and closes (closed: connection refused).
    const { open, close } = probeTarget();
    t.teardown(close);
    const port = await open();
    const dir = probedZonesDir(port);
    const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--udp-threads', '2', '--http', '127.0.0.1:0']);
    t.teardown(() => server.stop('SIGKILL'));
    const admin = await server.waitForLog((l) => l.msg === 'admin listening');
    t.match(server.logs.find((l) => l.msg === 'listening on UDP and TCP'), { udpPath: 'threads', udpThreads: 2 });

    const bostonAnswer = async () => decode((await udpQuery(server.port, query('boston.app.example.com')))!).answers[0]?.address;
    // 24 queries from fresh source ports: at this load thread 0 takes them all (policy/udp-steering.ts);
    // test/perf/udp-threads.test.ts, without steering, shows that state and reloads reach every thread.
    const allAnswers = async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 24; i++) seen.add(await bostonAnswer());
      return [...seen];
    };
    const until = async (what: string, address: string) => {
      for (let i = 0; i < 100 && (await bostonAnswer()) !== address; i++) await new Promise((r) => setTimeout(r, 100));
      t.same(await allAnswers(), [address], what);
    };
    const deltas = async () => metric(parseMetrics(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text()), 'sitedns_udp_thread_state_messages_total', { kind: 'delta' }) ?? 0;
    await until('boston up in every thread', '203.0.113.10');
    const deltasBefore = await deltas();
    await close();
    await until('boston down in every thread (the follower\'s state reached them)', '198.51.100.30');
    await open(port);
    await until('and up again', '203.0.113.10');
    // A probe result is an incremental recompute: the threads get the changed site only.
    t.ok((await deltas()) > deltasBefore, 'the flips went to the threads as deltas');

    const tcp = await tcpQueries(server.port, [query('boston.app.example.com'), query('geneva.app.example.com')]);
    t.same(tcp.map((r) => decode(r).answers[0]?.address), ['203.0.113.10', '198.51.100.30'], 'TCP is answered by the main thread');

    // A reload rolls through the threads, which serve the main thread's generation (they compile
    // the texts it loaded).
    server.proc.kill('SIGHUP');
    const load = await server.waitForLog((l) => l.msg === 'zones reloaded' && l.trigger === 'sighup');
    const rolled = await server.waitForLog((l) => l.msg === 'UDP threads reloaded', 30_000);
    t.match(rolled, { threads: 2, ok: true, generation: load.generation }, "both threads reloaded, to the main thread's generation");
    t.same(await allAnswers(), ['203.0.113.10'], 'and answer after it');

    // Empty datagrams are dropped in C and counted per socket: the threads' counters reach /metrics.
    for (let i = 0; i < 3; i++) t.equal(await udpQuery(server.port, Buffer.alloc(0), '127.0.0.1', 200), null, 'an empty datagram gets no reply');
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text());
    const udp = metric(m, 'sitedns_queries_total', { transport: 'udp' });
    t.ok(udp >= 72, `the threads' UDP queries are counted (${udp})`);
    t.equal(metric(m, 'sitedns_queries_total', { transport: 'tcp' }), 2, 'the main thread\'s TCP queries too');
    // docs/metrics.md: the state messages to the threads are counted
    // (the flips above went as deltas or whole states; a thread gets a whole one when it starts).
    t.ok(metric(m, 'sitedns_udp_thread_state_messages_total', { kind: 'whole' }) >= 2, 'state messages to the threads are counted');
    t.equal(metric(m, 'sitedns_udp_batch_dropped_total', { reason: 'empty' }), 3, 'the threads\' socket counters are summed');
    const started = metric(m, 'process_start_time_seconds');
    t.ok(started > Date.now() / 1000 - 600 && started <= Date.now() / 1000, `process metrics are there, once (start time ${started}, not a sum over threads)`);
    t.equal(metric(m, 'sitedns_build_info', { version: SITEDNS_VERSION, node: process.versions.node }), 1, 'build info is there, once');
    // docs/metrics.md: /readyz and sitedns_udp_threads_live count the threads listening.
    t.equal(metric(m, 'sitedns_udp_threads_live'), 2, 'sitedns_udp_threads_live: both threads listen');
    const ready = await fetch(`http://127.0.0.1:${admin.port}/readyz`);
    t.equal(ready.status, 200, '/readyz: ready');
    t.match(await ready.json(), { status: 'ready', udpListening: true, udpThreads: { live: 2, total: 2 } }, '/readyz says how many threads listen');

    // A drain through the admin API (a full recompute: the whole state) reaches every thread,
    // and a reload, which sends each thread the whole state again, keeps it.
    const drained = await adminRequest(`127.0.0.1:${admin.port}`, 'POST', '/v1/sites/app.example.com/boston/drain', { reason: 'test', for: '10m' });
    t.equal(drained.status, 200, 'drained through the main thread');
    await until('a drain reaches every thread', '198.51.100.30');
    server.proc.kill('SIGHUP');
    await server.waitForLog((l) => l.msg === 'UDP threads reloaded' && l !== rolled, 30_000);
    t.same(await allAnswers(), ['198.51.100.30'], 'still drained in every thread after the reload');
    t.equal(await server.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
  });

  t.test('a thread that cannot bind its port fails the start: exit 1 rather than waiting for it', async (t) => {
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind({ port: 0, address: '127.0.0.1', exclusive: true }, resolve));
    t.teardown(() => taken.close());
    const { port } = taken.address();
    // spawnSync: the taken port needs no event loop (the kernel refuses the bind); 20 s is far
    // more than a start takes, so a server that waits for its threads forever fails here.
    const r = spawnSync(process.execPath, [CLI, 'serve', '--zones', 'zones', '--listen', `127.0.0.1:${port}`, '--udp-threads', '2', '--http', 'off'], { encoding: 'utf8', timeout: 20_000 });
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    t.ok(lines.some((l) => l.level === 'fatal' && /EADDRINUSE|address already in use/i.test(l.msg)), 'the server says why');
    t.equal(r.status, 1, 'the server exits 1');
  });

  t.test('several --listen addresses: every thread waits on all of them', async (t) => {
    const v6 = await canBindV6();
    const listen = ['127.0.0.1:0', '127.0.0.2:0', ...(v6 ? ['[::1]:0'] : [])];
    const server = await startSitedns(['serve', '--zones', 'zones', '--listen', ...listen.flatMap((l) => ['--listen', l]).slice(1), '--udp-threads', '2', '--http', 'off']);
    t.teardown(() => server.stop('SIGKILL'));
    await server.waitForLog((l) => l.msg === 'listening on UDP and TCP' && l.address === (v6 ? '::1' : '127.0.0.2'));
    const addresses = server.logs.filter((l) => l.msg === 'listening on UDP and TCP');
    t.equal(addresses.length, listen.length, 'one listener per address');
    for (const { address, port } of addresses) {
      const answers = new Set<string>();
      for (let i = 0; i < 12; i++) answers.add(decode((await udpQuery(port, query('boston.app.example.com'), address))!).answers[0]?.address);
      t.same([...answers], ['203.0.113.10'], `${address}:${port} answered by the threads`);
    }
    t.equal(await server.stop('SIGTERM'), 0);
  });

  t.test('conflicting flags are refused', async (t) => {
    const refuse = (args: string[], pattern: RegExp, what: string) => {
      const r = serveRefusal(args);
      t.equal(r.status, 1, `${what}: exit 1`);
      t.match(r.output, pattern, what);
    };
    refuse(['--udp-threads', '2', '--udp-path', 'dgram'], /--udp-path dgram does not apply/, '--udp-path dgram with --udp-threads');
    refuse(['--udp-threads', 'two'], /--udp-threads: .*two.* is not a whole number/, 'not a number');
  });
}

function canBindV6(): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => server.close(() => resolve(true)));
  });
}

const why = udpThreadsUnavailable();
if (why !== null && process.env.SITEDNS_REQUIRE_ADDON !== '1') t.skip(`UDP threads cannot run here: ${why}`);
else await run();
