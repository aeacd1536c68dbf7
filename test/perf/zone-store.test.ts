/**
 * Incremental reload: only files whose text changed are parsed (on the loader thread) and
 * compiled; unchanged zones are reused as they are; a broken file still keeps its last good zone.
 */
import t from 'tap';
import { writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadChangedTexts } from '../../src/config/changed-files.js';
import { formatProblem } from '../../src/config/errors.js';
import { ZoneLoader } from '../../src/config/zone-loader.js';
import { ZoneStore } from '../../src/zones/zone-store.js';
import { tempZonesDir } from '../helpers/dns.js';

const zone = (name: string, a: string) => `zone: ${name}\nsoa: { mname: ns1.${name}, rname: h.${name} }\nnameservers: { ns1.${name}: [192.0.2.1] }\nrecords:\n  www: { A: [${a}] }\n`;

t.test('a reload recompiles only what changed', async (t) => {
  const dir = tempZonesDir({ 'a.yaml': zone('a.test', '192.0.2.10'), 'b.yaml': zone('b.test', '192.0.2.20'), 'c.yaml': zone('c.test', '192.0.2.30') });
  const store = new ZoneStore(dir);
  t.teardown(() => store.close());
  const first = await store.load();
  t.equal(first.compiledFiles, 3);
  t.equal(first.zoneSet.zones.size, 3);

  writeFileSync(join(dir, 'b.yaml'), zone('b.test', '192.0.2.21'));
  const second = await store.load();
  t.equal(second.compiledFiles, 1, 'one file changed, one compiled');
  t.equal(second.zoneSet.zones.get('a.test'), first.zoneSet.zones.get('a.test'), 'unchanged zone reused');
  t.not(second.zoneSet.zones.get('b.test'), first.zoneSet.zones.get('b.test'), 'changed zone recompiled');
  t.ok(second.zoneSet.generation > first.zoneSet.generation, 'a new generation');
  t.equal(second.problems.length, 0);

  writeFileSync(join(dir, 'c.yaml'), 'zone: c.test\nbogus: 1\n');
  const third = await store.load();
  t.same(third.keptFiles.map((f) => f.replace(/.*\//, '')), ['c.yaml'], 'broken file keeps its last good zone');
  t.ok(third.problems.length > 0);
  t.equal(third.zoneSet.zones.get('c.test'), first.zoneSet.zones.get('c.test'));

  writeFileSync(join(dir, 'd.yaml'), zone('a.test', '192.0.2.99'));
  const fourth = await store.load();
  t.match(fourth.problems.map((p) => p.message).join('\n'), /zone a.test is also defined in/, 'a second file for a served zone is refused');
  t.equal(fourth.zoneSet.zones.get('a.test'), first.zoneSet.zones.get('a.test'), 'the first file keeps the zone');

  unlinkSync(join(dir, 'd.yaml'));
  unlinkSync(join(dir, 'a.yaml'));
  const fifth = await store.load();
  t.ok(fifth.zoneSet.zones.has('a.test'), 'a removed file keeps serving until restart');
  t.match(fifth.problems.map((p) => p.message).join('\n'), /zone file removed/);
});

t.test('the loader thread parses only what changed and returns plain data', async (t) => {
  const dir = tempZonesDir({ 'a.yaml': zone('a.test', '192.0.2.10'), 'b.yaml': zone('b.test', '192.0.2.20') });
  const loader = new ZoneLoader();
  t.teardown(() => loader.close());
  const first = await loader.load(dir, new Map());
  t.same(first.files.map((f) => f.status), ['loaded', 'loaded']);
  const known = new Map(first.files.map((f) => [f.file, f.status === 'loaded' ? f.digest : '']));
  writeFileSync(join(dir, 'b.yaml'), zone('b.test', '192.0.2.300'));
  const second = await loader.load(dir, known);
  t.same(second.files.map((f) => f.status), ['unchanged', 'failed'], 'a: unchanged, not parsed; b: refused by the compile check');
  const b = second.files[1];
  t.match(b.status === 'failed' ? formatProblem(b.problems[0]) : '', /b\.yaml:5: records\.www\.A\[0\]: "192\.0\.2\.300" is not an IPv4 address/);
});

t.test('a store with a source compiles the validated files it is given', async (t) => {
  const validated = (text: string) => loadChangedTexts([{ path: 'x/a.yaml', text }], new Map(), false).filter((f) => f.status === 'loaded');
  let files = validated(zone('a.test', '192.0.2.10'));
  const store = new ZoneStore('x', { source: () => files });
  const first = await store.load();
  t.equal(first.zoneSet.zones.size, 1);
  t.equal(first.compiledFiles, 1);
  const again = await store.load();
  t.equal(again.compiledFiles, 0, 'the same digest: not compiled again');
  t.equal(again.zoneSet, first.zoneSet, 'and the same set');
  files = [];
  const gone = await store.load();
  t.equal(gone.keptFiles.length, 1, 'a file no longer given keeps its last good zone');
  t.equal(gone.zoneSet.zones.size, 1);
});

t.test('a load whose loader thread ends fails with a coded problem; the next load starts another thread', async (t) => {
  const dir = tempZonesDir({ 'a.yaml': zone('a.test', '192.0.2.10') });
  const store = new ZoneStore(dir);
  t.teardown(() => store.close());
  const first = await store.load();
  t.equal(first.problems.length, 0);
  // Large enough to keep the thread busy for a while (5,000 names).
  const many = Array.from({ length: 5000 }, (_, i) => `  h${i}: { TXT: ["${i}"] }`).join('\n');
  writeFileSync(join(dir, 'a.yaml'), `${zone('a.test', '192.0.2.11')}${many}\n`);
  const pending = store.load();
  await new Promise((resolve) => setImmediate(resolve)); // the request is with the thread now
  await store.loader.close(); // the thread is gone while the load waits for it, as if it had crashed
  const failed = await pending;
  t.same(failed.problems.map((p) => p.code), ['EZONE_LOADER'], 'one coded problem, no hang');
  t.match(failed.problems[0].message, /zone loader failed: .*still serving the last good zones/);
  t.equal(failed.zoneSet, first.zoneSet, 'the zones served stay as they were');
  const after = await store.load();
  t.same(after.problems, [], 'a new thread loads');
  t.equal(after.compiledFiles, 1);
  t.not(after.zoneSet, first.zoneSet);
});

t.test('an idle loader thread does not keep the process alive', async (t) => {
  const dir = tempZonesDir({ 'a.yaml': zone('a.test', '192.0.2.10') });
  const script = join(dir, 'load.mjs');
  writeFileSync(
    script,
    `const { ZoneStore } = await import(${JSON.stringify(new URL('../../dist/zones/zone-store.js', import.meta.url).href)});
const store = new ZoneStore(${JSON.stringify(dir)});
await store.load();
const r = await store.load(); // a reload: on the loader thread
console.log(r.zoneSet.zones.size, store.lastReport === r);`,
  );
  const child = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(child.stdout.trim(), '1 true', child.stderr);
  t.equal(child.status, 0, 'the process ends by itself after the load');
});
