/**
 * The js-yaml path of config/load.ts must read every scalar exactly as the `yaml` document path
 * does (YAML 1.2 core schema), and leave tags, duplicate keys and broken YAML to it.
 */
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { parse } from 'yaml';
import { fastParse, parseZoneText } from '../../src/config/load.js';

const SCALARS = [
  '010', '0o10', '0o19', '0x1F', '0X1F', '1_000', '0b11', '+12', '-12', '1e3', '1E3', '.5', '+.5', '-.5', '5.', 'yes', 'no', 'on', 'off', 'y', 'n',
  '~', 'null', 'Null', 'NULL', 'nULL', '', 'true', 'True', 'TRUE', 'tRue', 'false', 'FALSE', '2001-12-14', '2001-12-14T21:59:43Z', '1:20', '190:20:30',
  '.inf', '-.Inf', '+.INF', '.nan', '.NaN', 'nan', '12e03', '1.5e+3', '1.5e-3', '0x_1', '0777', '00', '+0x10', '-0o7', '1__0', '0.1_2', '300', '1s', '500ms',
  '192.0.2.1', '2001:db8::1', '"2001:db8::1"', "'quoted'", '10 mail.example.com.', 'v=spf1 -all', '@', '"@"', '0', '-0', '+0', '1.0', '0.0',
];

t.test('scalars resolve as in the yaml package (YAML 1.2 core)', async (t) => {
  for (const s of SCALARS) {
    const text = `v: ${s}\n`;
    let expected: unknown;
    try {
      expected = parse(text)?.v;
    } catch {
      expected = 'ERROR';
    }
    const fast = fastParse(text) as { v: unknown } | undefined;
    if (fast === undefined) continue; // left to the document path: always correct
    t.ok(Object.is(fast.v, expected) || (Number.isNaN(fast.v) && Number.isNaN(expected)), `${JSON.stringify(s)}: fast ${String(fast.v)} (${typeof fast.v}) = yaml ${String(expected)} (${typeof expected})`);
  }
});

t.test('unusual documents take the document path', async (t) => {
  t.same(fastParse('a: &x [1, "y"]\nb: *x\n'), parse('a: &x [1, "y"]\nb: *x\n'), 'anchors and aliases read as yaml reads them');
  t.equal(fastParse('a: !!str 1\n'), undefined, 'tags');
  t.equal(fastParse('a: 1\na: 2\n'), undefined, 'duplicate keys');
  t.equal(fastParse('- 1\n'), undefined, 'not a mapping');
  t.equal(fastParse(''), undefined, 'empty');
  t.equal(fastParse('a: [1\n'), undefined, 'broken');
  const dup = parseZoneText('zone: a.test\nzone: b.test\n', 'z.yaml');
  t.ok('problems' in dup && dup.problems[0].line === 2, 'a duplicate key is reported with its line by the document path');
});

t.test('the zone files of the repository read the same both ways', async (t) => {
  for (const dir of ['zones', 'test/fixtures']) {
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
      const text = readFileSync(`${dir}/${f}`, 'utf8');
      t.same(fastParse(text), parse(text), `${dir}/${f}`);
    }
  }
});
