/**
 * Limits in the zone loader (#7): oversized files, too many names, absurd values and names that
 * only grow too long with the zone appended are clear `file:line: path: message` errors, never
 * crashes, hangs or broken answers.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileZoneFiles } from '../../src/config/compile.js';
import { formatProblem, type ConfigProblem } from '../../src/config/errors.js';
import { MAX_ZONE_FILE_BYTES, loadZoneFile, parseZoneText } from '../../src/config/load.js';
import { tempZonesDir } from '../helpers/dns.js';

const HEAD = `zone: lim.test
soa: { mname: ns1.lim.test, rname: h.lim.test }
nameservers: { ns1.lim.test: [192.0.2.1] }
`;

function problems(text: string, file = 'zones/lim.yaml'): string[] {
  const loaded = parseZoneText(text, file);
  if ('problems' in loaded) return loaded.problems.map(formatProblem);
  return compileZoneFiles([loaded]).problems.map((p: ConfigProblem) => formatProblem(p));
}

t.test('absurd values are errors with file, line and path', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['TTL over 2^31-1 (RFC 2181 §8)', `${HEAD}ttl: 4294967296\n`, /^zones\/lim.yaml:4: ttl: .*2147483647/],
    ['TTL of 1e999', `${HEAD}ttl: 1e999\n`, /^zones\/lim.yaml:4: ttl: /],
    ['negative TTL', `${HEAD}records:\n  a: { A: [192.0.2.1], ttl: -1 }\n`, /^zones\/lim.yaml:5: records.a.ttl: /],
    ['thousands of addresses on a site', `${HEAD}sites:\n  s:\n    addresses: [${Array.from({ length: 2000 }, (_, i) => `"10.0.${i >> 8}.${i & 255}"`).join(', ')}]\n`, /^zones\/lim.yaml:6: sites.s.addresses: at most 100 addresses per site$/],
    ['a probe every 0 ms', `${HEAD}sites:\n  s:\n    addresses: [192.0.2.9]\n    probe: { tcp: "192.0.2.9:80", interval: 0ms }\n`, /^zones\/lim.yaml:7: sites.s.probe.interval: at least 100ms$/],
    ['a probe timeout of a day', `${HEAD}sites:\n  s:\n    addresses: [192.0.2.9]\n    probe: { tcp: "192.0.2.9:80", timeout: 24h }\n`, /^zones\/lim.yaml:7: sites.s.probe.timeout: at most 60s$/],
    ['a 200 kB TXT record', `${HEAD}records:\n  big: { TXT: "${'x'.repeat(200_000)}" }\n`, /^zones\/lim.yaml:5: records.big: a TXT record of \d+ bytes; a DNS record holds at most 65535$/],
    ['an RRset no message can carry', `${HEAD}records:\n  big: { TXT: [${Array.from({ length: 300 }, () => `"${'y'.repeat(250)}"`).join(', ')}] }\n`, /records.big: the TXT records come to \d+ bytes; no DNS message could carry them/],
    ['more than 1000 records in one RRset', `${HEAD}records:\n  many: { A: [${Array.from({ length: 1001 }, (_, i) => `"10.1.${i >> 8}.${i & 255}"`).join(', ')}] }\n`, /records.many.A\[1000\]: more than 1000 records/],
  ];
  for (const [what, text, expected] of cases) {
    const p = problems(text);
    t.ok(p.some((line) => expected.test(line)), `${what}: ${p[0]?.slice(0, 160)}`);
  }
});

t.test('deep names: too long only once the zone is appended', async (t) => {
  const label = 'a'.repeat(60);
  const relative = [label, label, label, label.slice(0, 55)].join('.'); // 238 characters: valid alone
  const p1 = problems(`${HEAD}records:\n  ${relative}: { A: [192.0.2.1] }\n`, 'zones/lim.yaml');
  t.equal(p1.length, 0, '238 + ".lim.test" = 247 characters is fine');
  const longer = [label, label, label, label.slice(0, 60), 'bcdefghi'].join('.'); // 252 + zone = 261
  const p2 = problems(`${HEAD}records:\n  ${longer}: { A: [192.0.2.1] }\n`);
  t.match(p2[0], /^zones\/lim.yaml:5: records\["a{60}\.\S+"\]: a+\.\.\. is 261 characters with the zone; a DNS name holds at most 253$/);
  const p3 = problems(`${HEAD}records:\n  x: { CNAME: ${[label, label, label, label, label].join('.')}. }\n`);
  t.match(p3[0], /^zones\/lim.yaml:5: records.x: target \S+ is 304 characters; a DNS name holds at most 253$/);
  const p4 = problems(`${HEAD}sites:\n  s:\n    name: ${longer}\n    addresses: [192.0.2.9]\n`);
  t.match(p4.join('\n'), /sites.s.*261 characters with the zone/);
  const p5 = problems(`${HEAD}records:\n  ${Array.from({ length: 200 }, () => 'a').join('.')}: { A: [192.0.2.1] }\n`);
  t.ok(p5.length > 0, '200 labels deep: an error, not a crash');
});

t.test('YAML that would exhaust the parser is an error, not a crash', async (t) => {
  const nested = `${HEAD}records: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`;
  const p = problems(nested);
  t.ok(p.length > 0 && /^zones\/lim.yaml:\d+: /.test(p[0]), `deep nesting: ${p[0]}`);
  const bomb = `${HEAD}a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n`;
  t.ok(problems(bomb).length > 0, 'an alias bomb is refused');
});

t.test('an oversized file is refused before it is read', async (t) => {
  const dir = tempZonesDir({});
  const file = join(dir, 'huge.yaml');
  writeFileSync(file, HEAD + '#'.repeat(MAX_ZONE_FILE_BYTES));
  const r = loadZoneFile(file);
  t.ok('problems' in r);
  if ('problems' in r) {
    t.equal(r.problems[0].code, 'EZONE_SIZE');
    t.match(formatProblem(r.problems[0]), /huge.yaml:0: \(root\): file is \d+ bytes; the limit is \d+/);
  }
});
