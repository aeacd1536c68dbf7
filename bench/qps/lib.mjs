/**
 * Shared pieces of the benches: machine facts, starting sitedns and gdnsd on free loopback
 * ports, running dnsperf and parsing its report.
 */
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gdnsdConfig, gdnsdZone, ZONE } from './zones.mjs';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/index.js');

export function have(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Installs missing Debian packages (the bench's own needs: gdnsd, dnsperf) when allowed. */
export function ensurePackages(packages, allowInstall) {
  const missing = packages.filter((p) => !have(p));
  if (missing.length === 0 || !allowInstall) return missing;
  if (process.getuid?.() !== 0) return missing;
  console.error(`installing ${missing.join(' ')} from Debian ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  }
  return packages.filter((p) => !have(p));
}

export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const version = (cmd, args, re) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return re.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'absent';
  };
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: model,
    node: process.version,
    dnsperf: version('dnsperf', ['-h'], /Version (\S+)/),
    gdnsd: version('gdnsd', ['-h'], /gdnsd version (\S+)/),
    kernel: os.release(),
  };
}

/** `uptime`'s load averages, recorded next to each figure (the machine may be shared). */
export function load() {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

export async function freePort(host = '127.0.0.1') {
  for (let i = 0; i < 50; i++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: host, port: 0, exclusive: true }, () => resolve(udp.address().port));
    });
    const tcp = net.createServer();
    const ok = await new Promise((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen({ host, port }, () => resolve(true));
    });
    await new Promise((r) => udp.close(r));
    if (ok) {
      await new Promise((r) => tcp.close(r));
      return port;
    }
  }
  throw new Error('no free port');
}

/**
 * Starts a process and resolves once a line of its output matches; rejects if it exits.
 * `lines` keeps its output lines (the first `maxLines`), also after it is ready.
 */
export function startProcess(command, args, { env = {}, ready, timeoutMs = 60_000, label = command, maxLines = 5000 }) {
  const proc = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  return new Promise((resolve, reject) => {
    let buffered = '';
    let done = false;
    const timer = setTimeout(() => fail(new Error(`${label} not ready after ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`)), timeoutMs);
    const fail = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(error);
    };
    const onData = (chunk) => {
      buffered += chunk.toString();
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (lines.length < maxLines) lines.push(line);
        if (!done && ready(line)) {
          done = true;
          clearTimeout(timer);
          resolve({
            proc,
            lines,
            line,
            stop: () =>
              new Promise((r) => {
                if (proc.exitCode !== null || proc.signalCode !== null) return r();
                proc.once('exit', () => r());
                proc.kill('SIGTERM');
                setTimeout(() => proc.kill('SIGKILL'), 8000).unref();
              }),
          });
        }
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code, signal) => fail(new Error(`${label} exited (${code ?? signal}):\n${lines.slice(-20).join('\n')}`)));
  });
}

/** sitedns serving `zonesDir` with N workers on the given UDP path; resolves with its port. */
export async function startSitedns({ zonesDir, workers, udpPath = 'dgram', extraArgs = [], env = {} }) {
  const started = await startProcess(process.execPath, [CLI, 'serve', '--zones', zonesDir, '--listen', '127.0.0.1:0', '--workers', String(workers), '--udp-path', udpPath, '--log-level', 'info', '--http', 'off', ...extraArgs], {
    env: { SITEDNS_WORKERS: String(workers), ...env },
    label: `sitedns (${workers} workers, ${udpPath})`,
    ready: (line) => line.includes('"msg":"listening on UDP and TCP"'),
  });
  const info = JSON.parse(started.line);
  const used = started.lines.map((l) => /"udpPath":"(\w+)"/.exec(l)?.[1]).find(Boolean) ?? udpPath;
  return { ...started, port: info.port, udpPathUsed: used, name: `sitedns` };
}

export function writeSitednsZones(text, file = `${ZONE}.yaml`) {
  const dir = mkdtempSync(join(tmpdir(), 'sitedns-bench-'));
  writeFileSync(join(dir, file), text);
  return dir;
}

export async function startGdnsd({ threads }) {
  const dir = mkdtempSync(join(tmpdir(), 'gdnsd-bench-'));
  mkdirSync(join(dir, 'zones'));
  mkdirSync(join(dir, 'run'));
  mkdirSync(join(dir, 'state'));
  const port = await freePort();
  writeFileSync(join(dir, 'config'), gdnsdConfig(port, threads, join(dir, 'run'), join(dir, 'state')));
  writeFileSync(join(dir, 'zones', ZONE), gdnsdZone());
  const started = await startProcess('gdnsd', ['-c', dir, 'start'], { label: 'gdnsd', ready: (line) => line.includes('DNS listeners started') });
  return { ...started, port, name: 'gdnsd' };
}

/**
 * One dnsperf run. `rate` caps QPS (for the latency run); `verbose` collects every query's
 * latency to compute percentiles (dnsperf 2.10 has no histogram option).
 */
export function dnsperf({ port, queries, seconds, clients = 4, mode = 'udp', rate, verbose = false, edns = false }) {
  const dir = mkdtempSync(join(tmpdir(), 'dnsperf-'));
  const file = join(dir, 'queries.txt');
  writeFileSync(file, queries.map((q) => `${q.name} ${q.type}`).join('\n') + '\n');
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-c', String(clients), '-l', String(seconds), '-m', mode, '-t', '2'];
  if (rate) args.push('-Q', String(Math.max(1, Math.round(rate))));
  if (verbose) args.push('-v');
  if (edns) args.push('-e');
  return new Promise((resolve, reject) => {
    const proc = spawn('dnsperf', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const latencies = [];
    let text = '';
    let partial = '';
    proc.stdout.on('data', (chunk) => {
      const s = partial + chunk.toString();
      const lines = s.split('\n');
      partial = lines.pop();
      for (const line of lines) {
        if (verbose && line.startsWith('> ')) {
          const latency = Number(line.slice(line.lastIndexOf(' ') + 1));
          if (Number.isFinite(latency)) latencies.push(latency);
        } else if (text.length < 100_000) text += line + '\n';
      }
    });
    proc.stderr.on('data', (chunk) => (text += chunk.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      const num = (re) => Number(re.exec(text)?.[1] ?? NaN);
      const result = {
        command: `dnsperf ${args.join(' ')}`.replace(file, '<queries>'),
        sent: num(/Queries sent:\s+(\d+)/),
        completed: num(/Queries completed:\s+(\d+)/),
        lost: num(/Queries lost:\s+(\d+)/),
        qps: num(/Queries per second:\s+([\d.]+)/),
        avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
        maxMs: num(/Average Latency \(s\):.*max ([\d.]+)/) * 1000,
        p99Ms: NaN,
        exitCode: code,
      };
      if (latencies.length > 0) {
        latencies.sort((a, b) => a - b);
        result.p99Ms = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] * 1000;
        result.p50Ms = latencies[Math.floor(latencies.length * 0.5)] * 1000;
      }
      if (!Number.isFinite(result.qps)) return reject(new Error(`dnsperf gave no result (exit ${code}):\n${text}`));
      resolve(result);
    });
  });
}

/** null when `serve --udp-threads` can run here (the batched addon is built), else why not. */
export async function udpThreadsUnavailable() {
  const { udpThreadsUnavailable: why } = await import('../../dist/server/udp-threads.js');
  return why();
}

/** USER_HZ, what /proc/<pid>/stat counts CPU time in (100 on every Linux we know of). */
export const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** Parent pid and CPU time (utime + stime, in ticks) of a process, or null when it is gone. */
export function procStat(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** utime + stime, in ticks, of pid and every descendant alive now. */
export function treeTicks(rootPid) {
  const parent = new Map();
  const ticks = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat === null) continue; // exited meanwhile
    parent.set(Number(entry), stat.ppid);
    ticks.set(Number(entry), stat.ticks);
  }
  let total = 0;
  for (const [pid, t] of ticks) {
    for (let p = pid; p > 1; p = parent.get(p) ?? 0) {
      if (p === rootPid) {
        total += t;
        break;
      }
    }
  }
  return total;
}
