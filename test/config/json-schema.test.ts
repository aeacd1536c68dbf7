/**
 * The zone format's JSON Schema (config/json-schema.ts): the shipped file is what the zod schema
 * generates, the sample zones point editors at it, and on documents within what a JSON Schema can
 * say, it and `sitedns check`'s loader accept and refuse the same.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import yaml from 'js-yaml';
import { zoneJsonSchema, zoneJsonSchemaText } from '../../src/config/json-schema.js';
import { parseZoneText } from '../../src/config/load.js';
import { compileZoneFiles } from '../../src/config/compile.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SHIPPED = resolve(root, 'schema/zone.schema.json');
const SAMPLES = ['zones/app.example.com.yaml', 'zones-compose/app.example.com.yaml'];

const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(zoneJsonSchema());
/** What `sitedns check` says of one file: its problems, none when it is valid. */
function check(text: string): string[] {
  const loaded = parseZoneText(text, 'z.yaml');
  if ('problems' in loaded) return loaded.problems.map((p) => p.message);
  return compileZoneFiles([loaded]).problems.map((p) => p.message);
}
const bySchema = (text: string) => validate(yaml.load(text));

const zone = (extra = '', site = '{ addresses: [192.0.2.10] }') => `zone: s.test
soa: { mname: ns1.s.test, rname: h.s.test }
nameservers: { ns1.s.test: [192.0.2.1] }
sites:
  one: ${site}
${extra}`;

t.test('schema/zone.schema.json is what the zod schema generates (npm run schema)', async (t) => {
  t.equal(readFileSync(SHIPPED, 'utf8'), zoneJsonSchemaText(), 'out of step with src/config/schema.ts: run npm run schema');
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));
  t.ok(pkg.files.includes('schema'), 'shipped in the npm package');
});

t.test('the sample zones point editors at the shipped schema', async (t) => {
  for (const sample of SAMPLES) {
    const first = readFileSync(resolve(root, sample), 'utf8').split('\n')[0];
    const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
    t.ok(m, `${sample} starts with the modeline`);
    t.equal(resolve(dirname(resolve(root, sample)), m![1]), SHIPPED, `${sample}: the path reaches the schema`);
    t.ok(existsSync(SHIPPED));
  }
});

t.test('check and the schema agree', async (t) => {
  const valid: Record<string, string> = {
    'the sample zone': readFileSync(resolve(root, SAMPLES[0]), 'utf8'),
    'a minimal zone': zone(),
    'durations with units': zone('', '{ addresses: [192.0.2.10], probe: { tcp: "127.0.0.1:80", interval: 1m30s, timeout: 1.5s } }'),
    'a group as an object': zone('groups: { g: { sites: [one], all_down: first } }\npool: { name: "@", policy: first, topology: { g: [192.0.2.0/24] } }'),
  };
  const invalid: Record<string, string> = {
    'a misspelt key': zone('pool: { name: "@", polcy: failover }'),
    'an unknown policy': zone('pool: { name: "@", policy: fastest }'),
    'a negative ttl': zone('ttl: -1'),
    'a duration without a unit (number)': zone('', '{ addresses: [192.0.2.10], probe: { tcp: "127.0.0.1:80", interval: 30 } }'),
    'a duration without a unit (text)': zone('', '{ addresses: [192.0.2.10], probe: { tcp: "127.0.0.1:80", interval: "30" } }'),
    'a site without addresses': zone('', '{ addresses: [] }'),
    'no soa': zone().replace(/^soa: .*\n/m, ''),
    'an upper-case site id': zone().replace('  one:', '  One:'),
  };
  for (const [what, text] of Object.entries(valid)) {
    t.same(check(text), [], `${what}: check accepts`);
    t.ok(bySchema(text), `${what}: the schema accepts`);
  }
  for (const [what, text] of Object.entries(invalid)) {
    t.not(check(text).length, 0, `${what}: check refuses`);
    t.notOk(bySchema(text), `${what}: the schema refuses`);
  }
  // Beyond a JSON Schema: references between parts of the zone; check alone catches them.
  const unknownSite = zone('groups: { g: [two] }');
  t.ok(bySchema(unknownSite), 'a group naming an unknown site fits the shape');
  t.match(check(unknownSite).join('\n'), /two/, 'check names the unknown site');
});
