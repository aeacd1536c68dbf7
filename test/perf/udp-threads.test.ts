/**
 * The UDP threads of `serve --udp-threads N` (src/server/udp-threads.ts), driven in-process
 * through the built module (a Worker runs dist/server/udp-thread.js): real threads, real
 * SO_REUSEPORT sockets on loopback, queries over UDP from fresh source ports so that every
 * thread's socket gets some. State swaps, deltas, reloads, metrics (kept across missed scrapes
 * and deaths), a thread that dies, readiness while none listens, and stopping. Skipped where the
 * batched addon is not built, unless SITEDNS_REQUIRE_ADDON=1.
 */
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { ValidatedFile } from '../../src/config/changed-files.js';
import type { StateSnapshot, SiteState } from '../../src/state/snapshot.js';
import type { Metric, UdpThreads } from '../../src/server/udp-threads.js';
import { prepareOps } from '../../src/app/ops.js';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { memoryLogger, metric, parseMetrics } from '../helpers/metrics.js';
import { udpQuery } from '../helpers/net.js';

const threadsModule = (await import(new URL('../../dist/server/udp-threads.js', import.meta.url).href)) as typeof import('../../src/server/udp-threads.js');
const snapshotModule = (await import(new URL('../../dist/state/snapshot.js', import.meta.url).href)) as typeof import('../../src/state/snapshot.js');
const { makeSnapshot, recordDelta } = snapshotModule;
const storeModule = (await import(new URL('../../dist/zones/zone-store.js', import.meta.url).href)) as typeof import('../../src/zones/zone-store.js');
const reloadModule = (await import(new URL('../../dist/zones/reload.js', import.meta.url).href)) as typeof import('../../src/zones/reload.js');
const { prebuildTableInSlices } = (await import(new URL('../../dist/server/fast-path.js', import.meta.url).href)) as typeof import('../../src/server/fast-path.js');
const answererMetrics = (await import(new URL('../../dist/admin/answerer-metrics.js', import.meta.url).href)) as typeof import('../../src/admin/answerer-metrics.js');

/** Every value of a metric over registries (summed /metrics would show this). */
const total = (registries: Metric[][], name = 'sitedns_queries_total') =>
  registries.flat().filter((m) => m.name === name).flatMap((m) => m.values).reduce((sum, v) => sum + Number(v.value), 0);

const zone = (genevaAddress: string) => `zone: app.example.com
soa: { mname: ns1.app.example.com, rname: hostmaster.example.com }
nameservers: { ns1.app.example.com: [192.0.2.53] }
sites:
  boston: { addresses: [203.0.113.10] }
  geneva: { addresses: [${genevaAddress}] }
groups: { all: [boston, geneva] }
pool: { name: "@" }
`;

function sites(boston: SiteState): Map<string, SiteState> {
  return new Map([
    ['app.example.com/boston', boston],
    ['app.example.com/geneva', { up: true }],
  ]);
}

async function run(t: Test): Promise<void> {
  const dir = tempZonesDir({ 'app.yaml': zone('198.51.100.30') });
  const { logger, lines } = memoryLogger('debug');
  // The main thread's reload path, as serve-app builds it: threads compile the files it validated.
  const reloads = new reloadModule.ReloadController({ zoneStore: new storeModule.ZoneStore(dir, { keepValidated: true }), prebuild: prebuildTableInSlices }, logger);
  t.teardown(() => reloads.zoneStore.close());
  await reloads.start();
  const store = reloads.zoneStore;
  let textsOverride: ValidatedFile[] | undefined;
  let state: StateSnapshot = makeSnapshot(sites({ up: true }), true);
  const spawned: { worker: Worker; index: number }[] = [];
  const pool: UdpThreads = await threadsModule.startUdpThreads({
    threads: 2,
    zonesPath: dir,
    zoneTexts: () => (textsOverride === undefined ? reloads.zoneTexts() : { generation: 0, files: textsOverride, keySets: new Map() }),
    listen: [{ host: '127.0.0.1', port: await freeUdpPort() }],
    logger,
    logLevel: 'warn',
    currentState: () => state,
    receiveTimeoutMs: 50,
    onSpawn: (worker, index) => spawned.push({ worker, index }),
    steer: false, // the kernel's distribution: queries from fresh source ports reach both threads
  });
  t.teardown(() => pool.close());
  const port = pool.listeners[0].port;
  t.equal(pool.listeners[0].path, 'threads');
  t.equal(pool.threadIds().length, 2, 'two threads listening');

  const boston = async () => {
    const reply = await udpQuery(port, query('boston.app.example.com'));
    return reply === null ? null : decode(reply).answers[0]?.address;
  };
  // 24 fresh source ports: with 2 sockets, every thread answers some (1 in 2^23 that it does not).
  const everyThread = async () => {
    const seen = new Set<string | null>();
    for (let i = 0; i < 24; i++) seen.add(await boston());
    return [...seen];
  };
  const publish = (next: StateSnapshot) => {
    state = next;
    pool.publishState(next);
  };

  t.same(await everyThread(), ['203.0.113.10'], 'every thread answers from the state it started with');

  // A delta (the follower's incremental recompute) and a whole state both reach every thread,
  // before the next query: the thread reads its mailbox after each wake-up, before answering.
  const down = makeSnapshot(sites({ up: false, reason: 'refused' }), true);
  recordDelta(down, { from: state.version, changed: new Set(['app.example.com/boston']) });
  publish(down);
  t.same(await everyThread(), ['198.51.100.30'], 'a delta reaches every thread before its next answer');
  publish(makeSnapshot(sites({ up: true }), true));
  t.same(await everyThread(), ['203.0.113.10'], 'so does a whole state');

  // A delta that does not start from what a thread was sent goes as the whole state instead.
  const stray = makeSnapshot(sites({ up: false, reason: 'drained' }), true);
  recordDelta(stray, { from: 424242, changed: new Set(['app.example.com/boston']) });
  publish(stray);
  t.same(await everyThread(), ['198.51.100.30'], 'a delta from elsewhere goes whole, and applies');
  publish(makeSnapshot(sites({ up: true }), true));

  // Reload: every thread compiles the main thread's new texts, one after the other.
  writeFileSync(join(dir, 'app.yaml'), zone('198.51.100.31'));
  await reloads.reload('sighup');
  publish(makeSnapshot(sites({ up: false, reason: 'refused' }), true));
  const reloaded = await pool.reload();
  t.equal(reloaded.ok, true, 'every thread reloaded');
  t.equal(reloaded.generation, reloads.runtime.zones.generation, "the threads serve the main thread's generation");
  t.same(await everyThread(), ['198.51.100.31'], 'every thread answers from the new zones');
  publish(makeSnapshot(sites({ up: true }), true));

  // Reloads do not overlap: requests made before a run starts join it; those made while it runs
  // fold into one more run after it.
  const rollsBefore = lines.filter((l) => l.msg === 'UDP threads reloaded').length;
  const reloadA = pool.reload();
  t.equal(pool.reload(), reloadA, 'a request before the run started joins it');
  await new Promise((r) => setImmediate(r)); // the run has started: it is asking thread 0
  const [reloadB, reloadC] = [pool.reload(), pool.reload()];
  t.equal(reloadB, reloadC, 'requests while it runs share the next run');
  t.not(reloadA, reloadB);
  await Promise.all([reloadA, reloadB]);
  t.equal(lines.filter((l) => l.msg === 'UDP threads reloaded').length - rollsBefore, 2, 'four requests, two rolling reloads, one after the other');

  // Metrics: one registry per thread, with the queries each answered.
  const registries = await pool.metrics();
  t.equal(registries.length, 2, 'each thread sends its registry');
  const answered = registries.map((r) => (r.find((m) => m.name === 'sitedns_queries_total')?.values ?? []).reduce((sum, v) => sum + Number(v.value), 0));
  t.ok(answered.every((n) => n > 0), `both threads answered queries (${answered.join(', ')})`);
  t.notOk(registries.some((r) => r.some((m) => !m.name.startsWith('sitedns_') || m.name === 'sitedns_build_info')), 'threads export no process metrics and no build info (the main thread does)');

  // A thread that does not answer a scrape in time (here: 1 ms, less than an idle thread takes to
  // wake) counts with its last registry: no query came since, so the sums are the same.
  const hurried = await pool.metrics(1);
  t.equal(hurried.length, 2, 'a scrape the threads miss still has both registries');
  t.equal(total(hurried), total(registries), 'with their last counts: the sum does not step back');

  // A thread that dies is restarted from the current state; the other keeps answering meanwhile.
  const beforeDeath = total(await pool.metrics());
  const victim = spawned[0];
  await victim.worker.terminate();
  const answersMeanwhile = await everyThread();
  t.same(answersMeanwhile, ['203.0.113.10'], 'the other thread answers while one restarts (no query lost)');
  await until(t, () => spawned.length === 3 && pool.threadIds().length === 2, 'the dead thread is replaced');
  t.ok(lines.some((l) => l.msg === 'UDP thread died; restarting it' && l.thread === victim.index), 'its death is logged');
  t.same(await everyThread(), ['203.0.113.10'], 'the restarted thread answers from the current state');
  // Its replacement counts from 0; the dead thread's counters stay in the sums as a retired base.
  const afterDeath = await pool.metrics();
  t.equal(total(afterDeath), beforeDeath + 48, 'the dead thread\'s queries stay counted: 48 more, none fewer');
  t.equal(afterDeath.length, 3, 'the retired base and the two live threads');
  t.same([...new Set(afterDeath[0].map((m) => String(m.type)))].filter((type) => type === 'gauge'), [], 'the retired base has no gauges (they described the dead thread)');

  // A broken file keeps its last good zone in the main thread's store, and so in a thread
  // started meanwhile: threads compile the store's texts, not the files.
  writeFileSync(join(dir, 'app.yaml'), 'zone: [broken');
  t.equal((await reloads.reload('watch')).keptFiles.length, 1, 'the main thread keeps the last good app.yaml');
  const third = spawned[spawned.length - 1];
  await third.worker.terminate();
  await until(t, () => spawned.length === 4 && pool.threadIds().length === 2, 'a thread restarted while the file is broken starts');
  t.same(await everyThread(), ['203.0.113.10'], 'and serves the last good zone, as the main thread does');

  // A replacement that cannot start (here: no zone at all) is tried again until it can.
  textsOverride = [];
  const fourth = spawned[spawned.length - 1];
  await fourth.worker.terminate();
  await until(t, () => lines.some((l) => l.msg === 'UDP thread could not start; trying again'), 'a replacement that cannot start is logged and tried again');
  t.same(await everyThread(), ['203.0.113.10'], 'the other thread answers meanwhile');

  // Readiness (app/ops.ts): one listening thread is enough; none (all dead, restarting) is not.
  const runtime = reloads.runtime;
  runtime.publishState(state);
  const ops = prepareOps({ http: '127.0.0.1:0', querySample: 0, watchDebounceMs: 0, stopTimeoutMs: 1000, logger, signals: false, stateKnown: () => true });
  await ops.attach({ runtime, reloads, threads: pool });
  t.teardown(() => ops.stop(async () => undefined));
  const admin = `http://127.0.0.1:${ops.admin!.port}`;
  const readyz = async () => {
    const res = await fetch(`${admin}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const scrape = async () => parseMetrics(await (await fetch(`${admin}/metrics`)).text());
  t.match(await readyz(), { status: 200, body: { status: 'ready', udpListening: true, udpThreads: { live: 1, total: 2 } } }, 'one thread of two listening: ready, and /readyz says how many');
  t.equal(metric(await scrape(), 'sitedns_udp_threads_live'), 1, 'sitedns_udp_threads_live counts it');
  const survivor = spawned.find((s) => pool.threadIds().includes(s.worker.threadId));
  await survivor!.worker.terminate();
  await until(t, () => pool.live() === 0, 'the last listening thread is gone too');
  t.match(await readyz(), { status: 503, body: { status: 'not ready', ready: false, zonesLoaded: true, stateKnown: true, udpListening: false, udpThreads: { live: 0, total: 2 } } }, 'no thread listening: not ready, and /readyz says why');
  const unready = await scrape();
  t.equal(metric(unready, 'sitedns_ready'), 0, 'sitedns_ready follows');
  t.equal(metric(unready, 'sitedns_udp_threads_live'), 0);
  textsOverride = undefined;
  // Both slots failed to start a few times within 10 s: their back-off is up to 5 s now.
  await until(t, () => pool.threadIds().length === 2, 'once they can start the threads are back', 300);
  t.match(await readyz(), { status: 200, body: { status: 'ready', udpListening: true, udpThreads: { live: 2, total: 2 } } }, 'ready again');
  t.equal(metric(await scrape(), 'sitedns_ready'), 1);

  // Stopping: every thread exits and the port is free again.
  await pool.close();
  t.same(pool.threadIds(), [], 'no thread left');
  const reuse = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    reuse.once('error', reject);
    reuse.bind({ port, address: '127.0.0.1', exclusive: true }, () => resolve());
  });
  reuse.close();
  t.pass('the port is free after close');
}

/**
 * The follower may publish a state while the threads compile their zones (seconds for large
 * sets), before the nameserver subscribes: the nameserver sends the current state once they
 * listen, so no thread keeps the snapshot it started from.
 */
async function swappedWhileStarting(t: Test): Promise<void> {
  const { startNameserver } = (await import(new URL('../../dist/server/nameserver.js', import.meta.url).href)) as typeof import('../../src/server/nameserver.js');
  const dir = tempZonesDir({ 'app.yaml': zone('198.51.100.30') });
  const { logger } = memoryLogger('warn');
  const reloads = new reloadModule.ReloadController({ zoneStore: new storeModule.ZoneStore(dir, { keepValidated: true }), prebuild: prebuildTableInSlices }, logger);
  t.teardown(() => reloads.zoneStore.close());
  await reloads.start();
  const runtime = reloads.runtime;
  runtime.publishState(makeSnapshot(sites({ up: true }), true));
  // A thread takes well over 20 ms to start (a V8 isolate, module loading, the compile).
  setTimeout(() => runtime.publishState(makeSnapshot(sites({ up: false, reason: 'refused' }), true)), 20);
  const ns = await startNameserver({
    runtime,
    listen: ['127.0.0.1:0'],
    logger,
    udpThreads: { threads: 2, logLevel: 'warn', zonesPath: dir, zoneTexts: () => reloads.zoneTexts() },
  });
  t.teardown(() => ns.stop());
  const seen = new Set<string | undefined>();
  for (let i = 0; i < 24; i++) seen.add(decode((await udpQuery(ns.udp[0].port, query('boston.app.example.com')))!).answers[0]?.address);
  t.same([...seen], ['198.51.100.30'], 'every thread answers from the state published during its start');

  // Every zone set published to the runtime (here: a reload) rolls through the threads.
  writeFileSync(join(dir, 'app.yaml'), zone('198.51.100.31'));
  runtime.publishState(makeSnapshot(sites({ up: false, reason: 'refused' }), true));
  await reloads.reload('api');
  // The threads reload one after the other: until both have, some answers are the old zone's.
  for (let round = 0; round < 100; round++) {
    seen.clear();
    for (let i = 0; i < 24; i++) seen.add(decode((await udpQuery(ns.udp[0].port, query('boston.app.example.com')))!).answers[0]?.address);
    if (seen.size === 1 && seen.has('198.51.100.31')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same([...seen], ['198.51.100.31'], 'a published zone set reaches every thread');
  await ns.stop();
}

// Up to 30 s: a thread's start (a worker, its modules, a compile) takes seconds on a busy CI machine.
async function until(t: Test, check: () => boolean, what: string, tries = 600): Promise<void> {
  for (let i = 0; i < tries && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  t.ok(check(), what);
}

function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  }));
}

/** KeptRegistries (admin/answerer-metrics.ts) on made-up registries: what /metrics sums for answerers that come and go. */
async function keptRegistries(t: Test): Promise<void> {
  const registry = (queries: number, busy: number) =>
    [
      { name: 'q_total', help: 'q', type: 'counter', aggregator: 'sum', values: [{ labels: { rcode: 'NOERROR' }, value: queries }] },
      { name: 'busy', help: 'b', type: 'gauge', aggregator: 'sum', values: [{ labels: {}, value: busy }] },
      { name: 'lat', help: 'l', type: 'histogram', aggregator: 'sum', values: [{ metricName: 'lat_bucket', labels: { le: 0.1 }, value: queries }, { metricName: 'lat_count', labels: {}, value: queries }] },
    ] as unknown as Metric[];
  const kept = new answererMetrics.KeptRegistries<string>();
  let sums = kept.merge(new Map([['a', registry(5, 1)], ['b', registry(7, 1)]]));
  t.equal(total(sums, 'q_total'), 12);
  sums = kept.merge(new Map([['a', registry(6, 1)], ['b', null]]));
  t.equal(total(sums, 'q_total'), 13, 'b did not answer in time: its last counts stay in the sum');
  t.equal(total(sums, 'busy'), 2, 'its gauges too (it is alive)');
  sums = kept.merge(new Map([['a', registry(6, 1)], ['c', registry(1, 1)]]));
  t.equal(total(sums, 'q_total'), 14, 'b ended and c replaced it from 0: b\'s counters stay as a base');
  t.equal(total(sums, 'lat'), 28, 'histograms too');
  t.equal(total(sums, 'busy'), 2, 'b\'s gauge went with it');
  sums = kept.merge(new Map([['a', registry(6, 1)], ['d', null]]));
  t.equal(total(sums, 'q_total'), 14, 'c ended before d answered: still no step back');
  t.equal(sums[0].find((m) => m.name === 'q_total')?.values.length, 1, 'the base holds one value per series, however many ended');
  t.equal(total(sums, 'busy'), 1);
}

t.test('kept registries: missed scrapes and ended answerers never make a sum step back', (t) => keptRegistries(t));

const unavailable = threadsModule.udpThreadsUnavailable();
if (unavailable !== null && process.env.SITEDNS_REQUIRE_ADDON !== '1') {
  t.skip(`UDP threads cannot run here: ${unavailable}`);
} else {
  t.equal(unavailable, null, 'UDP threads can run here');
  t.test('UDP threads follow state, reload, report metrics, survive a death, and stop', (t) => run(t));
  t.test('a state swapped in while the threads start reaches them', (t) => swappedWhileStarting(t));
}
