/** Live reload: edits take effect, broken edits keep the last good zone and are reported once. */
import t, { type Test } from 'tap';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { renderMetrics } from '../../src/metrics/definitions.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { ReloadController } from '../../src/server/reload.js';
import { watchZones } from '../../src/server/watch.js';
import { ZoneStore } from '../../src/server/zone-store.js';
import { decode, fixedEnv, query, tempZonesDir } from '../helpers/dns.js';
import { memoryLogger, metric, parseMetrics } from '../helpers/metrics.js';

const zone = (address: string) => `zone: r.test
soa: { mname: ns1.r.test, rname: h.r.test }
nameservers: { ns1.r.test: [192.0.2.1] }
records:
  www: { A: [${address}] }
`;

async function setup(t: Test, files: Record<string, string>) {
  const dir = tempZonesDir(files);
  const store = new ZoneStore(dir);
  t.teardown(() => store.close());
  const runtime = new Runtime((await store.load()).zoneSet);
  const handler = new Handler(runtime, fixedEnv());
  const { logger, lines } = memoryLogger();
  const reloads = new ReloadController({ runtime, zoneStore: store }, logger);
  reloads.start();
  const www = () => decode(handler.handle(query('www.r.test'), { transport: 'udp', clientAddress: '192.0.2.9' })!).answers.map((a: any) => a.address);
  return { dir, runtime, reloads, lines, www };
}

t.test('an edit takes effect at reload; the listener hears of it', async (t) => {
  const { dir, reloads, www } = await setup(t, { 'r.yaml': zone('192.0.2.10') });
  t.same(www(), ['192.0.2.10']);
  const heard: number[] = [];
  reloads.onReload((zs) => heard.push(zs.generation));
  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.11'));
  const outcome = await reloads.reload('sighup');
  t.same(www(), ['192.0.2.11']);
  t.same(heard, [outcome.generation]);
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
  await reloads.reload('sighup');
  t.equal(lines.filter((l) => l.level === 50).length, 0);
});

t.test('start() reports the problems of the load being served, without compiling the files again ', async (t) => {
  const dir = tempZonesDir({ 'r.yaml': zone('192.0.2.10'), 'broken.yaml': 'zone: [' });
  const store = new ZoneStore(dir);
  t.teardown(() => store.close());
  const runtime = new Runtime((await store.load()).zoneSet);
  // Fixed on disk after the load: start() describes what is served, not the disk of now.
  writeFileSync(join(dir, 'broken.yaml'), zone('192.0.2.20').replace('r.test', 'b.test').replaceAll('.r.test', '.b.test'));
  const reloads = new ReloadController({ runtime, zoneStore: store }, memoryLogger().logger);
  const outcome = reloads.start();
  t.equal(outcome.problems.length, 1);
  t.match(outcome.problems[0], /broken\.yaml:\d+: /);
  t.equal(outcome.generation, runtime.zones.generation);
  // The first reload sees the fix.
  t.same((await reloads.reload('sighup')).problems, []);
  t.ok(runtime.zones.zones.has('b.test'));
});

t.test('a ReloadController over a store that never loaded checks the files from disk', async (t) => {
  const dir = tempZonesDir({ 'broken.yaml': 'zone: [' });
  const store = new ZoneStore(dir);
  const reloads = new ReloadController({ runtime: new Runtime(store.zoneSet), zoneStore: store }, memoryLogger().logger);
  t.equal(reloads.start().problems.length, 1);
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
