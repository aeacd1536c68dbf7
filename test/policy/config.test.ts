/** The policy keys of a pool: compiled values and validation problems (file:line: path: message). */
import t from 'tap';
import { compileZoneFiles } from '../../src/config/compile.js';
import { formatProblem } from '../../src/config/errors.js';
import { parseZoneText } from '../../src/config/load.js';
import { nameOf, zoneOf } from '../helpers/policy.js';

const BASE = `zone: t.test
soa: { mname: ns1.t.test, rname: h.t.test }
nameservers: { ns1.t.test: [192.0.2.53] }
sites:
  a: { addresses: [192.0.2.10], threshold: 0.75, cost: 2, probe: { push_interval: 4s } }
  b: { addresses: [192.0.2.20] }
  c: { addresses: [192.0.2.30] }
groups:
  g: [a, b]
`;

function problems(text: string): string[] {
  const loaded = parseZoneText(text, 'z.yaml');
  if ('problems' in loaded) return loaded.problems.map(formatProblem);
  return compileZoneFiles([loaded]).problems.map(formatProblem);
}

t.test('compiled policy settings', async (t) => {
  const zone = zoneOf(BASE.split('\n').slice(3).join('\n') + `pool:
  name: "@"
  policy: offload
  primary: b
  offload: [c, a]
  thresholds: { offload: 0.6 }
  offload_choice: client
  sorry: [192.0.2.250, "2001:db8::250"]
  load_per_answer: 0.5
`);
  const pool = nameOf(zone, '@').pool!;
  t.same(pool.thresholds, { offload: 0.6, throttle: 0.9, drop: 0.97 }, 'defaults fill the rest');
  t.same([pool.primary?.id, pool.offload.map((s) => s.id), pool.offloadChoice, pool.sorry4.length, pool.sorry6.length, pool.loadPerAnswer], ['b', ['c', 'a'], 'client', 1, 1, 0.5]);
  const a = zone.sites.find((s) => s.id === 'a')!;
  const b = zone.sites.find((s) => s.id === 'b')!;
  t.same([a.threshold, a.cost, a.loadStaleMs, b.threshold, b.cost, b.loadStaleMs], [0.75, 2, 12_000, 0.8, 0, 5000], 'site threshold, cost, staleness (3 push intervals, at least 5 s)');
  const h = zoneOf(BASE.split('\n').slice(3).join('\n') + `pool: { name: "@", hysteresis: {} }\n`);
  t.same(nameOf(h, '@').pool!.hysteresis, { stayBelow: 0.5, differential: 0.2 }, 'seed 002 defaults: 50 % and 20 points');
});

t.test('policy problems', async (t) => {
  const cases: [string, RegExp][] = [
    ['pool: { name: "@", policy: offload, primary: a, offload: [b], thresholds: { offload: 0.9, throttle: 0.8 } }\n', /pool\.thresholds: thresholds must rise: offload < throttle < drop$/],
    ['pool: { name: "@", policy: offload, offload: [b] }\n', /pool\.primary: policy offload needs a primary site$/],
    ['pool: { name: "@", policy: offload, primary: a }\n', /pool\.offload: policy offload needs offload sites$/],
    ['pool: { name: "@", policy: offload, primary: a, offload: [a, b] }\n', /pool\.offload: the primary "a" cannot also be an offload site$/],
    ['pool: { name: "@", policy: offload, primary: a, offload: [b, b] }\n', /pool\.offload: a site appears twice in offload$/],
    ['pool: { name: "@", policy: offload, primary: a, offload: [x] }\n', /pool\.offload\[0\]: unknown site "x"$/],
    ['pool: { name: "@", policy: least-busy, primary: a }\n', /pool\.policy: primary, offload and thresholds apply to policy offload only$/],
    ['pool: { name: "@", offload_choice: cost }\n', /pool\.offload_choice: offload_choice applies to policy offload only$/],
    ['pool: { name: "@", primary_keeps: 0.1 }\n', /pool\.primary_keeps: primary_keeps applies to policy offload only$/],
    ['pool: { name: "@", policy: offload, primary: a, offload: [b], primary_keeps: 0.6 }\n', /pool\.primary_keeps: /],
    ['pool: { name: "@", policy: offload, primary: a, offload: [b], offload_choice: price }\n', /pool\.offload_choice: /],
    ['pool: { name: "@", policy: round-robin, load_per_answer: 1 }\n', /pool\.load_per_answer: load_per_answer applies to policies least-busy and offload only$/],
    ['pool: { name: "@", policy: fastest }\n', /pool\.policy: /],
    ['pool: { name: "@", all_down: sorry }\n', /pool\.all_down: all_down: sorry needs a sorry address$/],
    ['pool: { name: "@", hysteresis: { differential: 0 } }\n', /pool\.hysteresis\.differential: /],
    ['pool: { name: "@", topology: { g: [10.0.0.0/33] } }\n', /pool\.topology\.g\[0\]: "10\.0\.0\.0\/33" is not a network/],
    ['pool: { name: "@", topology: { nowhere: [10.0.0.0/8] } }\n', /pool\.topology\.nowhere: unknown group "nowhere"$/],
    ['pool: { name: "@", topology: { default: [g] } }\n', /pool\.topology\.default: default names one group$/],
  ];
  for (const [pool, expected] of cases) {
    const found = problems(BASE + pool);
    t.ok(found.some((p) => /^z\.yaml:\d+: /.test(p) && expected.test(p)), `${pool.trim()} -> ${expected}`, { found });
  }
});
