/**
 * Live reload (zones/reload.ts): edits take effect, broken edits keep the last good zone and are
 * reported once, loads never overlap, and whatever triggers a load (start, SIGHUP, a file change,
 * POST /v1/reload) the prebuilt-answer table is built before the zones are published.
 */
import t, { type Test } from 'tap';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { loadChangedTexts } from '../../src/config/changed-files.js';
import { renderMetrics } from '../../src/metrics/definitions.js';
import { prepareOps } from '../../src/app/ops.js';
import { startServeApp } from '../../src/app/serve-app.js';
import { tablesBuiltOnQueryPath } from '../../src/server/fast-path.js';
import { Handler } from '../../src/server/handler.js';
import { AnswererZones, NoZonesError, ReloadController } from '../../src/zones/reload.js';
import { prebuildTableInSlices } from '../../src/server/fast-path.js';
import { watchZones } from '../../src/server/watch.js';
import { ZoneStore } from '../../src/zones/zone-store.js';
import { Runtime } from '../../src/state/runtime.js';
import { decode, fixedEnv, query, tempZonesDir } from '../helpers/dns.js';
import { memoryLogger, metric, parseMetrics } from '../helpers/metrics.js';
import { udpQuery } from '../helpers/net.js';

const zone = (address: string) => `zone: r.test
soa: { mname: ns1.r.test, rname: h.r.test }
nameservers: { ns1.r.test: [192.0.2.1] }
records:
  www: { A: [${address}] }
`;

async function setup(t: Test, files: Record<string, string>) {
  const dir = tempZonesDir(files);
  const { logger, lines } = memoryLogger();
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir), prebuild: prebuildTableInSlices }, logger);
  t.teardown(() => reloads.zoneStore.close());
  await reloads.start();
  const runtime = reloads.runtime;
  const handler = new Handler(runtime, fixedEnv());
  const www = () => decode(handler.handle(query('www.r.test'), { transport: 'udp', clientAddress: '192.0.2.9' })!).answers.map((a: any) => a.address);
  return { dir, runtime, reloads, lines, www };
}

t.test('an edit takes effect at reload; a zone subscriber hears of it', async (t) => {
  const { dir, runtime, reloads, www } = await setup(t, { 'r.yaml': zone('192.0.2.10') });
  t.same(www(), ['192.0.2.10']);
  const heard: number[] = [];
  runtime.subscribeZones((zs) => heard.push(zs.generation));
  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.11'));
  const outcome = await reloads.reload('sighup');
  t.same(www(), ['192.0.2.11']);
  t.same(heard, [outcome.generation]);
  t.equal(runtime.zones.generation, outcome.generation);
  t.same(outcome.problems, []);
});

t.test('a broken edit keeps serving the old zone, is logged once as file:line: path: message and counted', async (t) => {
  const { dir, reloads, lines, www } = await setup(t, { 'r.yaml': zone('192.0.2.10') });
  const before = parseMetrics(await renderMetrics());
  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.10').replace('records:', 'records:\n  bad: { A: [not-an-address] }'));
  const outcome = await reloads.reload('watch');
  t.same(www(), ['192.0.2.10'], 'old zone still answers');
  t.equal(outcome.newProblems.length, 1);
  t.match(outcome.newProblems[0], /r\.yaml:\d+: records\.bad\.A(\[0\])?: .+/);
  t.ok(outcome.keptFiles.some((f) => f.endsWith('r.yaml')));
  const errors = lines.filter((l) => l.level === 50);
  t.equal(errors.length, 1);
  t.equal(errors[0].msg, outcome.newProblems[0]);

  // Reloading again with the same problem: still served, not logged or counted again.
  await reloads.reload('sighup');
  t.equal(lines.filter((l) => l.level === 50).length, 1, 'logged once');
  const after = parseMetrics(await renderMetrics());
  t.equal(metric(after, 'sitedns_config_reload_errors_total') - metric(before, 'sitedns_config_reload_errors_total'), 1, 'counted once');
  t.equal(metric(after, 'sitedns_config_problems'), 1);

  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.12'));
  await reloads.reload('sighup');
  t.same(www(), ['192.0.2.12'], 'the fix is served');
  t.equal(metric(parseMetrics(await renderMetrics()), 'sitedns_config_problems'), 0);
});

t.test('problems present at start are counted but not reported again by the first reload', async (t) => {
  const { reloads, lines } = await setup(t, { 'r.yaml': zone('192.0.2.10'), 'broken.yaml': 'zone: [' });
  t.equal(reloads.lastOutcome!.problems.length, 1);
  t.equal(lines.filter((l) => l.level === 50).length, 1, 'the start reports it');
  await reloads.reload('sighup');
  t.equal(lines.filter((l) => l.level === 50).length, 1, 'the first reload does not report it again');
});

t.test('the start is the first load: it reports what it serves; the first reload sees a fix', async (t) => {
  const dir = tempZonesDir({ 'r.yaml': zone('192.0.2.10'), 'broken.yaml': 'zone: [' });
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir), prebuild: prebuildTableInSlices }, memoryLogger().logger);
  t.teardown(() => reloads.zoneStore.close());
  const outcome = await reloads.start();
  t.equal(outcome.trigger, 'start');
  t.equal(outcome.problems.length, 1);
  t.match(outcome.problems[0], /broken\.yaml:\d+: /);
  t.equal(outcome.generation, reloads.runtime.zones.generation);
  writeFileSync(join(dir, 'broken.yaml'), zone('192.0.2.20').replace('r.test', 'b.test').replaceAll('.r.test', '.b.test'));
  t.same((await reloads.reload('sighup')).problems, []);
  t.ok(reloads.runtime.zones.zones.has('b.test'));
});

t.test('a start that finds no zone fails with its problems reported, and publishes nothing', async (t) => {
  const dir = tempZonesDir({ 'broken.yaml': 'zone: [' });
  const { logger, lines } = memoryLogger();
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir), prebuild: prebuildTableInSlices }, logger);
  let published = 0;
  reloads.runtime.subscribeZones(() => published++);
  const failure = await reloads.start().then(() => null, (e: unknown) => e);
  t.ok(failure instanceof NoZonesError, 'NoZonesError');
  t.equal((failure as NoZonesError).code, 'ENO_ZONES');
  t.match((failure as Error).message, /no zone could be loaded from /);
  t.equal(lines.filter((l) => l.level === 50 && /broken\.yaml:\d+: /.test(l.msg)).length, 1, 'the broken file is reported');
  t.equal(published, 0, 'nothing published');
  t.equal(reloads.runtime.zones.zones.size, 0);
});

t.test('one load at a time: triggers during a load coalesce into one more load after it', async (t) => {
  const dir = tempZonesDir({ 'r.yaml': zone('192.0.2.10') });
  const zoneStore = new ZoneStore(dir);
  // A store whose load takes a while (as one that reads and parses off the main thread does).
  let running = 0;
  let most = 0;
  let loads = 0;
  const load = zoneStore.load.bind(zoneStore);
  (zoneStore as { load: () => unknown }).load = async () => {
    loads++;
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 30));
    running--;
    return load();
  };
  const reloads = new ReloadController({ zoneStore, prebuild: prebuildTableInSlices }, memoryLogger('warn').logger);
  t.teardown(() => zoneStore.close());
  await reloads.start();
  loads = 0;
  const first = reloads.reload('sighup');
  await new Promise((r) => setTimeout(r, 5)); // the first load runs now
  const second = reloads.reload('watch');
  const third = reloads.reload('api');
  t.equal(second, third, 'triggers during a load share the next one');
  t.not(first, second);
  // An edit made once the first load is done: only a load that runs after it can see it.
  const done = await first;
  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.11'));
  const outcomes = [done, ...(await Promise.all([second, third]))];
  t.equal(loads, 2, 'three triggers, two loads');
  t.equal(most, 1, 'never two at once');
  t.same(outcomes.map((o) => o.trigger), ['sighup', 'watch', 'watch']);
  t.ok(outcomes[1].generation > outcomes[0].generation, 'the coalesced load comes after the first, and read the edit');
  t.equal(reloads.runtime.zones.generation, outcomes[1].generation);
  const answered = decode(new Handler(reloads.runtime, fixedEnv()).handle(query('www.r.test'), { transport: 'udp', clientAddress: '192.0.2.9' })!).answers.map((a: any) => a.address);
  t.same(answered, ['192.0.2.11'], 'the coalesced load served the edit');
});

t.test('the watcher reloads after a save (write + rename), debounced into one reload', async (t) => {
  const { dir, reloads, www } = await setup(t, { 'r.yaml': zone('192.0.2.10') });
  let count = 0;
  // The watcher does not hold the process open (a server's sockets do); the test must.
  const keepAlive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(keepAlive));
  const done = new Promise<void>((resolve) => {
    const watcher = watchZones(dir, () => {
      count++;
      void reloads.reload('watch').then(() => resolve());
    }, { debounceMs: 100, logger: memoryLogger().logger });
    t.teardown(() => watcher.close());
  });
  // An editor's save: a temp file, then a rename over the original.
  writeFileSync(join(dir, '.r.yaml.swp'), 'x');
  writeFileSync(join(dir, 'r.yaml.tmp'), zone('192.0.2.20'));
  renameSync(join(dir, 'r.yaml.tmp'), join(dir, 'r.yaml'));
  await done;
  t.same(www(), ['192.0.2.20']);
  t.equal(count, 1);
});

t.test('serve: after every kind of reload the prebuilt table is there before the first query (none built on the query path)', async (t) => {
  const dir = tempZonesDir({ 'r.yaml': zone('192.0.2.10') });
  const { logger } = memoryLogger('warn');
  // As `sitedns serve` wires it (cli/serve.ts): SIGHUP and the admin route; the watcher below
  // the way ops.ts starts it, after the SIGHUP and API steps (an edit made for those would
  // otherwise race them).
  const ops = prepareOps({ querySample: 0, watchDebounceMs: 0, stopTimeoutMs: 1000, logger, signals: true, stateKnown: () => true });
  const builtBefore = tablesBuiltOnQueryPath();
  const app = await startServeApp({
    zonesPath: dir,
    listen: ['127.0.0.1:0'],
    udpPath: 'dgram',
    logger,
    http: '127.0.0.1:0',
    httpExplicit: true,
    observer: ops.observer,
    registerRoutes: (router, { runtime }) => ops.registerRoutes(router, runtime),
    startupLimitMs: 200,
  });
  t.teardown(() => ops.stop(() => app.stop()));
  await ops.attach({ runtime: app.runtime, reloads: app.reloads, handler: app.ns.handler });
  const port = app.ns.udp[0].port;
  const www = async () => decode((await udpQuery(port, query('www.r.test')))!).answers.map((a: any) => a.address);
  // The loader thread runs at nice 10: on a machine busy with other work a reload takes seconds.
  const waitFor = async (check: () => boolean, what: string) => {
    for (let i = 0; i < 1500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
    t.ok(check(), what);
  };
  const published: number[] = [];
  app.runtime.subscribeZones((zones) => published.push(zones.generation));

  t.same(await www(), ['192.0.2.10'], 'start: answered');
  t.equal(tablesBuiltOnQueryPath() - builtBefore, 0, 'start: no table built on the query path');

  // Each edit loaded makes a new zone set: each needs its own table.
  let generation = app.runtime.zones.generation;
  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.11'));
  process.kill(process.pid, 'SIGHUP');
  await waitFor(() => app.runtime.zones.generation > generation, 'SIGHUP: a new zone set is published');
  t.equal(app.reloads.lastOutcome?.trigger, 'sighup');
  t.same(await www(), ['192.0.2.11']);
  t.equal(tablesBuiltOnQueryPath() - builtBefore, 0, 'SIGHUP: no table built on the query path');

  generation = app.runtime.zones.generation;
  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.12'));
  const res = await fetch(`http://127.0.0.1:${app.admin!.port}/v1/reload`, { method: 'POST' });
  const outcome = await res.json();
  t.match(outcome, { trigger: 'api' }, 'API: the outcome of its own load');
  t.ok(outcome.generation > generation && outcome.generation === app.runtime.zones.generation, 'API: a new zone set is published');
  t.same(await www(), ['192.0.2.12']);
  t.equal(tablesBuiltOnQueryPath() - builtBefore, 0, 'API: no table built on the query path');

  const watcher = watchZones(dir, () => void app.reloads.reload('watch'), { debounceMs: 50, logger });
  t.teardown(() => watcher.close());
  generation = app.runtime.zones.generation;
  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.13'));
  await waitFor(() => app.runtime.zones.generation > generation, 'file change: a new zone set is published');
  t.equal(app.reloads.lastOutcome?.trigger, 'watch');
  t.same(await www(), ['192.0.2.13']);
  t.equal(tablesBuiltOnQueryPath() - builtBefore, 0, 'file change: no table built on the query path');

  t.ok(published.length >= 3, `each load published (${published.length})`);
  t.same(published, [...published].sort((a, b) => a - b), 'in order');
});

t.test('an answerer keeps its zone set (and prebuilt table) when a reload changed nothing', async (t) => {
  const runtime = new Runtime();
  const zones = new AnswererZones(runtime, 'primary', memoryLogger('warn').logger, prebuildTableInSlices);
  // What a primary sends: each file as its loader validated it.
  const validated = (text: string) => loadChangedTexts([{ path: 'r.yaml', text }], new Map(), false).filter((f) => f.status === 'loaded');
  const files = validated(zone('192.0.2.10'));
  await zones.load({ generation: 7, files, keySets: new Map() });
  const first = runtime.zones;
  t.equal(first.generation, 7, 'numbered as the primary');
  await zones.load({ generation: 7, files, keySets: new Map() });
  t.equal(runtime.zones, first, 'the same files and generation: the same set object');
  // Two loads asked in one pass each compile their own files, in order.
  const a = zones.load({ generation: 8, files: validated(zone('192.0.2.20')), keySets: new Map() });
  const b = zones.load({ generation: 9, files: validated(zone('192.0.2.30')), keySets: new Map() });
  t.equal((await a).zoneSet.generation, 8);
  t.equal((await b).zoneSet.generation, 9);
  const handler = new Handler(runtime, fixedEnv());
  const answer = decode(handler.handle(query('www.r.test', 'A'), { transport: 'udp', clientAddress: '127.0.0.1' })!);
  t.same(answer.answers.map((r: { address?: string }) => r.address), ['192.0.2.30'], 'the last message\'s files are served');
});

t.test('the zones handed to answerers are the ones published, also while a table is built in slices', async (t) => {
  const big = (address: string) => zone(address) + Array.from({ length: 20_000 }, (_, i) => `  h${i}: { A: [10.0.${i >> 8}.${i & 255}] }`).join('\n') + '\n';
  const dir = tempZonesDir({ 'r.yaml': big('192.0.2.10') });
  const { logger } = memoryLogger();
  const reloads = new ReloadController({ zoneStore: new ZoneStore(dir, { keepValidated: true }), prebuild: prebuildTableInSlices }, logger);
  t.teardown(() => reloads.zoneStore.close());
  await reloads.start();
  t.equal(reloads.zoneTexts().generation, reloads.runtime.zones.generation, 'after the start');
  writeFileSync(join(dir, 'r.yaml'), big('192.0.2.11'));
  const mismatches: string[] = [];
  let turns = 0;
  let done = false;
  const reloaded = reloads.reload('api').finally(() => (done = true));
  while (!done) {
    turns++;
    const handed = reloads.zoneTexts().generation;
    if (handed !== reloads.runtime.zones.generation) mismatches.push(`handed ${handed}, serving ${reloads.runtime.zones.generation}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await reloaded;
  t.ok(turns > 2, `the reload gave the event loop ${turns} turns`);
  t.same(mismatches, [], 'every turn of the reload: the generation handed out is the one served');
  t.equal(reloads.zoneTexts().generation, reloads.runtime.zones.generation, 'after it');
});

t.test('the library entry gives what a ReloadController of an answering process needs: the table builder', async (t) => {
  const lib = await import('../../src/index.js');
  const { logger } = memoryLogger('warn');
  const answered = async (prebuild: typeof lib.prebuildTableInSlices | null) => {
    const reloads = new lib.ReloadController({ zoneStore: new lib.ZoneStore(tempZonesDir({ 'r.yaml': zone('192.0.2.10') })), prebuild }, logger);
    t.teardown(() => reloads.zoneStore.close());
    await reloads.start();
    const before = tablesBuiltOnQueryPath();
    const reply = decode(new lib.Handler(reloads.runtime, fixedEnv()).handle(query('www.r.test'), { transport: 'udp', clientAddress: '192.0.2.9' })!);
    return { addresses: reply.answers.map((a: any) => a.address), builtOnQueryPath: tablesBuiltOnQueryPath() - before };
  };
  t.same(await answered(lib.prebuildTableInSlices), { addresses: ['192.0.2.10'], builtOnQueryPath: 0 }, 'given the builder: the table is there before the first query');
  t.same(await answered(null), { addresses: ['192.0.2.10'], builtOnQueryPath: 1 }, 'given null (a process that answers none): the first query builds it');
});
