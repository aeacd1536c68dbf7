/**
 * End-to-end through Redis: a real redis-server (test/helpers/redis.ts), `sitedns probe`
 * processes, and separate `sitedns serve --redis` nameservers, with real HTTP backends on
 * 127.0.0.x. Two nameservers agreeing, Redis killed and restarted while queries flow, a prober
 * killed and a second one taking over, status/drain straight against Redis, and the
 * last-known-state file for a start while Redis is down.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { answer, eventually, redisAndTwoSites } from '../helpers/backends.js';
import { CLI, startProber, startSitedns } from '../helpers/net.js';
import { RedisStateStore } from '../../src/state/redis-store.js';
import { statusFromContents, type StatusReport } from '../../src/state/status.js';
import { createLogger } from '../../src/util/logger.js';

const run = promisify(execFile);

t.test('Redis mode', async (t) => {
  const { redis, a, b, zones } = await redisAndTwoSites(t);
  const p1 = await startProber(zones, redis.url, 'p1');
  t.teardown(() => p1.kill());
  const stateDir = mkdtempSync(join(tmpdir(), 'sitedns-state-'));
  const serveArgs = (n: number) => ['serve', '--zones', zones, '--listen', '127.0.0.1:0', '--http', 'off', '--redis', redis.url, '--stale-after', '1500ms', '--state-file', join(stateDir, `ns${n}.json`)];
  const ns1 = await startSitedns(serveArgs(1));
  t.teardown(() => ns1.stop());
  const ns2 = await startSitedns(serveArgs(2));
  t.teardown(() => ns2.stop());

  // Reads Redis in-process (the same code `sitedns status --redis` runs), for polling.
  const reader = new RedisStateStore({ url: redis.url, logger: createLogger('silent') });
  t.teardown(() => reader.close());
  const status = async (): Promise<StatusReport | undefined> => (reader.connected() ? statusFromContents(await reader.readAll(), Date.now(), 'redis') : undefined);
  const bothUp = async () => (await status())?.sites.filter((s) => s.state === 'up').length === 2;
  await eventually('both sites probed', bothUp);

  await t.test('two nameservers agree, also after a failover', async (t) => {
    t.equal(await answer(ns1.port, 'a.r.test'), '192.0.2.10');
    t.equal(await answer(ns2.port, 'a.r.test'), '192.0.2.10');
    await a.stop();
    await eventually('ns1 fails a over', async () => (await answer(ns1.port, 'a.r.test')) === '192.0.2.20');
    await eventually('ns2 fails a over', async () => (await answer(ns2.port, 'a.r.test')) === '192.0.2.20');
    t.equal(await answer(ns1.port, 'r.test'), await answer(ns2.port, 'r.test'), 'same pool answer');
    await a.start();
    await eventually('both recover', async () => (await answer(ns1.port, 'a.r.test')) === '192.0.2.10' && (await answer(ns2.port, 'a.r.test')) === '192.0.2.10');
  });

  await t.test('least-busy follows a load change through Redis', async (t) => {
    a.load = 90;
    await eventually('pool moves to b', async () => (await answer(ns1.port, 'r.test')) === '192.0.2.20');
    a.load = 10;
    await eventually('pool moves back to a', async () => (await answer(ns1.port, 'r.test')) === '192.0.2.10');
    t.pass();
  });

  await t.test('drain and undrain straight against Redis', async (t) => {
    const { stdout } = await run(process.execPath, [CLI, 'drain', 'a', '--for', '1h', '--reason', 'maintenance', '--by', 'tester', '--redis', redis.url]);
    t.match(stdout, /r\.test\/a: drained until/);
    await eventually('both nameservers drop a', async () => (await answer(ns1.port, 'a.r.test')) === '192.0.2.20' && (await answer(ns2.port, 'a.r.test')) === '192.0.2.20');
    const { stdout: table } = await run(process.execPath, [CLI, 'status', '--redis', redis.url]);
    t.match(table, /r\.test\/a\s+drained\s.*drained by tester: maintenance/);
    await run(process.execPath, [CLI, 'undrain', 'a', '--redis', redis.url]);
    await eventually('a is back', async () => (await answer(ns1.port, 'a.r.test')) === '192.0.2.10' && (await answer(ns2.port, 'a.r.test')) === '192.0.2.10');
  });

  await t.test('Redis killed and restarted while queries flow: every query answered', async (t) => {
    // b is down before the outage: a restarted (empty) Redis must not bring it back by omission.
    await b.stop();
    await eventually('b failed over', async () => (await answer(ns1.port, 'b.r.test')) === '192.0.2.10');
    let stop = false;
    let asked = 0;
    const wrong: string[] = [];
    const flow = (async () => {
      while (!stop) {
        const [ga, gb] = await Promise.all([answer(ns1.port, 'a.r.test'), answer(ns1.port, 'b.r.test')]);
        asked++;
        if (ga !== '192.0.2.10') wrong.push(`a: ${ga}`);
        if (gb !== '192.0.2.10') wrong.push(`b: ${gb}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await redis.kill();
    await ns1.waitForLog((l) => l.msg?.startsWith('state store unreachable'));
    await new Promise((r) => setTimeout(r, 2500)); // longer than --stale-after: still the last known state
    await redis.start();
    await ns1.waitForLog((l) => l.msg === 'state store reachable again: following it');
    // The restarted Redis is empty until the prober's resync rewrites its views.
    await eventually('state back in Redis', async () => (await status())?.sites.some((s) => s.site === 'r.test/b' && s.state === 'down') ?? false);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await flow;
    t.ok(asked > 50, `queries flowed (${asked})`);
    t.same(wrong, [], 'every query answered, with the last known state');
    t.equal(ns1.logs.filter((l) => l.msg?.startsWith('state store unreachable')).length, 1, 'the outage is logged once');
    await b.start();
    await eventually('b back', async () => (await answer(ns1.port, 'b.r.test')) === '192.0.2.20');
  });

  const p2 = await startProber(zones, redis.url, 'p2');
  t.teardown(() => p2.kill());
  await t.test('a prober killed and a second one taking over', async (t) => {
    await eventually('p2 is live', async () => (await status())?.probers.some((p) => p.id === 'p2' && p.live) ?? false);
    await p1.kill('SIGKILL'); // no clean leave: its heartbeat just stops
    t.equal(await answer(ns1.port, 'a.r.test'), '192.0.2.10', 'a dead prober does not flip the answers');
    await b.stop();
    await eventually('p2 alone fails b over', async () => (await answer(ns1.port, 'b.r.test')) === '192.0.2.10' && (await answer(ns2.port, 'b.r.test')) === '192.0.2.10');
    await b.start();
    await eventually('and brings b back', async () => (await answer(ns1.port, 'b.r.test')) === '192.0.2.20');
  });

  await t.test('a nameserver started while Redis is down answers from the last-known-state file', async (t) => {
    await a.stop(); // a is down in the last known state
    await eventually('ns1 sees a down', async () => (await answer(ns1.port, 'a.r.test')) === '192.0.2.20');
    await new Promise((r) => setTimeout(r, 1200)); // the file is written at most once a second
    await ns1.stop();
    await redis.kill();
    const ns3 = await startSitedns([...serveArgs(1), '--startup-limit', '500ms']);
    t.teardown(() => ns3.stop());
    t.ok(ns3.logs.some((l) => l.msg === 'state store unreachable at start: answering from the last-known-state file'), 'says so');
    t.equal(await answer(ns3.port, 'a.r.test'), '192.0.2.20', 'answers from the file: a is down');
    const ns4 = await startSitedns([...serveArgs(4), '--startup-limit', '500ms']);
    t.teardown(() => ns4.stop());
    t.ok(ns4.logs.some((l) => /no last-known-state file: answering with every site up/.test(l.msg ?? '')), 'no file: says it assumes every site up');
    t.equal(await answer(ns4.port, 'a.r.test'), '192.0.2.10');
    await a.start();
  });
});
