/**
 * Limits in the zone loader: oversized files, too many names, absurd values and names that
 * only grow too long with the zone appended are clear `file:line: path: message` errors, never
 * crashes, hangs or broken answers.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { compileZoneFiles } from '../../src/config/compile.js';
import { formatProblem, type ConfigProblem } from '../../src/config/errors.js';
import { MAX_ZONE_FILE_BYTES, loadZoneDirectory, loadZoneFile, parseZoneText } from '../../src/config/load.js';
import { MAX_NESTING_DEPTH } from '../../src/config/nesting.js';
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

t.test('only regular files are read: a FIFO, a socket or a directory named *.yaml is reported and skipped', async (t) => {
  const dir = tempZonesDir({ 'good.yaml': `${HEAD}records:\n  www: { A: [192.0.2.1] }\n` });
  execFileSync('mkfifo', [join(dir, 'pipe.yaml')]); // nobody ever writes to it: reading it would block forever
  mkdirSync(join(dir, 'folder.yaml'));
  const socket = net.createServer().listen(join(dir, 'socket.yaml'));
  await once(socket, 'listening');
  t.teardown(() => socket.close());
  const outcome = loadZoneDirectory(dir);
  t.same(outcome.files.map((f) => f.file.replace(/.*\//, '')), ['good.yaml'], 'the regular file loads');
  const lines = outcome.problems.map(formatProblem).map((l) => l.replace(/.*\//, ''));
  t.same(lines, ['folder.yaml:0: (root): not a regular file (directory); skipped', 'pipe.yaml:0: (root): not a regular file (FIFO); skipped', 'socket.yaml:0: (root): not a regular file (socket); skipped']);
  t.ok(outcome.problems.every((p) => p.code === 'EZONE_READ'));
  const single = loadZoneFile(join(dir, 'pipe.yaml'));
  t.ok('problems' in single && single.problems[0].message === 'not a regular file (FIFO); skipped', 'a FIFO given as the zones path');
});

t.test('nesting deeper than the limit is one EZONE_LIMIT problem, found before any parser runs', async (t) => {
  for (const [what, text, line] of [
    ['300,000 [', `${HEAD}records: ${'['.repeat(300_000)}\n`, 4],
    ['300,000 [ closed again', `${HEAD}records: ${'['.repeat(300_000)}${']'.repeat(300_000)}\n`, 4],
    ['100,000 { on separate lines', `${HEAD}records:\n${'{\n'.repeat(100_000)}`, 5 + MAX_NESTING_DEPTH - 1],
    ['a compact sequence 100,000 deep', `${HEAD}records:\n  ${'- '.repeat(100_000)}x\n`, 5],
    ['block mappings 1,000 deep', `${HEAD}records:\n${Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} 1\n`, 4 + MAX_NESTING_DEPTH],
  ] as const) {
    const started = performance.now();
    const loaded = parseZoneText(text, 'zones/deep.yaml');
    const ms = performance.now() - started;
    t.ok('problems' in loaded, what);
    if (!('problems' in loaded)) continue;
    t.same(loaded.problems.map(formatProblem), [`zones/deep.yaml:${line}: (yaml): nested deeper than ${MAX_NESTING_DEPTH} levels`], `${what}: one problem`);
    t.equal(loaded.problems[0].code, 'EZONE_LIMIT');
    t.ok(ms < 1000, `${what}: refused in ${Math.round(ms)} ms (a parse of it takes seconds)`);
  }
  const legit = `${HEAD}records:\n  a: { TXT: ["[[[[ {{{{ not nesting", '[[[['] }  # [[[[[[\n`;
  t.notOk('problems' in parseZoneText(legit, 'z.yaml'), 'brackets inside quotes and comments are not nesting');
});

t.test('the error path is linear: a 1 MiB file with one error, a duplicate key or an alias', async (t) => {
  const names = 26_000;
  const records = Array.from({ length: names }, (_, i) => `  h${i}: { A: [10.${i >> 16}.${(i >> 8) & 255}.${i & 255}] }`);
  const body = `${HEAD}records:\n${records.join('\n')}\n`;
  t.ok(body.length < MAX_ZONE_FILE_BYTES, `${body.length} bytes`);
  const cases: [string, string, RegExp][] = [
    ['a wrong address in the last record', body.replace(/10\.0\.101\.143\]/, '10.0.101.300]'), new RegExp(`^zones/big.yaml:${names + 4}: records.h${names - 1}.A\\[0\\]: "10.0.101.300" is not an IPv4 address$`)],
    ['an unknown key in the last record', body.replace(/(h25999: \{ A: \[[0-9.]+\])/, '$1, colour: blue'), new RegExp(`^zones/big.yaml:${names + 4}: records.h${names - 1}.colour: unknown key$`)],
    ['the first name again at the end', `${body}  h0: { A: [192.0.2.1] }\n`, new RegExp(`^zones/big.yaml:${names + 5}: \\(yaml\\): Map keys must be unique$`)],
    ['a flow mapping left open in the last record', body.replace('h25999: {', 'h25999: {{'), new RegExp(`^zones/big.yaml:${names + 5}: \\(yaml\\): unexpected end of the stream within a flow collection$`)],
    ['an anchor, an alias and a wrong address', body.replace('h0: { A: [', 'h0: { A: &first [').replace(/h1: \{ A: \[[0-9.]+\] \}/, 'h1: { A: *first }').replace(/10\.0\.101\.143\]/, '10.0.101.300]'), new RegExp(`^zones/big.yaml:${names + 4}: records.h${names - 1}.A\\[0\\]: "10.0.101.300" is not an IPv4 address$`)],
  ];
  for (const [what, text, expected] of cases) {
    const started = performance.now();
    const p = problems(text, 'zones/big.yaml');
    const ms = performance.now() - started;
    t.match(p.join('\n'), expected, what);
    t.equal(p.length, 1, `${what}: one problem`);
    // A generous bound for a busy CI machine: these take 0.1-0.5 s on an idle 2-core one; yaml's
    // document of the whole file (25 µs a line) takes 1-7 s.
    t.ok(ms < 3000, `${what}: ${Math.round(ms)} ms`);
  }
});

t.test('a target name with one bad character after a long run of letters is refused at once', async (t) => {
  // 40 letters and a "!": a regular expression of (label.?)+ tries every split of the run (2^40).
  for (const target of [`${'a'.repeat(40)}!`, `${'a'.repeat(5000)}!`, `${'ab-'.repeat(30)}c!.lim.test.`]) {
    const started = performance.now();
    const found = problems(`${HEAD}records:\n  www: { CNAME: "${target}" }\n  mx: { MX: "10 ${target}" }\n`);
    const ms = performance.now() - started;
    t.same(found, [`zones/lim.yaml:5: records.www.CNAME: "${target}" is not a domain name`, `zones/lim.yaml:6: records.mx.MX: "${target}" is not a domain name`]);
    t.ok(ms < 1000, `${target.length} characters: ${Math.round(ms)} ms`);
  }
  t.same(problems(`${HEAD}records:\n  www: { CNAME: ${'a'.repeat(40)}.lim.test. }\n`), [], 'the same run without the bad character is a name');
});

t.test('a target name has the owner names\' labels: at most 63 characters each, no wildcard', async (t) => {
  for (const target of [`${'a'.repeat(64)}.lim.test.`, `${'a'.repeat(300)}`, 'x.*.lim.test.']) {
    t.same(problems(`${HEAD}records:\n  www: { CNAME: "${target}" }\n`), [`zones/lim.yaml:5: records.www.CNAME: "${target}" is not a domain name`], `${target.slice(0, 20)}... (${target.length})`);
  }
  t.same(problems(`${HEAD}records:\n  www: { CNAME: ${'a'.repeat(63)}.lim.test. }\n`), [], 'a 63-character label is a name');
});

t.test('a problem repeated identically is reported once per file', async (t) => {
  const loaded = parseZoneText(`${HEAD}records:\n  a: { A: [192.0.2.1] }\n  a: { A: [192.0.2.2] }\n  a: { A: [192.0.2.3] }\n`, 'z.yaml');
  t.ok('problems' in loaded);
  if ('problems' in loaded) t.same(loaded.problems.map(formatProblem), ['z.yaml:6: (yaml): Map keys must be unique', 'z.yaml:7: (yaml): Map keys must be unique']);
  const broken = parseZoneText(`${HEAD}records: [${'[x, '.repeat(40)}\n`, 'z.yaml');
  t.ok('problems' in broken && new Set(broken.problems.map(formatProblem)).size === broken.problems.length, 'no line twice');
});

t.test('aliases read as written; a bomb of them is refused', async (t) => {
  const loaded = parseZoneText(`${HEAD}sites:\n  a: { addresses: &shared [192.0.2.10, 192.0.2.11] }\n  b: { addresses: *shared }\n`, 'z.yaml');
  t.ok(!('problems' in loaded) && loaded.config.sites?.b?.addresses?.length === 2, 'an alias is its anchor\'s value');
  const bomb = `${HEAD}a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n`;
  const refused = parseZoneText(bomb, 'z.yaml');
  t.ok('problems' in refused && refused.problems[0].code === 'EZONE_LIMIT', 'EZONE_LIMIT, before the schema walks the expansion');
});
