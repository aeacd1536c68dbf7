#!/usr/bin/env node
/**
 * Balance-quality benchmark: `npm run bench:balance` (= tsc, then this file).
 *
 * Three sites of 1000/1000/500 concurrent sessions, Poisson arrivals at 70 % of the total,
 * exponential sessions (mean 30 s), loads reported every 1 s and arriving 2 s late, zero TTL,
 * resolvers that cache nothing: every session is one fresh DNS decision. The sitedns policies are
 * the real compiled ones (dist/policy), called through the same entry point as the handler
 * (selectAnswer) with the real snapshot type, injected clock, random source and PolicyMemory.
 *
 * Flags: --seconds N (default 3600) --seeds N (default 5) --out docs/balance.png
 * Prints a Markdown table (docs/balance.md) and writes the plot of site load over time.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { compileZoneFiles } from '../../dist/config/compile.js';
import { parseZoneText } from '../../dist/config/load.js';
import { PolicyMemory } from '../../dist/policy/memory.js';
import { selectAnswer } from '../../dist/policy/select.js';
import { makeSnapshot } from '../../dist/state/snapshot.js';
import { renderPlot } from './plot.mjs';
import { simulate } from './sim.mjs';

const { values: flags } = parseArgs({
  options: { seconds: { type: 'string', default: '3600' }, seeds: { type: 'string', default: '5' }, out: { type: 'string', default: 'docs/balance.png' } },
});
const SECONDS = Number(flags.seconds);
const SEEDS = Number(flags.seeds);
const CAPACITIES = [1000, 1000, 500];
const IDS = ['a', 'b', 'c'];
const EPOCH = 1_700_000_000_000;

/** A compiled pool with the three sites and the given pool settings. */
function poolName(settings) {
  const text = `zone: sim.test
soa: { mname: ns1.sim.test, rname: h.sim.test }
nameservers: { ns1.sim.test: [192.0.2.53] }
sites:
${IDS.map((id, i) => `  ${id}: { addresses: [192.0.2.${10 + i}], capacity: ${CAPACITIES[i]} }`).join('\n')}
pool: { name: "@", ${settings} }
`;
  const loaded = parseZoneText(text, 'sim.yaml');
  if ('problems' in loaded) throw new Error(JSON.stringify(loaded.problems));
  const { zones, problems } = compileZoneFiles([loaded]);
  if (problems.length) throw new Error(JSON.stringify(problems));
  return zones[0].dynamicNames.find((d) => d.kind === 'pool');
}

/** A sitedns policy as the simulation's chooser: reports become snapshots, answers site indexes. */
function sitedns(settings) {
  return () => {
    const name = poolName(settings);
    const memory = new PolicyMemory();
    const client = { address: '192.0.2.1', ecs: null };
    let snapshot = makeSnapshot(new Map(), true, EPOCH);
    let seen = null;
    return (nowS, report, random) => {
      if (report !== seen && report !== null) {
        seen = report;
        const at = EPOCH + report.measuredAtS * 1000;
        const sites = new Map(IDS.map((id, i) => [`sim.test/${id}`, { up: true, load: report.loads[i], utilization: report.loads[i] / CAPACITIES[i], loadAt: at, checkedAt: at }]));
        snapshot = makeSnapshot(sites, true, EPOCH + nowS * 1000);
      }
      const env = { now: () => EPOCH + nowS * 1000, random, memory, evenDraws: true }; // as the answering handler draws
      const selection = selectAnswer(name, 4, snapshot, client, env);
      return IDS.indexOf(selection.sites[0].id);
    };
  };
}

/** The textbook policies the issue compares against (not sitedns code). */
const argmin = () => (_now, report, random) => {
  let best = 0;
  let ties = 1;
  for (let i = 1; i < CAPACITIES.length; i++) {
    const u = (report?.loads[i] ?? 0) / CAPACITIES[i];
    const b = (report?.loads[best] ?? 0) / CAPACITIES[best];
    if (u < b) [best, ties] = [i, 1];
    else if (u === b && random() * ++ties < 1) best = i;
  }
  return best;
};
const spare = () => (_now, report, random) => {
  const w = CAPACITIES.map((c, i) => Math.max(0, c - (report?.loads[i] ?? 0)));
  let x = random() * w.reduce((a, b) => a + b, 0);
  for (let i = 0; i < w.length; i++) if ((x -= w[i]) < 0) return i;
  return w.length - 1;
};

/** The floor: the true current loads, which no DNS server has. Total load still fluctuates. */
const oracle = () => (_now, _report, random, current) => {
  let best = 0;
  for (let i = 1; i < CAPACITIES.length; i++) {
    const d = current[i] / CAPACITIES[i] - current[best] / CAPACITIES[best];
    if (d < 0 || (d === 0 && random() < 0.5)) best = i;
  }
  return best;
};

const POLICIES = [
  { label: 'round-robin (sitedns `round-robin`)', key: 'round-robin', make: sitedns('policy: round-robin') },
  { label: 'weighted by capacity (sitedns `weighted`)', key: 'weighted', make: sitedns('policy: weighted') },
  { label: 'plain argmin (pick the least utilized)', key: 'argmin', make: argmin },
  { label: 'weight by spare capacity (cap - load)', key: 'spare', make: spare },
  { label: 'sitedns `least-busy` (reports only)', key: 'least-busy', make: sitedns('policy: least-busy') },
  { label: 'sitedns `least-busy`, `load_per_answer: 1`', key: 'least-busy+count', make: sitedns('policy: least-busy, load_per_answer: 1') },
  { label: 'oracle: argmin of the true current loads (impossible; the floor)', key: 'oracle', make: oracle, noPlot: true },
];

const fmt = (x, d = 3) => x.toFixed(d);
const rows = [];
const plotSeries = [];
const started = Date.now();
for (const policy of POLICIES) {
  const runs = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    runs.push(simulate({ capacities: CAPACITIES, seconds: SECONDS, seed, choose: policy.make() }));
  }
  const mean = (k) => runs.reduce((a, r) => a + r[k], 0) / runs.length;
  const max = (k) => Math.max(...runs.map((r) => r[k]));
  rows.push([
    policy.label,
    `${fmt(mean('peak'))} (${fmt(max('peak'))})`,
    fmt(mean('p99')),
    `${fmt(mean('peakInstant'))} (${fmt(max('peakInstant'))})`,
    fmt(mean('p99Instant')),
    fmt(mean('imbalance') * 100, 1),
    fmt(mean('swing') * 100, 2),
  ]);
  if (!policy.noPlot) plotSeries.push({ label: policy.label, samples: runs[0].samples.slice(0, 300) });
  process.stderr.write(`${policy.key}: done\n`);
}

const header = ['policy', 'peak / 70 % (worst seed)', 'p99 / 70 %', 'peak / balanced level (worst)', 'p99 / balanced', 'imbalance RMS (pts)', 'swing (pts/s)'];
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
console.log(`\n${SEEDS} seeds x ${SECONDS} s (first 300 s of each discarded); means over seeds, worst seed in parentheses; ${((Date.now() - started) / 1000).toFixed(1)} s wall.`);

writeFileSync(flags.out, renderPlot(plotSeries, { capacities: CAPACITIES, ids: ['site a (1000)', 'site b (1000)', 'site c (500)'], nominal: 0.7 }));
console.log(`plot: ${flags.out} (seed 1, 300 s after warm-up)`);
