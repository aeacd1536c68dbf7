/**
 * `serve --workers N`: workers share the UDP and TCP sockets; a worker that dies is
 * restarted while the others keep answering; SIGHUP reloads every worker in turn; SIGTERM stops
 * them all. Also the state IPC message's round trip.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { adminRequest } from '../../src/admin/http.js';
import { makeSnapshot } from '../../src/state/snapshot.js';
import { snapshotFromMessage, stateMessage } from '../../src/server/state-messages.js';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { metric, parseMetrics } from '../helpers/metrics.js';
import { CLI, startSitedns, tcpQueries, udpQuery } from '../helpers/net.js';

t.test('state snapshot survives the IPC message (JSON) unchanged', async (t) => {
  const snapshot = makeSnapshot(new Map([['app.example.com/boston', { up: false, reason: 'probe: timeout', checkedAt: 5 }], ['app.example.com/chicago', { up: true, load: 3, utilization: 0.03 }]]), true, 1234);
  const wire = JSON.parse(JSON.stringify(stateMessage(snapshot)));
  const back = snapshotFromMessage(wire);
  t.same([...back.sites], [...snapshot.sites]);
  t.equal(back.version, snapshot.version);
  t.equal(back.takenAt, 1234);
  t.equal(back.fresh, true);
  t.ok(Object.isFrozen(back));
});

t.test('two workers: shared sockets, restart after a crash, rolling reload, clean stop', async (t) => {
  // No probes (nothing to wait for at start), no admin listener (the default port may be taken).
  const dir = tempZonesDir({
    'app.yaml': `zone: app.example.com
soa: { mname: ns1.app.example.com, rname: hostmaster.example.com }
nameservers: { ns1.app.example.com: [192.0.2.53] }
sites:
  boston: { addresses: [203.0.113.10] }
  geneva: { addresses: [198.51.100.30] }
groups: { all: [boston, geneva] }
pool: { name: "@" }
records:
  mail: { A: [192.0.2.25] }
`,
  });
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--workers', '2', '--http', '127.0.0.1:0'], { SITEDNS_WORKERS: '2' });
  t.teardown(() => server.stop('SIGKILL'));
  const workerPids = new Set(server.logs.filter((l) => l.msg === 'worker listening').map((l) => l.worker));
  t.equal(workerPids.size, 2, 'both workers listening before the server says so');

  const udp = decode((await udpQuery(server.port, query('app.example.com', 'A', { edns: {} })))!);
  t.equal(udp.rcode, 0, 'UDP answered');
  const tcp = await tcpQueries(server.port, [query('boston.app.example.com', 'A', { id: 7 }), query('nope.app.example.com', 'A', { id: 8 })]);
  t.same(tcp.map((r) => decode(r).rcode), [0, 3], 'TCP answered, pipelined');

  // State lives in the primary (its admin route drains); every worker must follow it.
  const admin = await server.waitForLog((l) => l.msg === 'admin listening');
  const drained = await adminRequest(`127.0.0.1:${admin.port}`, 'POST', '/v1/sites/app.example.com/boston/drain', { reason: 'test', for: '10m' });
  t.equal(drained.status, 200, 'drained through the primary');
  const bostonAnswer = async () => decode((await udpQuery(server.port, query('boston.app.example.com')))!).answers[0]?.address;
  for (let i = 0; i < 50 && (await bostonAnswer()) !== '198.51.100.30'; i++) await new Promise((r) => setTimeout(r, 100));
  const answers = new Set<string>();
  for (let i = 0; i < 12; i++) answers.add(await bostonAnswer());
  t.same([...answers], ['198.51.100.30'], 'every worker fails boston over to geneva');

  // /metrics sums the workers' registries; a dead worker's counts stay in the sums
  // (KeptRegistries, docs/metrics.md). 40 queries from 40 source ports: each worker answers some.
  const scrapeQueries = async () => metric(parseMetrics(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text()), 'sitedns_queries_total');
  for (let i = 0; i < 40; i++) await udpQuery(server.port, query('mail.app.example.com', 'A', { id: i }));
  const countedBeforeDeath = await scrapeQueries();
  t.ok(countedBeforeDeath >= 40 + 12 + 1, `the scrape counts every worker's queries (${countedBeforeDeath})`);

  // A reload reaches every worker with the primary's generation: they compile the texts it loaded.
  server.proc.kill('SIGHUP');
  const primaryLoad = await server.waitForLog((l) => l.msg === 'zones reloaded' && l.trigger === 'sighup', 30_000);
  const firstRoll = await server.waitForLog((l) => l.msg === 'rolling reload done', 30_000);
  t.match(firstRoll, { workers: 2, ok: true, generation: primaryLoad.generation }, "both workers serve the primary's generation after a reload");

  const [victim] = workerPids;
  process.kill(victim, 'SIGKILL');
  // On the batched UDP path each worker owns an SO_REUSEPORT socket: until the kernel has
  // torn the killed process down, its socket still takes its share of datagrams (and loses
  // them). Once the primary has seen the exit, the socket is gone and the survivor gets all.
  await server.waitForLog((l) => l.msg === 'worker died; restarting it' && l.worker === victim, 30_000);
  let answered = 0;
  for (let i = 0; i < 10; i++) {
    const reply = await udpQuery(server.port, query('geneva.app.example.com', 'A', { id: i }), '127.0.0.1', 3000);
    if (reply !== null && decode(reply).rcode === 0) answered++;
  }
  t.equal(answered, 10, 'the other worker kept answering');
  const restarted = await server.waitForLog((l) => l.msg === 'worker restarted' && l.replaces === victim, 30_000);
  const replacement = await server.waitForLog((l) => l.msg === 'worker listening' && l.worker === restarted.worker, 30_000);
  t.pass('the dead worker was replaced');
  t.equal(replacement.generation, primaryLoad.generation, "the replacement starts with the primary's zones and generation (not its own load of the files)");
  const countedAfterDeath = await scrapeQueries();
  t.ok(countedAfterDeath >= countedBeforeDeath + 10, `the dead worker's queries still counted: ${countedBeforeDeath} before, ${countedAfterDeath} after 10 more`);

  server.proc.kill('SIGHUP');
  const reload = await server.waitForLog((l) => l.msg === 'rolling reload done' && l !== firstRoll, 30_000);
  t.equal(reload.workers, 2, 'both workers reloaded');
  t.equal(reload.ok, true);
  t.equal(decode((await udpQuery(server.port, query('mail.app.example.com')))!).answers[0].address, '192.0.2.25', 'answering after the reload');

  t.equal(await server.stop('SIGTERM'), 0, 'SIGTERM stops the primary and its workers with exit 0');
});

t.test('a worker that cannot start (its port taken) fails the start: the server exits 1 rather than waiting for it', async (t) => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  // spawnSync: the taken port needs no event loop (the kernel refuses the bind); 20 s is far
  // more than a start takes, so a server that waits for its workers forever fails here.
  const r = spawnSync(process.execPath, [CLI, 'serve', '--zones', 'zones', '--listen', `127.0.0.1:${port}`, '--workers', '2', '--http', 'off'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, SITEDNS_WORKERS: '' } });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  t.ok(lines.some((l) => l.level === 'fatal' && /EADDRINUSE/.test(l.msg)), 'the worker says why');
  const failed = lines.find((l) => l.msg === 'worker failed to start');
  t.ok(failed, 'the primary gives up on the start');
  t.equal(failed?.code, 1, 'the worker exited 1');
  t.equal(r.status, 1, 'the server exits 1');
});

