/** The prober with the memory store and real backends: first round, reloads, pushed reports. */
import t from 'tap';
import { Prober } from '../../src/probe/prober.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { createLogger } from '../../src/util/logger.js';
import { eventually, startBackend } from '../helpers/backends.js';
import { compileText } from '../helpers/dns.js';

const logger = createLogger('silent');
const zone = (sites: string) => compileText(`zone: p.test\nsoa: { mname: ns1.p.test, rname: h.p.test }\nnameservers: { ns1.p.test: [192.0.2.1] }\nsites:\n${sites}`);

t.test('first round, then follows reloads: new sites probed, removed ones forgotten', async (t) => {
  const a = await startBackend('127.0.0.2', 25);
  const b = await startBackend('127.0.0.3', 5);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const store = new MemoryStateStore();
  const prober = new Prober({ store, logger, id: 't' });
  t.teardown(() => prober.stop());
  await prober.start();
  prober.setZones(zone(`  a: { addresses: [192.0.2.10], capacity: 50, probe: { http: "${a.url}", interval: 200ms, load: load } }\n`));
  t.equal(await prober.firstRound(10_000), true, 'first round finished');
  let views = (await store.readAll()).views.get('t')!;
  t.same([views.get('p.test/a')!.up, views.get('p.test/a')!.load, views.get('p.test/a')!.utilization], [true, 25, 0.5], 'load and utilization');
  t.ok(views.get('p.test/a')!.rttMs! >= 0, 'rtt recorded');

  prober.setZones(zone(`  b: { addresses: [192.0.2.20], probe: { tcp: "127.0.0.3:${b.port}", interval: 200ms } }\n`));
  await prober.firstRound(10_000);
  await eventually('b probed', async () => (await store.readAll()).views.get('t')!.get('p.test/b')?.up === true);
  views = (await store.readAll()).views.get('t')!;
  t.notOk(views.has('p.test/a'), 'a removed from the zones: its view is deleted');
  const requests = a.requests;
  await new Promise((r) => setTimeout(r, 500));
  t.equal(a.requests, requests, 'a is no longer probed');
});

t.test('pushed reports: freshest load wins, excuse timeouts, and silence is down', async (t) => {
  const a = await startBackend('127.0.0.4', 10);
  t.teardown(() => a.stop());
  const store = new MemoryStateStore();
  const prober = new Prober({ store, logger, id: 't' });
  t.teardown(() => prober.stop());
  await prober.start();
  prober.setZones(
    zone(
      `  a: { addresses: [192.0.2.10], probe: { http: "${a.url}", interval: 200ms, timeout: 100ms, push_interval: 300ms } }\n` +
        `  p: { addresses: [192.0.2.30], probe: { push_interval: 200ms } }\n`,
    ),
  );
  await prober.firstRound(10_000);
  const viewOf = async (k: string) => (await store.readAll()).views.get('t')?.get(k);

  // Site a: pushes arrive every 100 ms while every probe times out: it stays up.
  a.dropRate = 1;
  const pusher = setInterval(() => void store.report('p.test/a', { load: 7, at: Date.now() }), 100);
  t.teardown(() => clearInterval(pusher));
  await new Promise((r) => setTimeout(r, 2000)); // ~10 timed-out probes, more than soft fall (6)
  const a1 = await viewOf('p.test/a');
  t.equal(a1!.up, true, 'timeouts excused while the site\'s own reports are fresh');
  t.equal(a1!.load, 7, 'the pushed load');
  clearInterval(pusher);
  await eventually('a goes down once its reports stop too', async () => (await viewOf('p.test/a'))?.up === false);

  // Site p: judged by its reports alone.
  await store.report('p.test/p', { load: 3, at: Date.now() });
  await eventually('p up with its load', async () => (await viewOf('p.test/p'))?.load === 3 && (await viewOf('p.test/p'))?.up === true);
  await eventually('p down after 3 silent intervals', async () => (await viewOf('p.test/p'))?.up === false);
  t.match((await viewOf('p.test/p'))!.reason, /pushed reports stopped/);
});

t.test('a site without a probe takes its load from pushed reports', async (t) => {
  const store = new MemoryStateStore();
  const prober = new Prober({ store, logger, id: 't' });
  t.teardown(() => prober.stop());
  await prober.start();
  prober.setZones(zone(`  n: { addresses: [192.0.2.40], capacity: 10 }\n`));
  await store.report('p.test/n', { load: 4, at: Date.now() });
  const v = (await store.readAll()).views.get('t')!.get('p.test/n')!;
  t.same([v.up, v.load, v.utilization], [true, 4, 0.4]);
});

t.test('flap damping with a real backend flapping every 0.75 s: fewer down/up cycles', async (t) => {
  const cycles = async (host: string, halfLife: string) => {
    const b = await startBackend(host, 5);
    const store = new MemoryStateStore();
    const prober = new Prober({ store, logger, id: 't' });
    await prober.start();
    prober.setZones(zone(`  f: { addresses: [192.0.2.40], probe: { http: "${b.url}", interval: 200ms, flap_half_life: ${halfLife} } }\n`));
    await prober.firstRound(10_000);
    const flapper = setInterval(() => (b.status = b.status === 200 ? 503 : 200), 750);
    let last: boolean | undefined;
    let falls = 0;
    const watcher = setInterval(async () => {
      const up = (await store.readAll()).views.get('t')?.get('p.test/f')?.up;
      if (last === true && up === false) falls++;
      last = up;
    }, 20);
    await new Promise((r) => setTimeout(r, 6000));
    clearInterval(flapper);
    clearInterval(watcher);
    prober.stop();
    await b.stop();
    return falls;
  };
  const undamped = await cycles('127.0.0.5', '0s');
  const damped = await cycles('127.0.0.6', '10s');
  t.ok(undamped >= 3, `undamped: ${undamped} falls in 6 s`);
  t.ok(damped <= 2, `damped: ${damped} falls in 6 s (the second fall holds the site down)`);
});

t.test('a view says when the site went down on its own word (refused), not on silence', async (t) => {
  const refused = await startBackend('127.0.0.7', 5);
  const silent = await startBackend('127.0.0.8', 5);
  t.teardown(() => silent.stop());
  const store = new MemoryStateStore();
  const prober = new Prober({ store, logger, id: 't' });
  t.teardown(() => prober.stop());
  await prober.start();
  prober.setZones(zone(`  r: { addresses: [192.0.2.50], probe: { http: "${refused.url}", interval: 200ms } }\n  s: { addresses: [192.0.2.60], probe: { http: "${silent.url}", interval: 200ms, timeout: 50ms } }\n`));
  await prober.firstRound(10_000);
  await refused.stop();
  silent.dropRate = 1;
  const viewOf = async (k: string) => (await store.readAll()).views.get('t')?.get(k);
  await eventually('both down', async () => (await viewOf('p.test/r'))?.up === false && (await viewOf('p.test/s'))?.up === false, 15_000);
  t.equal((await viewOf('p.test/r'))!.decisive, true, 'refused: decisive');
  t.equal((await viewOf('p.test/s'))!.decisive, undefined, 'timeouts: not decisive');
});
