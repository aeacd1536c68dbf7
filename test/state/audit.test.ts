/** The audit trail without sockets: bounded, ordered, filtered; what the shared actions log and keep. */
import t from 'tap';
import { Writable } from 'node:stream';
import { AUDIT_TRAIL_LENGTH, AuditRing, describeAudit, reportEntry, selectAudit } from '../../src/state/audit.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { drain, refuseReport, reportLoad, undrain } from '../../src/state/service.js';
import type { AuditEntry } from '../../src/state/types.js';
import { createLogger } from '../../src/util/logger.js';
import { formatAudit } from '../../src/cli/audit.js';

const entry = (at: number, site = 'z.test/a', action: AuditEntry['action'] = 'drain'): AuditEntry => ({ at, action, site, by: 'ops', from: 'cli h/1' });

/** A logger whose lines the test reads back. */
function capturingOrigin(from = 'admin 127.0.0.1') {
  const lines: any[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text));
      done();
    },
  });
  return { lines, origin: { from, log: createLogger('info', sink).child({ component: 'audit' }) } };
}

t.test('a trail keeps its last 1,000 entries, oldest first', async (t) => {
  const ring = new AuditRing();
  for (let i = 0; i < AUDIT_TRAIL_LENGTH + 5; i++) ring.push(entry(i));
  const kept = ring.list();
  t.equal(kept.length, AUDIT_TRAIL_LENGTH);
  t.equal(kept[0].at, 5, 'the five oldest went');
  t.equal(kept.at(-1)!.at, AUDIT_TRAIL_LENGTH + 4, 'the newest is last');
});

t.test('report events have their own trail: a flood of refusals evicts no drain', async (t) => {
  const store = new MemoryStateStore();
  for (let i = 0; i < 10; i++) await store.appendAudit(entry(i, `z.test/s${i}`));
  for (let i = 0; i < 3 * AUDIT_TRAIL_LENGTH; i++) await store.appendAudit(entry(100 + i, 'z.test/a', 'report-refused'));
  const all = await store.readAudit();
  t.equal(all.filter((e) => e.action === 'drain').length, 10, 'every drain is still there');
  t.equal(all.filter((e) => e.action === 'report-refused').length, AUDIT_TRAIL_LENGTH, 'the refusals keep their own last 1,000');
  t.same(all.slice(0, 10).map((e) => e.site), Array.from({ length: 10 }, (_, i) => `z.test/s${i}`));
});

t.test('the trails are merged by time; equal times keep their trail\'s order', async (t) => {
  const store = new MemoryStateStore();
  await store.appendAudit(entry(30, 'z.test/a', 'undrain'));
  await store.appendAudit(entry(10, 'z.test/b', 'report'));
  await store.appendAudit(entry(50, 'z.test/c', 'force-up'));
  await store.appendAudit(entry(30, 'z.test/d', 'report-refused'));
  t.same((await store.readAudit()).map((e) => `${e.at} ${e.site}`), ['10 z.test/b', '30 z.test/a', '30 z.test/d', '50 z.test/c']);
});

t.test('selectAudit: a site by id, Site Name or key; the newest N, newest last', async (t) => {
  const entries = [entry(1, 'z.test/a'), entry(2, 'z.test/b'), entry(3, 'y.test/a'), entry(4, 'z.test/a'), entry(5, 'z.test/a')];
  t.same(selectAudit(entries, {}), entries, 'no filter: every entry');
  t.same((selectAudit(entries, { site: 'z.test/a' }) as AuditEntry[]).map((e) => e.at), [1, 4, 5]);
  t.same((selectAudit(entries, { site: 'a.z.test' }) as AuditEntry[]).map((e) => e.at), [1, 4, 5], 'the Site Name');
  t.same((selectAudit(entries, { site: 'b' }) as AuditEntry[]).map((e) => e.at), [2], 'an id only one zone has');
  t.same((selectAudit(entries, { site: 'z.test/a', limit: 2 }) as AuditEntry[]).map((e) => e.at), [4, 5], 'the newest two, newest last');
  t.same((selectAudit(entries, { limit: 10 }) as AuditEntry[]).length, 5);
  t.same(selectAudit(entries, { site: 'nope' }), [], 'a site without entries: an empty trail');
  t.match(selectAudit(entries, { site: 'a' }), { error: /ambiguous/ }, 'an id two zones have');
  t.match(selectAudit(entries, { site: 'a\u0007' }), { error: /control character/ });
});

t.test('selectAudit: refused reports name no sites, so they make no name ambiguous', async (t) => {
  const entries = [entry(1, 'z.test/boston'), entry(2, 'x.test/boston', 'report-refused'), entry(3, 'z.test/boston', 'report-refused'), entry(4, 'nowhere', 'report-refused')];
  t.same((selectAudit(entries, { site: 'boston' }) as AuditEntry[]).map((e) => e.at), [1, 3], 'boston: the one audited site, its refusals included');
  t.same((selectAudit(entries, { site: 'x.test/boston' }) as AuditEntry[]).map((e) => e.at), [2], 'the refusals under an exact text no audited site has');
  t.same((selectAudit(entries, { site: 'nowhere' }) as AuditEntry[]).map((e) => e.at), [4]);
  t.same(selectAudit(entries, { site: 'chicago' }), [], 'nothing under that name: an empty trail');
});

t.test('reports: a reporter\'s first report and a change of reporter are entries, a repeat is not', async (t) => {
  t.match(reportEntry('z.test/a', { load: 1, at: 5, by: 'r1' }, undefined, 'admin 10.0.0.1'), { action: 'report', by: 'r1', load: 1, reason: 'first report' });
  t.equal(reportEntry('z.test/a', { load: 2, at: 6, by: 'r1' }, { load: 1, at: 5, by: 'r1' }, 'admin 10.0.0.1'), undefined);
  t.match(reportEntry('z.test/a', { load: 2, at: 6, by: 'r2' }, { load: 1, at: 5, by: 'r1' }, 'admin 10.0.0.2'), { by: 'r2', reason: 'reporter changed from r1' });
});

t.test('drain, force-up, undrain: logged by the acting process and kept, with who, until, why and from where', async (t) => {
  const store = new MemoryStateStore();
  const { lines, origin } = capturingOrigin();
  await drain(store, 'z.test/a', { for: '30m', reason: 'kernel upgrade', by: 'alice' }, origin, 1000);
  await drain(store, 'z.test/b', { for: '10m', reason: 'probe is wrong', by: 'carol', state: 'up' }, origin, 2000);
  await undrain(store, 'z.test/a', 'bob', (await store.readAll()).forced.get('z.test/a'), origin, 3000);
  await undrain(store, 'z.test/c', 'bob', undefined, origin, 4000);
  t.same(await store.readAudit(), [
    { at: 1000, action: 'drain', site: 'z.test/a', by: 'alice', from: 'admin 127.0.0.1', state: 'down', until: 1000 + 1_800_000, reason: 'kernel upgrade' },
    { at: 2000, action: 'force-up', site: 'z.test/b', by: 'carol', from: 'admin 127.0.0.1', state: 'up', until: 2000 + 600_000, reason: 'probe is wrong' },
    { at: 3000, action: 'undrain', site: 'z.test/a', by: 'bob', from: 'admin 127.0.0.1', ended: { state: 'down', by: 'alice', reason: 'kernel upgrade', until: 1000 + 1_800_000 } },
    { at: 4000, action: 'undrain', site: 'z.test/c', by: 'bob', from: 'admin 127.0.0.1' },
  ]);
  t.equal(lines.length, 4, 'one log line each');
  t.match(lines[0], { level: 'info', component: 'audit', audit: { action: 'drain', by: 'alice' }, msg: 'z.test/a drained until 1970-01-01T00:30:01.000Z by alice: kernel upgrade' });
  t.match(lines[2].msg, 'z.test/a undrained by bob: ended a drain by alice until 1970-01-01T00:30:01.000Z: kernel upgrade');
  t.match(lines[3].msg, 'no forced state was in place');
  const refused = await drain(store, 'z.test/d', { for: '0s' }, origin, 5000);
  t.ok('error' in refused);
  t.equal((await store.readAudit()).length, 4, 'a refused drain changes nothing and is not an action');
});

t.test('reports: first, same reporter, new reporter, refused', async (t) => {
  const store = new MemoryStateStore();
  const { lines, origin } = capturingOrigin('admin 10.0.0.9');
  const previous = async () => (await store.readAll()).reports.get('z.test/a');
  await reportLoad(store, 'z.test/a', 0.4, 'site-a', await previous(), origin, 1000);
  await reportLoad(store, 'z.test/a', 0.5, 'site-a', await previous(), origin, 1500);
  await reportLoad(store, 'z.test/a', 0.6, 'site-a-standby', await previous(), origin, 2000);
  await refuseReport(store, 'z.test/nope', 'site-x', 'no site z.test/nope in the served zones', origin, 2500);
  t.same((await store.readAudit()).map((e) => [e.action, e.by, e.reason]), [
    ['report', 'site-a', 'first report'],
    ['report', 'site-a-standby', 'reporter changed from site-a'],
    ['report-refused', 'site-x', 'no site z.test/nope in the served zones'],
  ]);
  t.same(lines.map((l) => l.level), ['info', 'info', 'warn'], 'a refusal is a warning');
  t.equal((await previous())!.load, 0.6, 'every accepted report is stored');
});

t.test('secrets never reach the trail or its log line; control characters are escaped', async (t) => {
  const store = new MemoryStateStore();
  const { lines, origin } = capturingOrigin();
  await drain(store, 'z.test/a', { for: '1h', reason: 'moving to redis://:s3cret@10.0.0.5:6379 now', by: 'ops\u001b[31m' }, origin, 1000);
  const [kept] = await store.readAudit();
  t.equal(kept.reason, 'moving to redis://:***@10.0.0.5:6379 now');
  t.equal(kept.by, 'ops\\u001b[31m');
  t.notMatch(JSON.stringify(lines), /s3cret/);
  t.notMatch(formatAudit({ store: 'memory', entries: [kept] }), /s3cret|\u001b/);
  await drain(store, 'z.test/b', { for: '1h', reason: 'from redis://:one@a:6379 to rediss://u:two@b:6380', by: 'ops' }, origin, 2000);
  t.equal((await store.readAudit())[1].reason, 'from redis://:***@a:6379 to rediss://u:***@b:6380', 'every URL in the text');
});

t.test('the table: time, action, site, by, from, until, why', async (t) => {
  const table = formatAudit({
    store: 'redis',
    entries: [
      { at: 0, action: 'drain', site: 'z.test/a', by: 'alice', from: 'cli h/7', state: 'down', until: 1_800_000, reason: 'kernel upgrade' },
      { at: 60_000, action: 'undrain', site: 'z.test/a', by: 'bob', from: 'admin 127.0.0.1', ended: { state: 'down', by: 'alice', reason: 'kernel upgrade', until: 1_800_000 } },
    ],
  }).split('\n');
  t.match(table[0], /^TIME\s+ACTION\s+SITE\s+BY\s+FROM\s+UNTIL\s+WHY$/);
  t.same(table[1].split(/ {2,}/), ['1970-01-01T00:00:00.000Z', 'drain', 'z.test/a', 'alice', 'cli h/7', '1970-01-01T00:30:00.000Z', 'kernel upgrade']);
  t.same(table[2].split(/ {2,}/), ['1970-01-01T00:01:00.000Z', 'undrain', 'z.test/a', 'bob', 'admin 127.0.0.1', '-', 'ended a drain by alice until 1970-01-01T00:30:00.000Z: kernel upgrade']);
  t.equal(formatAudit({ store: 'memory', entries: [] }), 'audit trail (memory): no entries');
});

t.test('a log line ends with its table row\'s WHY, for every action', async (t) => {
  const entries: AuditEntry[] = [
    { at: 0, action: 'drain', site: 'z.test/a', by: 'alice', from: 'cli h/7', state: 'down', until: 1_800_000, reason: 'kernel upgrade' },
    { at: 1, action: 'force-up', site: 'z.test/a', by: 'alice', from: 'cli h/7', state: 'up', until: 1_800_000, reason: 'probe broken' },
    { at: 2, action: 'undrain', site: 'z.test/a', by: 'bob', from: 'cli h/8', ended: { state: 'up', by: 'alice', reason: 'probe broken', until: 1_800_000 } },
    { at: 3, action: 'undrain', site: 'z.test/a', by: 'bob', from: 'cli h/8' },
    { at: 4, action: 'report', site: 'z.test/a', by: 'site-a', from: 'admin 10.0.0.9', load: 0.4, reason: 'first report' },
    { at: 5, action: 'report-refused', site: 'z.test/nope', by: 'site-x', from: 'admin 10.0.0.9', reason: 'no site z.test/nope' },
  ];
  const rows = formatAudit({ store: 'memory', entries }).split('\n').slice(1);
  entries.forEach((e, i) => {
    const why = rows[i].split(/ {2,}/).at(-1)!;
    t.ok(describeAudit(e).endsWith(`: ${why}`), `${e.action}: "${describeAudit(e)}" ends with "${why}"`);
  });
  t.equal(describeAudit(entries[2]), 'z.test/a undrained by bob: ended a force-up by alice until 1970-01-01T00:30:00.000Z: probe broken');
  t.equal(describeAudit(entries[3]), 'z.test/a undrained by bob: no forced state was in place');
});

