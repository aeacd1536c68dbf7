/** Zone loading and compiling: every error names file, line and path. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { compileZoneFiles } from '../src/config/compile.js';
import { formatProblem } from '../src/config/errors.js';
import { parseZoneText } from '../src/config/load.js';
import { tempZonesDir } from './helpers/dns.js';
import { parseDuration } from '../src/util/duration.js';

const BASE = `zone: app.example.com
soa: { mname: ns1.app.example.com, rname: hostmaster.example.com }
nameservers:
  ns1.app.example.com: [192.0.2.53]
`;

function problems(text: string): string[] {
  const loaded = parseZoneText(text, 'z.yaml');
  if ('problems' in loaded) return loaded.problems.map(formatProblem);
  return compileZoneFiles([loaded]).problems.map(formatProblem);
}

t.test('durations', async (t) => {
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('1s'), 1000);
  t.equal(parseDuration('2m'), 120000);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration('soon'), undefined);
});

t.test('schema problems carry file:line: path: message', async (t) => {
  const cases: [string, RegExp][] = [
    [BASE + 'colour: blue\n', /^z\.yaml:5: colour: unknown key$/],
    [BASE + 'sites:\n  boston:\n    addresses: [203.0.113.999]\n', /^z\.yaml:7: sites\.boston\.addresses\[0\]: not an IPv4 or IPv6 address$/],
    [BASE + 'sites:\n  boston:\n    addresses: [203.0.113.1]\n    probe: { http: "http://x/", interval: soon }\n', /^z\.yaml:8: sites\.boston\.probe\.interval: "soon" is not a duration/],
    [BASE + 'sites:\n  boston:\n    addresses: [203.0.113.1]\n    capacty: 3\n', /^z\.yaml:8: sites\.boston\.capacty: unknown key$/],
    [`zone: app.example.com\nnameservers: { ns1.app.example.com: [192.0.2.1] }\n`, /^z\.yaml:\d+: soa: required$/],
    [BASE + 'groups:\n  americas: [boston]\n', /^z\.yaml:6: groups\.americas\[0\]: unknown site "boston"$/],
    [BASE + 'records:\n  www: { CNAME: a.example., A: 192.0.2.1 }\n', /^z\.yaml:6: records\.www: CNAME cannot stand beside other data/],
    [BASE + 'records:\n  mail: { A: [192.0.2.300] }\n', /^z\.yaml:6: records\.mail\.A\[0\]: "192\.0\.2\.300" is not an IPv4 address$/],
    [BASE + 'records:\n  ll: { AAAA: "fe80::1%eth0" }\n', /^z\.yaml:6: records\.ll\.AAAA: "fe80::1%eth0" is not an IPv6 address$/],
    [BASE + 'sites:\n  boston:\n    addresses: ["fe80::1%eth0"]\n', /^z\.yaml:7: sites\.boston\.addresses\[0\]: not an IPv4 or IPv6 address$/],
    [BASE + 'records:\n  x: { MX: "mail" }\n', /^z\.yaml:6: records\.x\.MX: "mail" is not "preference exchange"$/],
    [BASE + 'sites:\n  boston: { addresses: [203.0.113.1] }\nrecords:\n  boston: { A: 192.0.2.1 }\n', /sites\.boston: boston\.app\.example\.com is a site name and cannot also hold static/],
    [BASE + 'sites:\n  boston: { addresses: [203.0.113.1] }\npool: { name: "@", policy: offload }\n', /pool\.primary: policy offload needs a primary site/],
    [BASE + 'sites:\n  boston: { addresses: [203.0.113.1] }\npool: { name: "@", topology: { mars: [10.0.0.0/8] } }\n', /^z\.yaml:7: pool\.topology\.mars: unknown group "mars"$/],
    [BASE + 'records:\n  a: { A: 192.0.2.1 }\n  a: { A: 192.0.2.2 }\n', /^z\.yaml:7: \(yaml\): Map keys must be unique/],
    [BASE + 'records: [\n', /^z\.yaml:\d+: \(yaml\): /],
    ['', /^z\.yaml:1: \(root\): the file is empty$/],
    [BASE + 'records:\n  legacy: { NS: ns.legacy }\n  x.legacy: { TXT: "no" }\n', /records\["x\.legacy"\]: x\.legacy\.app\.example\.com is below the delegation/],
  ];
  for (const [text, expected] of cases) {
    const found = problems(text);
    t.ok(found.some((p) => expected.test(p)), `${expected}: got ${JSON.stringify(found)}`);
  }
});

t.test('a duration field takes the duration syntax: a YAML number needs a unit, except 0', async (t) => {
  const site = (probe: string) => BASE + `sites:\n  boston:\n    addresses: [203.0.113.1]\n    probe:\n${probe}`;
  t.same(
    problems(site('      http: "http://x/"\n      interval: 2000\n')),
    ['z.yaml:10: sites.boston.probe.interval: 2000 is not a duration: give it a unit (d, h, m, s, ms), e.g. 2000ms or 2000s'],
    'an unquoted YAML number: file:line: path: the message naming the units',
  );
  t.same(
    problems(site('      push_interval: 1.5\n')),
    ['z.yaml:9: sites.boston.probe.push_interval: 1.5 is not a duration: give it a unit (d, h, m, s, ms), e.g. 1.5ms or 1.5s'],
  );
  t.same(
    problems(site('      tcp: "192.0.2.9:80"\n      timeout: "500"\n')),
    ['z.yaml:10: sites.boston.probe.timeout: "500" is not a duration: give it a unit (d, h, m, s, ms), e.g. 500ms or 500s'],
    'a quoted number: the same message, quoted',
  );
  // 0 is zero in every unit: it reaches the field's own range.
  t.same(problems(site('      http: "http://x/"\n      interval: 0\n')), ['z.yaml:10: sites.boston.probe.interval: at least 100ms']);
  // A report schedule of 0 would reschedule the prober at once, forever: it has interval's range.
  t.same(problems(site('      push_interval: 0\n')), ['z.yaml:9: sites.boston.probe.push_interval: at least 100ms']);
  const loaded = parseZoneText(site('      push_interval: 250ms\n      http: "http://x/"\n      interval: 2s\n      timeout: 1m\n'), 'z.yaml');
  t.match('config' in loaded && loaded.config.sites?.boston.probe, { push_interval: 250, interval: 2000, timeout: 60_000 }, 'durations with units are milliseconds');
});

t.test('a second pool fits in one zone', async (t) => {
  const found = problems(BASE + `sites:
  web-boston: { addresses: [203.0.113.10] }
  web-geneva: { addresses: [198.51.100.30] }
  api-boston: { addresses: [203.0.113.11] }
groups:
  web-eu: [web-geneva, web-boston]
pools:
  - { name: "@", sites: [web-boston, web-geneva] }
  - { name: api, sites: [api-boston], policy: first }
`);
  t.same(found, []);
});

t.test('sitedns check: exit 1 with one line per problem; exit 0 on the sample', async (t) => {
  const dir = tempZonesDir({ 'bad.yaml': BASE + 'colour: blue\nsites:\n  x: { addresses: [nope] }\n', 'good.yaml': BASE.replace('app.example.com', 'other.example.com') });
  const bad = spawnSync(process.execPath, ['dist/cli/index.js', 'check', dir], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  const lines = bad.stderr.trim().split('\n');
  t.equal(lines.length, 2, bad.stderr);
  t.match(lines[0], /bad\.yaml:5: colour: unknown key/);
  t.match(lines[1], /bad\.yaml:7: sites\.x\.addresses\[0\]: not an IPv4 or IPv6 address/);
  const good = spawnSync(process.execPath, ['dist/cli/index.js', 'check', 'zones/'], { encoding: 'utf8' });
  t.equal(good.status, 0, good.stderr);
  t.match(good.stdout, /ok: zone app\.example\.com/);
});

t.test('sitedns check: every path given is checked, as one zone set', async (t) => {
  const dir = tempZonesDir({ 'a.yaml': BASE, 'b.yaml': BASE.replaceAll('app.example.com', 'b.example.com') + 'colour: blue\n', 'c.yaml': BASE.replaceAll('app.example.com', 'c.example.com') });
  const empty = tempZonesDir({});
  const both = spawnSync(process.execPath, ['dist/cli/index.js', 'check', join(dir, 'a.yaml'), join(dir, 'b.yaml')], { encoding: 'utf8' });
  t.equal(both.status, 1, 'the second file\'s problem fails the check');
  t.match(both.stderr, /b\.yaml:5: colour: unknown key/);
  const good = spawnSync(process.execPath, ['dist/cli/index.js', 'check', join(dir, 'a.yaml'), join(dir, 'c.yaml')], { encoding: 'utf8' });
  t.equal(good.status, 0, good.stderr);
  t.match(good.stdout, /a\.yaml: ok: zone app\.example\.com[\s\S]*c\.yaml: ok: zone c\.example\.com/, 'a summary line for each file');
  const twice = spawnSync(process.execPath, ['dist/cli/index.js', 'check', join(dir, 'a.yaml'), 'zones/'], { encoding: 'utf8' });
  t.equal(twice.status, 1, 'one zone set: app.example.com from two paths is defined twice');
  t.match(twice.stderr, /zone app\.example\.com is also defined in/);
  const none = spawnSync(process.execPath, ['dist/cli/index.js', 'check', join(dir, 'c.yaml'), empty], { encoding: 'utf8' });
  t.equal(none.status, 1, 'a path with no zone file fails the check');
  t.match(none.stderr, /: no zone files \(\*\.yaml\) found/);
});

t.test('sitedns check loads neither pino, ioredis, prom-client nor dns2', async (t) => {
  const script = `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
await import('./dist/cli/check.js');
console.log(JSON.stringify(Object.keys(require.cache)));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const loaded: string[] = JSON.parse(run.stdout);
  t.ok(loaded.some((path) => path.includes('ipaddr.js')), 'the packages check needs are seen');
  for (const unwanted of ['pino', 'ioredis', 'prom-client', 'dns2']) {
    t.notOk(loaded.some((path) => path.includes(`node_modules/${unwanted}/`)), `${unwanted} is not loaded`);
  }
});

t.test('sitedns check: problems reading a file come first, then compile problems, in file order', async (t) => {
  const dir = tempZonesDir({
    'a.yaml': BASE,
    'b.yaml': BASE,
    'c.yaml': BASE.replaceAll('app.example.com', 'c.example.com') + 'records:\n  www: { CNAME: "bad!" }\n',
    'd.yaml': BASE + 'colour: blue\n',
  });
  const run = spawnSync(process.execPath, ['dist/cli/index.js', 'check', dir], { encoding: 'utf8' });
  t.equal(run.status, 1);
  const lines = run.stderr.trim().split('\n');
  t.equal(lines.length, 3, run.stderr);
  t.match(lines[0], /d\.yaml:5: colour: unknown key$/);
  t.match(lines[1], /b\.yaml:1: zone: zone app\.example\.com is also defined in .*a\.yaml$/);
  t.match(lines[2], /c\.yaml:6: records\.www\.CNAME: "bad!" is not a domain name$/);
});
