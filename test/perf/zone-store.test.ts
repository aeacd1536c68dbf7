/**
 * Incremental reload: only files whose text changed are recompiled; unchanged zones are
 * reused as they are; a broken file still keeps its last good zone.
 */
import t from 'tap';
import { writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ZoneStore } from '../../src/server/zone-store.js';
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
