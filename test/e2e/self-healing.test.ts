/**
 * State that heals itself, end to end: a real redis-server, a `sitedns probe` process, a
 * `sitedns serve --redis` and real HTTP backends.
 *  1. Every prober dead, a site killed afterwards: the nameserver probes for itself and the dead
 *     site leaves the answers within --stale-after + 2 s; it says so (log, metric, status) and
 *     writes nothing to Redis. The prober restarted (same id, so its views of before are still
 *     in Redis): the dead site is never answered in the switch-back, and self-probing stops.
 *  2. A drain, then Redis restarted without its data: the drain is written back, the drained
 *     site is never answered meanwhile, and the write-back is logged.
 *  3. A nameserver started from its state file while Redis is down, Redis back empty: the dead
 *     site the file holds is never answered before the prober's view of it arrives.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { answer, eventually, redisAndTwoSites } from '../helpers/backends.js';
import { metric, parseMetrics } from '../helpers/metrics.js';
import { CLI, startProber, startSitedns } from '../helpers/net.js';

const run = promisify(execFile);
const STALE_AFTER_MS = 2000;
const A = '192.0.2.10';
const B = '192.0.2.20';

/** Asks `name` every 20 ms until stopped; collects every answer that is `forbidden`. */
function watch(port: number, name: string, forbidden: string) {
  let stop = false;
  let asked = 0;
  const wrong: string[] = [];
  const done = (async () => {
    while (!stop) {
      const got = await answer(port, name);
      asked++;
      if (got === forbidden) wrong.push(`${new Date().toISOString()} ${got}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    /** Stops asking (again: a no-op) and gives what was seen. */
    async end() {
      stop = true;
      await done;
      return { asked, wrong };
    },
  };
}

t.test('self-healing state', async (t) => {
  const { redis, a, b, zones } = await redisAndTwoSites(t);
  let prober = await startProber(zones, redis.url, 'p1');
  t.teardown(() => prober.kill());
  const stateDir = mkdtempSync(join(tmpdir(), 'sitedns-heal-'));
  const stateFile = join(stateDir, 'ns.json');
  const serveArgs = ['serve', '--zones', zones, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--redis', redis.url, '--stale-after', `${STALE_AFTER_MS}ms`, '--state-file', stateFile];
  let ns = await startSitedns(serveArgs);
  t.teardown(() => ns.stop());
  let admin = `http://127.0.0.1:${(await ns.waitForLog((l) => l.msg === 'admin listening')).port}`;
  const selfProbingMetric = async () => metric(parseMetrics(await (await fetch(`${admin}/metrics`)).text()), 'sitedns_self_probing');
  const raw = new Redis(redis.url);
  raw.on('error', () => undefined); // Redis is killed on purpose below
  t.teardown(() => raw.disconnect());
  await eventually('both sites up', async () => (await answer(ns.port, 'a.r.test')) === A && (await answer(ns.port, 'b.r.test')) === B);

  await t.test('every prober dead: the nameserver probes for itself, and hands back to a prober that returns', async (t) => {
    t.equal(await selfProbingMetric(), 0, 'sitedns_self_probing 0 while a prober is live');
    await prober.kill();
    const killedAt = Date.now();
    await a.stop(); // killed after the last prober
    let gone = 0;
    await eventually('a leaves the answers', async () => {
      if ((await answer(ns.port, 'a.r.test')) !== B) return false;
      gone = Date.now() - killedAt;
      return true;
    }, 20_000);
    t.ok(gone <= STALE_AFTER_MS + 2000, `the dead site left the answers ${gone} ms after the prober and the site died (limit: stale-after + 2 s = ${STALE_AFTER_MS + 2000} ms)`);
    t.comment(`dead site out of the answers after ${gone} ms (stale-after ${STALE_AFTER_MS} ms)`);
    t.ok(ns.logs.some((l) => l.msg === 'no live prober: this nameserver probes the sites itself until a prober heart-beats again'), 'logged when it starts');
    t.equal(await selfProbingMetric(), 1, 'sitedns_self_probing 1');
    const status = await (await fetch(`${admin}/v1/status`)).json();
    t.equal(status.store.selfProbing, true, '/v1/status says so');
    t.match(status.sites.find((s: any) => s.site === 'r.test/a').reason, /probed by this nameserver/, 'and whose verdict it is');
    const { stdout: table } = await run(process.execPath, [CLI, 'status', '--http', admin.replace('http://', '')]);
    t.match(table, /no live prober: this nameserver probes the sites itself/, 'the status table too');
    t.same((await raw.keys('sitedns:views:*')).sort(), ['sitedns:views:p1'], 'no views of its own written to Redis');
    t.same(Object.keys(await raw.hgetall('sitedns:probers')), ['p1'], 'and no heartbeat');

    // The prober restarts with the same id: its views of before (a up) are still in Redis.
    t.equal(JSON.parse((await raw.hget('sitedns:views:p1', 'r.test/a'))!).up, true, 'Redis still holds the old view: a up');
    const watching = watch(ns.port, 'a.r.test', A);
    prober = await startProber(zones, redis.url, 'p1');
    await ns.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('probers heart-beating again') && /self-probing stop/.test(l.msg), 15_000);
    await new Promise((r) => setTimeout(r, 500));
    const { asked, wrong } = await watching.end();
    t.ok(asked > 20, `asked throughout the switch-back (${asked} queries)`);
    t.same(wrong, [], 'the dead site was never answered in the switch-back');
    t.equal(await selfProbingMetric(), 0, 'sitedns_self_probing 0 again');
    t.ok(ns.logs.some((l) => l.msg === 'probers heart-beating again with a view of every site: self-probing stopped'), 'logged when it stops, after a full round');
    await a.start();
    await eventually('a back, by the prober', async () => (await answer(ns.port, 'a.r.test')) === A);
  });

  await t.test('Redis restarted without its data: the drain comes back', async (t) => {
    await run(process.execPath, [CLI, 'drain', 'b', '--for', '30m', '--reason', 'kernel upgrade', '--by', 'tester', '--redis', redis.url]);
    await eventually('b drained', async () => (await answer(ns.port, 'b.r.test')) === A);
    const watching = watch(ns.port, 'b.r.test', B);
    await redis.kill();
    await ns.waitForLog((l) => l.msg?.startsWith('state store unreachable'));
    await redis.start(); // --save '' --appendonly no: empty
    const line = await ns.waitForLog((l) => l.msg === 'state store lost its contents: wrote back the drains and force-ups this nameserver held', 15_000);
    t.match(line, { drains: 1, forcedUp: 0, written: 1 }, 'one line: what and how many');
    const { stdout } = await run(process.execPath, [CLI, 'status', '--redis', redis.url]);
    t.match(stdout, /r\.test\/b\s+drained\s.*drained by tester: kernel upgrade/, 'the drain is in Redis again, as it was');
    await eventually('the prober rewrote its views', async () => (await raw.hget('sitedns:views:p1', 'r.test/a').catch(() => null)) !== null);
    await new Promise((r) => setTimeout(r, 300));
    const { asked, wrong } = await watching.end();
    t.ok(asked > 20, `asked throughout (${asked} queries)`);
    t.same(wrong, [], 'the drained site was never answered');
    await run(process.execPath, [CLI, 'undrain', 'b', '--redis', redis.url]);
    await eventually('b back', async () => (await answer(ns.port, 'b.r.test')) === B);
  });

  await t.test('started from the state file while Redis is down, Redis back empty: the dead site stays out', async (t) => {
    await a.stop();
    await eventually('a down', async () => (await answer(ns.port, 'a.r.test')) === B);
    await new Promise((r) => setTimeout(r, 1200)); // the file is written at most once a second
    await ns.stop();
    await prober.kill(); // the view of a comes only once it is back
    await redis.kill();
    ns = await startSitedns([...serveArgs, '--startup-limit', '500ms']);
    admin = `http://127.0.0.1:${(await ns.waitForLog((l) => l.msg === 'admin listening')).port}`;
    t.ok(ns.logs.some((l) => l.msg === 'state store unreachable at start: answering from the last-known-state file'), 'started from the file');
    const watching = watch(ns.port, 'a.r.test', A);
    t.teardown(() => watching.end());
    await redis.start();
    await eventually('following Redis', async () => (await (await fetch(`${admin}/v1/status`)).json()).store.connected === true);
    await new Promise((r) => setTimeout(r, 1500)); // several re-reads of the empty Redis
    prober = await startProber(zones, redis.url, 'p1');
    await eventually('the prober\'s view of a', async () => (await raw.hget('sitedns:views:p1', 'r.test/a').catch(() => null)) !== null);
    await new Promise((r) => setTimeout(r, 300));
    const { asked, wrong } = await watching.end();
    t.ok(asked > 20, `asked throughout (${asked} queries)`);
    t.same(wrong, [], 'a was never answered while Redis was empty');
    await a.start();
  });
});
