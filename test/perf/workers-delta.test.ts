/**
 * `serve --workers N` sends workers deltas: after an incremental recompute only the changed
 * sites go over IPC; a worker gets the whole snapshot first (start, restart), before a reload,
 * and after full recomputes. Real processes: the primary probes a TCP listener of this test.
 */
import t from 'tap';
import { adminRequest } from '../../src/admin/http.js';
import { makeSnapshot } from '../../src/state/snapshot.js';
import { applyDeltaMessage, deltaMessage, snapshotFromMessage, stateMessage } from '../../src/server/state-messages.js';
import { decode, query } from '../helpers/dns.js';
import { probeTarget, probedZonesDir } from '../helpers/probe-target.js';
import { metric, parseMetrics } from '../helpers/metrics.js';
import { startSitedns, udpQuery } from '../helpers/net.js';

t.test('a delta applied to the snapshot it starts from gives the new snapshot', async (t) => {
  const before = makeSnapshot(new Map([['z/a', { up: true, load: 1 }], ['z/b', { up: false, reason: 'refused' }], ['z/c', { up: true }]]), true, 10);
  const after = makeSnapshot(new Map([['z/a', { up: true, load: 2 }], ['z/b', { up: false, reason: 'refused' }], ['z/d', { up: true, reason: 'new' }]]), false, 20);
  const wire = JSON.parse(JSON.stringify(deltaMessage(after, { from: before.version, changed: new Set(['z/a', 'z/c', 'z/d']) })));
  t.same(wire.removed, ['z/c']);
  t.same(wire.sites.map(([k]: [string]) => k), ['z/a', 'z/d'], 'only the changed sites travel');
  const held = snapshotFromMessage(JSON.parse(JSON.stringify(stateMessage(before))));
  const applied = applyDeltaMessage(held, wire)!;
  t.same(new Map(applied.sites), new Map(after.sites));
  t.same([applied.version, applied.takenAt, applied.fresh], [after.version, 20, false]);
  t.ok(Object.isFrozen(applied));
  t.same([...held.sites.keys()], ['z/a', 'z/b', 'z/c'], 'the held snapshot is left as it was');
  t.equal(applyDeltaMessage(applied, wire), null, 'a delta from another version does not apply');
});

t.test('workers follow deltas, and a restarted worker starts from the whole state', async (t) => {
  // Boston's probe target: a listener this test opens and closes (closed: connection refused).
  const { open, close } = probeTarget();
  t.teardown(close);
  const port = await open();
  const dir = probedZonesDir(port);
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--workers', '2', '--http', '127.0.0.1:0'], { SITEDNS_WORKERS: '2' });
  t.teardown(() => server.stop('SIGKILL'));
  const admin = await server.waitForLog((l) => l.msg === 'admin listening');
  const messages = async () => {
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text());
    return { whole: metric(m, 'sitedns_cluster_state_messages_total', { kind: 'whole' }) ?? 0, delta: metric(m, 'sitedns_cluster_state_messages_total', { kind: 'delta' }) ?? 0 };
  };
  const bostonAnswer = async () => decode((await udpQuery(server.port, query('boston.app.example.com')))!).answers[0]?.address;
  // Every worker answers alike: 20 queries from fresh source ports reach both.
  const allAnswers = async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(await bostonAnswer());
    return [...seen];
  };
  const until = async (what: string, address: string) => {
    for (let i = 0; i < 100 && (await bostonAnswer()) !== address; i++) await new Promise((r) => setTimeout(r, 100));
    t.same(await allAnswers(), [address], what);
  };

  // Boston going down or up is a view notice: an incremental recompute, sent as a delta. Full
  // recomputes (the tick, every 250 ms) that find a change send the whole state, and one may
  // come while a flip is on its way (it catches load-only notices still in their 50 ms batch);
  // a flip during which no whole state went out shows that the workers applied the delta.
  let up = true;
  const flip = async (what: string) => {
    const before = await messages();
    if (up) await close(); // refused: boston down
    else await open(port); // accepting again: up
    up = !up;
    await until(what, up ? '203.0.113.10' : '198.51.100.30');
    const after = await messages();
    t.ok(after.delta > before.delta, `${what}: deltas sent (${JSON.stringify(before)} -> ${JSON.stringify(after)})`);
    return after.whole === before.whole;
  };
  const byDeltasOnly = async (what: string) => {
    for (let i = 0; i < 8; i++) if (await flip(`${what}, flip ${i + 1}`)) return true;
    return false;
  };

  await until('boston up in every worker', '203.0.113.10');
  t.ok(await byDeltasOnly('every worker follows boston'), 'a flip reached every worker by deltas alone');
  if (!up) await flip('boston up again');

  const victim = server.logs.find((l) => l.msg === 'worker listening').worker;
  const beforeRestart = await messages();
  process.kill(victim, 'SIGKILL');
  const restarted = await server.waitForLog((l) => l.msg === 'worker restarted' && l.replaces === victim, 30_000);
  await server.waitForLog((l) => l.msg === 'worker listening' && l.worker === restarted.worker, 30_000);
  t.ok((await messages()).whole > beforeRestart.whole, 'the restarted worker was sent the whole state');
  t.same(await allAnswers(), ['203.0.113.10'], 'and answers from it');
  t.ok(await byDeltasOnly('the restarted worker follows too'), 'a flip reached both workers, the restarted one too, by deltas alone');
  if (up) await flip('boston down again');

  // A drain is a full recompute: it goes whole; then SIGHUP sends each worker the whole state first.
  const drained = await adminRequest(`127.0.0.1:${admin.port}`, 'POST', '/v1/sites/app.example.com/boston/drain', { reason: 'test', for: '10m' });
  t.equal(drained.status, 200);
  await open(port);
  await until('a drain reaches every worker (boston probed up again, but drained)', '198.51.100.30');
  server.proc.kill('SIGHUP');
  await server.waitForLog((l) => l.msg === 'rolling reload done', 30_000);
  t.same(await allAnswers(), ['198.51.100.30'], 'still drained after the rolling reload');
  t.same(server.logs.filter((l) => l.msg?.startsWith('state delta does not apply')), [], 'no worker was ever out of step');
  t.equal(await server.stop('SIGTERM'), 0);
});
