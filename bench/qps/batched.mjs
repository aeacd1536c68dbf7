#!/usr/bin/env node
/**
 * bench/qps/batched.mjs: UDP QPS of sitedns on both of the main thread's UDP paths
 * (`serve --udp-threads 0`: node:dgram and the batched recvmmsg/sendmmsg addon) and of gdnsd
 * with one UDP thread, side by side in one run, per name kind. The servers
 * are measured alternately for each kind on the same machine, so a busy neighbour hurts all
 * three alike; the ratio column is batched/gdnsd.
 *
 *   node bench/qps/batched.mjs [--seconds 6] [--clients 4] [--kinds pool,site,static,nxdomain]
 *                              [--rounds 1] [--cpu-rate 10000] [--json out.json]
 *
 * --cpu-rate R adds a second, machine-load-robust figure: each server answers dnsperf at a
 * fixed R queries/s and we read its CPU time (utime+stime of /proc/<pid>/stat, all threads)
 * before and after: CPU microseconds per answered query. On a shared, busy machine QPS swings
 * with the neighbours; CPU per query mostly does not.
 *
 * Needs dnsperf; gdnsd is measured when installed (apt-get install -y gdnsd dnsperf). Run
 * `npm run build` first (it serves dist/). Loopback only, random ports.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, loadavg, cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KINDS as QPS_KINDS, ZONE, gdnsdConfig as gdnsdConfigText, gdnsdZone as gdnsdZoneText, sitednsZone as sitednsZoneText } from './zones.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(root, 'dist/cli/index.js');
const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    clients: { type: 'string', default: '4' },
    kinds: { type: 'string', default: 'pool,site,static,nxdomain' },
    rounds: { type: 'string', default: '1' },
    json: { type: 'string' },
    'cpu-rate': { type: 'string' },
  },
});

// The same zones as bench/qps/run.mjs (one definition, bench/qps/zones.mjs).
const KINDS = Object.fromEntries(QPS_KINDS.map((k) => [k.kind, k]));
const sitednsZone = sitednsZoneText();
const gdnsdZone = gdnsdZoneText();
const gdnsdConfig = (port, dir) => gdnsdConfigText(port, 1, `${dir}/run`, `${dir}/state`);

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free port for UDP and TCP alike (bind TCP 0, release; small race accepted in a bench). */
async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** Starts a process and waits until a DNS query gets an answer on port. */
async function startServer(label, cmd, args, env, port) {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`${label} exited ${proc.exitCode}:\n${log}`);
    const dig = spawnSync('dig', ['+short', '+tries=1', '+time=1', '-p', String(port), '@127.0.0.1', KINDS.static.name, 'A']);
    if (dig.status === 0 && dig.stdout.toString().trim() !== '') return { proc, log: () => log };
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`${label} did not answer on port ${port}:\n${log}`);
}

async function stop(server) {
  if (server.proc.exitCode !== null) return;
  server.proc.kill('SIGTERM');
  await Promise.race([new Promise((r) => server.proc.once('exit', r)), sleep(3000).then(() => server.proc.kill('SIGKILL'))]);
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || '100');

/** /proc/<pid>/stat fields from the third (state) on, or null when the process is gone. */
function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** CPU seconds (user + system, all threads) used so far by the process and its live children. */
function cpuSeconds(pid) {
  const pids = [pid];
  for (const entry of readdirSync('/proc')) {
    if (/^\d+$/.test(entry) && Number(entry) !== pid && Number(statFields(entry)?.[1]) === pid) pids.push(Number(entry));
  }
  let ticks = 0;
  for (const p of pids) {
    const f = statFields(p);
    if (f) ticks += Number(f[11]) + Number(f[12]); // utime is field 14, stime field 15
  }
  return ticks / CLK_TCK;
}

function dnsperf(port, kind, dir, rate) {
  const file = path.join(dir, `${kind}.txt`);
  writeFileSync(file, `${KINDS[kind].name} ${KINDS[kind].type}\n`);
  const rateArgs = rate ? ['-Q', String(rate)] : [];
  const r = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-c', opts.clients, '-l', opts.seconds, '-q', '500', ...rateArgs], { encoding: 'utf8' });
  const num = (re) => Number(re.exec(r.stdout)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lostPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
  };
}

async function main() {
  if (!have('dnsperf')) throw new Error('dnsperf is not installed (apt-get install -y dnsperf)');
  const dir = mkdtempSync(path.join(tmpdir(), 'sitedns-bench-batched-'));
  mkdirSync(path.join(dir, 'zones'));
  writeFileSync(path.join(dir, 'zones', `${ZONE}.yaml`), sitednsZone);
  // UDP on the main thread's event loop (`serve` itself defaults to one UDP thread per core).
  const mainThreadArgs = ['--udp-threads', '0', '--http', 'off'];

  const servers = [
    { label: 'sitedns dgram', start: (port) => startServer('sitedns dgram', process.execPath, [CLI, 'serve', '--zones', path.join(dir, 'zones'), '--listen', `127.0.0.1:${port}`, '--log-level', 'warn', ...mainThreadArgs], { SITEDNS_UDP_PATH: 'dgram' }, port) },
    { label: 'sitedns batched', start: (port) => startServer('sitedns batched', process.execPath, [CLI, 'serve', '--zones', path.join(dir, 'zones'), '--listen', `127.0.0.1:${port}`, '--log-level', 'warn', ...mainThreadArgs], { SITEDNS_UDP_PATH: 'batched' }, port) },
  ];
  if (have('gdnsd')) {
    servers.push({
      label: 'gdnsd',
      start: (port) => {
        const g = path.join(dir, `gdnsd-${port}`);
        mkdirSync(path.join(g, 'zones'), { recursive: true });
        mkdirSync(path.join(g, 'run'), { recursive: true });
        mkdirSync(path.join(g, 'state'), { recursive: true });
        writeFileSync(path.join(g, 'config'), gdnsdConfig(port, g));
        writeFileSync(path.join(g, 'zones', ZONE), gdnsdZone);
        return startServer('gdnsd', 'gdnsd', ['-c', g, 'start'], {}, port);
      },
    });
  } else {
    console.error('gdnsd is not installed: measuring sitedns only (apt-get install -y gdnsd)');
  }
  const version = have('gdnsd') ? `gdnsd ${spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'gdnsd'], { encoding: 'utf8' }).stdout || '?'}` : '';

  const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
  const loadBefore = load();
  const kinds = opts.kinds.split(',');
  const results = {}; // kind -> label -> [qps per round]
  for (let round = 0; round < Number(opts.rounds); round++) {
    for (const kind of kinds) {
      if (!(kind in KINDS)) throw new Error(`unknown kind ${kind}`);
      for (const s of servers) {
        const port = await freePort();
        const server = await s.start(port);
        try {
          const r = dnsperf(port, kind, dir);
          if (opts['cpu-rate']) {
            const before = cpuSeconds(server.proc.pid);
            const fixed = dnsperf(port, kind, dir, Number(opts['cpu-rate']));
            r.cpuUsPerQuery = ((cpuSeconds(server.proc.pid) - before) * 1e6) / fixed.completed;
          }
          ((results[kind] ??= {})[s.label] ??= []).push(r);
          const cpu = r.cpuUsPerQuery === undefined ? '' : `  ${r.cpuUsPerQuery.toFixed(1)} CPU us/query at ${opts['cpu-rate']}/s`;
          console.error(`round ${round + 1} ${kind.padEnd(8)} ${s.label.padEnd(16)} ${r.qps.toFixed(0).padStart(7)} QPS  lost ${r.lostPct}%  avg ${r.avgMs.toFixed(3)} ms${cpu}`);
        } finally {
          await stop(server);
        }
      }
    }
  }
  const loadAfter = load();
  rmSync(dir, { recursive: true, force: true });

  const best = (rs) => (rs ? Math.max(...rs.map((r) => r.qps)) : NaN);
  const fmt = (n) => (Number.isFinite(n) ? n.toFixed(0) : '-');
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '-');
  console.log(`\nUDP QPS (best of ${opts.rounds} round(s)), dnsperf -c ${opts.clients} -l ${opts.seconds}, sitedns --udp-threads 0, gdnsd 1 UDP thread, ${cpus().length} CPUs`);
  console.log(`load average before: ${loadBefore}; after: ${loadAfter}${version ? `; ${version}` : ''}`);
  console.log('| kind | sitedns dgram | sitedns batched | gdnsd | batched/dgram | batched/gdnsd |');
  console.log('|---|---|---|---|---|---|');
  for (const kind of kinds) {
    const r = results[kind];
    const d = best(r['sitedns dgram']);
    const b = best(r['sitedns batched']);
    const g = best(r.gdnsd);
    console.log(`| ${kind} | ${fmt(d)} | ${fmt(b)} | ${fmt(g)} | ${ratio(b, d)} | ${ratio(b, g)} |`);
  }
  if (opts['cpu-rate']) {
    const cpu = (rs) => (rs ? Math.min(...rs.map((r) => r.cpuUsPerQuery)) : NaN);
    const f1 = (n) => (Number.isFinite(n) ? n.toFixed(1) : '-');
    console.log(`\nCPU microseconds per answered query at a fixed ${opts['cpu-rate']} queries/s (best of ${opts.rounds}; lower is better)`);
    console.log('| kind | sitedns dgram | sitedns batched | gdnsd | gdnsd/batched (CPU-efficiency ratio) |');
    console.log('|---|---|---|---|---|');
    for (const kind of kinds) {
      const r = results[kind];
      const d = cpu(r['sitedns dgram']);
      const b = cpu(r['sitedns batched']);
      const g = cpu(r.gdnsd);
      console.log(`| ${kind} | ${f1(d)} | ${f1(b)} | ${f1(g)} | ${ratio(g, b)} |`);
    }
  }
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ opts, loadBefore, loadAfter, results }, null, 2));
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
