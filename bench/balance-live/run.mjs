#!/usr/bin/env node
/**
 * Balance in a real closed loop: real HTTP backends whose load is their open sessions, a real
 * `sitedns serve` (dist/, the embedded prober reading `probe: { http, load }`), and clients that
 * resolve the Pool Name over UDP and then hold a session on the answered backend.
 * Method and figures: docs/balance.md ("Measured in a closed loop").
 */
import dgram from 'node:dgram';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { aRecords, dnsQuery, freePort, startProcess, writeSitednsZones, CLI } from '../qps/lib.mjs';
import { rng } from '../balance/sim.mjs';
import { SiteBackend } from './backend.mjs';

const HELP = `Usage: node bench/balance-live/run.mjs [options]   (needs npm run build first)

Runs every scenario at once, each with its own sitedns serve, backends and clients:
  least-busy        the default policy, load from the probes only
  load-per-answer   least-busy with load_per_answer: 1 (a session is one unit of load)
  round-robin       the baseline without load
  ramp              least-busy; one site is killed (its sessions cut) and restarted empty mid-run

Each site's backend answers GET /health with {"load": <open sessions>}, read by the site's
probe (probe: { http, load: load }, every --interval). Sessions arrive as a Poisson process
that puts the fleet at --utilization of its capacity; each resolves the Pool Name over UDP
(zero TTL, no cache) and holds an HTTP session on the answered backend for an exponential
time. The fleet starts at the ideal split. Sampled every second; the first --warmup seconds
are discarded.

Prints per scenario the busiest site's utilization over the balanced level at the same
instant (total sessions / total capacity): its peak, p90 and mean over the samples; and for
the ramp, the restarted site's new sessions per report interval against 2x its capacity share.

  --scenarios <list>      comma-separated, of the above (default: all four)
  --seconds <n>           measured seconds after the warm-up (default 40)
  --warmup <n>            seconds discarded first (default 5)
  --capacities <list>     concurrent sessions per site, ids a, b, c, ... (default 100,100,50)
  --utilization <x>       offered load over total capacity (default 0.8)
  --session <s>           mean session length in seconds (default 10)
  --interval <duration>   probe interval (default 1s)
  --restart <id>          ramp: the site killed and restarted (default: the last site)
  --down <s>              ramp: seconds the site stays down (default 4)
  --seed <n>              arrivals and session lengths (the same for every scenario; default 1)
  --udp-threads <n>       serve --udp-threads (default: serve's, one per core)
  --json <file>           also write the results as JSON
  --help                  this text`;

const { values: flags } = parseArgs({
  options: {
    scenarios: { type: 'string', default: 'least-busy,load-per-answer,round-robin,ramp' },
    seconds: { type: 'string', default: '40' },
    warmup: { type: 'string', default: '5' },
    capacities: { type: 'string', default: '100,100,50' },
    utilization: { type: 'string', default: '0.8' },
    session: { type: 'string', default: '10' },
    interval: { type: 'string', default: '1s' },
    restart: { type: 'string' },
    down: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
    'udp-threads': { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}

const SCENARIOS = {
  'least-busy': { policy: 'policy: least-busy' },
  'load-per-answer': { policy: 'policy: least-busy, load_per_answer: 1' },
  'round-robin': { policy: 'policy: round-robin' },
  ramp: { policy: 'policy: least-busy', restart: true },
};
const chosen = flags.scenarios.split(',').map((s) => s.trim());
for (const s of chosen) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s} (known: ${Object.keys(SCENARIOS).join(', ')})`);
const CAPACITIES = flags.capacities.split(',').map(Number);
const IDS = CAPACITIES.map((_, i) => String.fromCharCode(97 + i));
const TOTAL_CAPACITY = CAPACITIES.reduce((a, b) => a + b, 0);
const UTILIZATION = Number(flags.utilization);
const SESSION_S = Number(flags.session);
const WARMUP_S = Number(flags.warmup);
const SECONDS = Number(flags.seconds);
const RUN_S = WARMUP_S + SECONDS;
const RESTART = flags.restart ?? IDS[IDS.length - 1];
const DOWN_S = Number(flags.down);
const ARRIVALS_PER_S = (UTILIZATION * TOTAL_CAPACITY) / SESSION_S;
if (!IDS.includes(RESTART)) throw new Error(`--restart ${RESTART}: no such site (${IDS.join(', ')})`);

const children = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
process.on('SIGINT', () => process.exit(130));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One scenario: its backends (on 127.0.<n>.x), its sitedns serve, its clients, its samples. */
class Scenario {
  constructor(name, n) {
    this.name = name;
    this.n = n;
    this.zone = `live${n}.test`;
    this.spec = SCENARIOS[name];
    this.random = rng(Number(flags.seed));
    this.backends = [];
    this.byAddress = new Map();
    this.samples = []; // per second: open sessions per site
    this.answers = []; // per second: new sessions answered per site
    this.failed = 0;
    this.unanswered = 0;
    this.events = {};
  }

  async start() {
    for (let i = 0; i < IDS.length; i++) {
      const host = `127.0.${this.n}.${10 + i}`;
      const backend = new SiteBackend({ id: IDS[i], host, port: await freePort(host), capacity: CAPACITIES[i] });
      await backend.listen();
      this.backends.push(backend);
      this.byAddress.set(host, backend);
    }
    const probe = (b) => `{ http: "http://${b.host}:${b.port}/health", interval: ${flags.interval}, load: load }`;
    const dir = writeSitednsZones(`zone: ${this.zone}
soa: { mname: ns1.${this.zone}, rname: h.${this.zone} }
nameservers: { ns1.${this.zone}: [192.0.2.53] }
sites:
${this.backends.map((b) => `  ${b.id}: { addresses: [${b.host}], capacity: ${b.capacity}, probe: ${probe(b)} }`).join('\n')}
pool: { name: www, ${this.spec.policy} }
`, `${this.zone}.yaml`);
    const serve = await startProcess(process.execPath, [CLI, 'serve', '--zones', dir, '--listen', `127.0.${this.n}.1:0`, '--http', 'off', '--log-level', 'info', ...(flags['udp-threads'] ? ['--udp-threads', flags['udp-threads']] : [])], {
      label: `sitedns (${this.name})`,
      ready: (line) => line.includes('"msg":"listening on UDP and TCP"'),
      timeoutMs: 90_000, // four at once on a busy machine: UDP threads start slowly
    });
    children.push(serve.proc);
    this.serve = serve;
    this.dnsPort = JSON.parse(serve.line).port;
    this.socket = dgram.createSocket('udp4');
    await new Promise((r) => this.socket.bind(0, '127.0.0.1', r));
    this.pending = new Map();
    this.nextId = 1;
    this.socket.on('message', (msg) => {
      const done = this.pending.get(msg.readUInt16BE(0));
      if (done) done(aRecords(msg)[0]);
    });
  }

  resolve() {
    const id = this.nextId++ & 0xffff;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, 1000);
      this.pending.set(id, (address) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(address);
      });
      this.socket.send(dnsQuery(id, `www.${this.zone}`), this.dnsPort, `127.0.${this.n}.1`);
    });
  }

  /** One session held on `backend` for `ms`; resolves when it ends (or fails to start). */
  hold(backend, ms) {
    return new Promise((resolve) => {
      const req = http.get({ host: backend.host, port: backend.port, path: `/session?ms=${Math.round(ms)}`, agent: false }, (res) => {
        res.resume();
        res.on('error', () => {});
        res.once('close', resolve);
      });
      req.once('error', () => {
        this.failed++;
        resolve();
      });
    });
  }

  /** Fills every site to its share of the offered load, as if the run had been going on. */
  prefill() {
    for (const b of this.backends) {
      const n = Math.round(b.capacity * UTILIZATION);
      for (let k = 0; k < n; k++) this.hold(b, -Math.log(1 - this.random()) * SESSION_S * 1000);
    }
  }

  /** Poisson arrivals until `endAt`; each resolves the Pool Name, then holds a session. */
  async arrive(startedAt, endAt) {
    let next = startedAt;
    for (;;) {
      next += -Math.log(1 - this.random()) * (1000 / ARRIVALS_PER_S);
      const ms = -Math.log(1 - this.random()) * SESSION_S * 1000;
      if (next >= endAt) break;
      const wait = next - performance.now();
      if (wait > 1) await sleep(wait);
      this.resolve().then((address) => {
          const backend = address && this.byAddress.get(address);
          if (!backend) {
            this.unanswered++;
            return;
          }
          const second = Math.floor((performance.now() - startedAt) / 1000);
          (this.answers[second] ??= IDS.map(() => 0))[this.backends.indexOf(backend)]++;
          return this.hold(backend, ms);
        });
    }
  }

  /** The ramp: the site is killed `atS` into the run, and restarted empty DOWN_S later. */
  async restart(startedAt, atS) {
    const backend = this.backends[IDS.indexOf(RESTART)];
    await sleep(startedAt + atS * 1000 - performance.now());
    this.events.killedAtS = (performance.now() - startedAt) / 1000;
    await backend.kill();
    await sleep(DOWN_S * 1000);
    await backend.listen();
    this.events.restartedAtS = (performance.now() - startedAt) / 1000;
  }

  sample() {
    this.samples.push(this.backends.map((b) => b.open));
  }

  async stop() {
    this.socket.close();
    await this.serve.stop();
    for (const b of this.backends) if (b.server) await b.kill();
  }
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** Busiest site over the balanced level, per sample after the warm-up (sites listening only). */
function balance(scenario) {
  const ratios = [];
  let imbalanceSq = 0;
  let count = 0;
  const skip = new Set();
  if (scenario.spec.restart) {
    // Balance is not the question while a site is down and refilling: keep the samples before
    // the kill, and those after the restarted site is back within 5 % of the balanced level.
    const i = IDS.indexOf(RESTART);
    let back = false;
    for (let s = 0; s < scenario.samples.length; s++) {
      const open = scenario.samples[s];
      const ideal = open.reduce((a, x) => a + x, 0) / TOTAL_CAPACITY;
      if (s >= Math.floor(scenario.events.killedAtS) && !back) {
        skip.add(s);
        back = s > scenario.events.restartedAtS && open[i] / CAPACITIES[i] >= ideal - 0.05;
      }
    }
  }
  for (let s = WARMUP_S; s < scenario.samples.length; s++) {
    if (skip.has(s)) continue;
    const open = scenario.samples[s];
    const ideal = open.reduce((a, x) => a + x, 0) / TOTAL_CAPACITY;
    const u = open.map((x, i) => x / CAPACITIES[i]);
    ratios.push(Math.max(...u) / ideal);
    for (const x of u) imbalanceSq += (x - ideal) ** 2;
    count += u.length;
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  return {
    samples: ratios.length,
    peak: sorted[sorted.length - 1],
    p90: quantile(sorted, 0.9),
    mean: ratios.reduce((a, b) => a + b, 0) / ratios.length,
    imbalancePts: Math.sqrt(imbalanceSq / count) * 100,
  };
}

/** The restarted site's new sessions per report interval, from its kill on, against its bound. */
function ramp(scenario) {
  const i = IDS.indexOf(RESTART);
  const share = CAPACITIES[i] / TOTAL_CAPACITY;
  const rows = [];
  for (let s = Math.floor(scenario.events.killedAtS); s < scenario.answers.length && s < Math.ceil(scenario.events.restartedAtS) + 12; s++) {
    const got = scenario.answers[s] ?? IDS.map(() => 0);
    const total = got.reduce((a, b) => a + b, 0);
    const open = scenario.samples[s] ?? [];
    const ideal = open.reduce((a, x) => a + x, 0) / TOTAL_CAPACITY;
    rows.push({ second: s, answered: got[i], total, share: total ? got[i] / total : 0, bound: 2 * share, utilization: (open[i] ?? 0) / CAPACITIES[i], balanced: ideal });
  }
  const after = rows.filter((r) => r.second >= Math.ceil(scenario.events.restartedAtS));
  const answered = after.reduce((a, r) => a + r.answered, 0);
  const total = after.reduce((a, r) => a + r.total, 0);
  return { site: RESTART, share, bound: 2 * share, killedAtS: scenario.events.killedAtS, restartedAtS: scenario.events.restartedAtS, rows, shareAfterRestart: total ? answered / total : 0, worstIntervalShare: Math.max(0, ...after.map((r) => r.share)) };
}

const load0 = loadavg()[0];
const scenarios = chosen.map((name, k) => new Scenario(name, k + 1));
await Promise.all(scenarios.map((s) => s.start()));
// One probe round with the prefilled loads before any answer counts.
for (const s of scenarios) s.prefill();
await sleep(1500);
const startedAt = performance.now();
const endAt = startedAt + RUN_S * 1000;
// A busy machine shows as a late sampler (this process starved) or as sites the probes saw
// go down that never went (timeouts): both are reported, since either spoils the figures.
let maxLagMs = 0;
let lastTick = performance.now();
scenarios.forEach((s) => s.sample());
const sampler = setInterval(() => {
  const now = performance.now();
  maxLagMs = Math.max(maxLagMs, now - lastTick - 1000);
  lastTick = now;
  scenarios.forEach((s) => s.sample());
}, 1000);
const work = scenarios.map((s) => s.arrive(startedAt, endAt));
for (const s of scenarios) if (s.spec.restart) work.push(s.restart(startedAt, WARMUP_S + SECONDS / 3));
await Promise.all(work);
clearInterval(sampler);

const results = scenarios.map((s) => ({
  scenario: s.name,
  policy: s.spec.policy,
  ...balance(s),
  answered: s.answers.flat().reduce((a, b) => a + (b ?? 0), 0),
  siteDowns: s.serve.lines.filter((l) => l.includes('"to":"down"')).length,
  unanswered: s.unanswered,
  failedSessions: s.failed,
  ...(s.spec.restart ? { ramp: ramp(s) } : {}),
}));
await Promise.all(scenarios.map((s) => s.stop()));

const f = (x, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '-');
console.log(`capacities ${CAPACITIES.join('/')}, ${f(UTILIZATION * 100, 0)} % offered (${f(ARRIVALS_PER_S, 1)} sessions/s, mean ${SESSION_S} s), probe every ${flags.interval}, ${SECONDS} s measured after ${WARMUP_S} s; load average ${f(load0, 2)} -> ${f(loadavg()[0], 2)}; sampler late by ${f(maxLagMs, 0)} ms at most\n`);
if (maxLagMs > 250) console.log(`WARNING: this process was starved for ${f(maxLagMs, 0)} ms: the machine is too busy for these figures\n`);
console.log('| scenario | policy | peak / balanced | p90 / balanced | mean / balanced | imbalance RMS (pts) | samples | sessions | failed | sites seen down |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) console.log(`| ${r.scenario} | \`${r.policy.replace('policy: ', '')}\` | ${f(r.peak)} | ${f(r.p90)} | ${f(r.mean)} | ${f(r.imbalancePts, 1)} | ${r.samples} | ${r.answered} | ${r.failedSessions} | ${r.siteDowns} |`);
for (const r of results.filter((x) => x.ramp)) {
  const m = r.ramp;
  console.log(`\nramp: site ${m.site} killed at ${f(m.killedAtS, 1)} s, restarted empty at ${f(m.restartedAtS, 1)} s; capacity share ${f(m.share, 2)}, bound ${f(m.bound, 2)} of each interval's answers`);
  console.log('| second | answers to it | all answers | its share | bound | its utilization | balanced level |');
  console.log('|---|---|---|---|---|---|---|');
  for (const row of m.rows) console.log(`| ${row.second} | ${row.answered} | ${row.total} | ${f(row.share, 2)} | ${f(row.bound, 2)} | ${f(row.utilization, 2)} | ${f(row.balanced, 2)} |`);
  console.log(`share after the restart: ${f(m.shareAfterRestart, 3)}; worst interval ${f(m.worstIntervalShare, 2)}`);
}
if (flags.json) writeFileSync(flags.json, JSON.stringify({ settings: { capacities: CAPACITIES, utilization: UTILIZATION, sessionS: SESSION_S, interval: flags.interval, seconds: SECONDS, warmupS: WARMUP_S, seed: Number(flags.seed), udpThreads: flags['udp-threads'] ?? 'auto' }, loadavg: [load0, loadavg()[0]], maxLagMs, results }, null, 2));
process.exit(0);
