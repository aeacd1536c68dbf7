/**
 * Shared pieces of the benches: machine facts, starting sitedns and gdnsd on free loopback
 * ports, running dnsperf and parsing its report.
 */
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, mkdtempSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * The packages a dnsperf bench needs, installed when missing (ensurePackages). Exits 2 without
 * dnsperf; says so when gdnsd is missing (the bench then prints sitedns figures without
 * ratios). Returns the packages still missing.
 */
export function requireDnsperf(allowInstall, { gdnsd = true } = {}) {
  const missing = ensurePackages(gdnsd ? ['dnsperf', 'gdnsd'] : ['dnsperf'], allowInstall);
  if (!have('dnsperf')) {
    console.error('dnsperf is missing (apt-get install dnsperf); cannot run the bench');
    process.exit(2);
  }
  if (missing.includes('gdnsd')) console.error('gdnsd is missing: sitedns figures only, no ratios');
  return missing;
}

/** Mean of some figures; NaN for none. */
/** A DNS query for `name` A with ID `id`, RD set (RFC 1035 §4.1), for benches that send their own. */
export function dnsQuery(id, name) {
  const labels = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/**
 * The records of a reply's answer section, in order, as { type, rdata } (RFC 1035 §4.1): past
 * the one question, each answer's owner is a name (labels, or a pointer ending it, §4.1.4), then
 * type, class, TTL, RDLENGTH and RDATA.
 */
export function answerRecords(msg) {
  const skipName = (off) => {
    while (msg[off] !== 0) {
      if ((msg[off] & 0xc0) === 0xc0) return off + 2;
      off += msg[off] + 1;
    }
    return off + 1;
  };
  let off = skipName(12) + 4;
  const records = [];
  for (let i = 0; i < msg.readUInt16BE(6); i++) {
    off = skipName(off);
    const length = msg.readUInt16BE(off + 8);
    records.push({ type: msg.readUInt16BE(off), rdata: msg.subarray(off + 10, off + 10 + length) });
    off += 10 + length;
  }
  return records;
}

/** The addresses of a reply's A records, in answer order, as dotted quads; other types stepped over. */
export function aRecords(msg) {
  return answerRecords(msg)
    .filter((r) => r.type === 1)
    .map((r) => [...r.rdata].join('.'));
}

export const mean = (xs) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Median of some figures (the mean of the middle two for an even count); NaN for none. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Prints rows as a Markdown table (docs/benchmarks.md takes them as they are): `head` titles the `cols` of each row. */
export function printTable(head, cols, rows) {
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${cols.map((c) => row[c]).join(' | ')} |`);
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

/**
 * sitedns serving `zonesDir`: UDP on `threads` threads (`serve --udp-threads N`, the default
 * mode), or with 0 on the main thread's event loop by `udpPath`; resolves with its port.
 */
export async function startSitedns({ zonesDir, threads = 0, udpPath = 'auto', extraArgs = [], env = {} }) {
  const udp = threads > 0 ? ['--udp-threads', String(threads)] : ['--udp-threads', '0', '--udp-path', udpPath];
  const started = await startProcess(process.execPath, [CLI, 'serve', '--zones', zonesDir, '--listen', '127.0.0.1:0', ...udp, '--log-level', 'info', '--http', 'off', ...extraArgs], {
    env,
    label: threads > 0 ? `sitedns (${threads} UDP threads)` : `sitedns (main thread, ${udpPath})`,
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
 *
 * With `verbose`, dnsperf prints one line per query. By default (`latencyVia: 'file'`) that
 * output goes straight to a file and is read after dnsperf exits, so nothing but dnsperf and
 * the server runs during the measurement. With `latencyVia: 'pipe'` the lines come through a
 * pipe into this process, which splits and parses ~80,000 of them a second on the same two
 * cores as dnsperf and the server: only to measure what that costs (bench/qps/latency.mjs
 * --compare-pipe, docs/benchmarks.md).
 */
export function dnsperf({ port, queries, seconds, clients = 4, mode = 'udp', rate, verbose = false, edns = false, dnssecOk = false, latencyVia = 'file', taskset }) {
  const dir = mkdtempSync(join(tmpdir(), 'dnsperf-'));
  const file = join(dir, 'queries.txt');
  writeFileSync(file, queries.map((q) => `${q.name} ${q.type}`).join('\n') + '\n');
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-c', String(clients), '-l', String(seconds), '-m', mode, '-t', '2'];
  if (rate) args.push('-Q', String(Math.max(1, Math.round(rate))));
  if (verbose) args.push('-v');
  if (edns) args.push('-e');
  if (dnssecOk) args.push('-D'); // the DO bit (RFC 3225): DNSSEC records asked for
  const toFile = verbose && latencyVia === 'file';
  const outFile = join(dir, 'out.txt');
  const outFd = toFile ? openSync(outFile, 'w') : null;
  // `taskset`: a CPU list (taskset -c) to keep dnsperf on, for runs that give it cores of its own.
  const [command, commandArgs] = taskset ? ['taskset', ['-c', String(taskset), 'dnsperf', ...args]] : ['dnsperf', args];
  return new Promise((resolve, reject) => {
    const proc = spawn(command, commandArgs, { stdio: ['ignore', toFile ? outFd : 'pipe', 'pipe'] });
    if (outFd !== null) closeSync(outFd);
    const latencies = [];
    let text = '';
    let partial = '';
    const takeLines = (lines) => {
      for (const line of lines) {
        if (verbose && line.startsWith('> ')) {
          const latency = Number(line.slice(line.lastIndexOf(' ') + 1));
          if (Number.isFinite(latency)) latencies.push(latency);
        } else if (text.length < 100_000) text += line + '\n';
      }
    };
    proc.stdout?.on('data', (chunk) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop();
      takeLines(lines);
    });
    proc.stderr.on('data', (chunk) => (text += chunk.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (toFile) takeLines(readFileSync(outFile, 'utf8').split('\n'));
      rmSync(dir, { recursive: true, force: true });
      const num = (re) => Number(re.exec(text)?.[1] ?? NaN);
      const result = {
        command: `${taskset ? `taskset -c ${taskset} ` : ''}dnsperf ${args.join(' ')}`.replace(file, '<queries>'),
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
        const sorted = Float64Array.from(latencies).sort();
        const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] * 1000;
        result.p50Ms = at(0.5);
        result.p99Ms = at(0.99);
        result.p999Ms = at(0.999);
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

/** The pids of a process and of all its descendants, with each one's CPU ticks (from /proc). */
export function processTree(rootPid) {
  const parent = new Map();
  const ticks = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat === null) continue; // exited meanwhile
    parent.set(Number(entry), stat.ppid);
    ticks.set(Number(entry), stat.ticks);
  }
  const tree = new Map();
  for (const [pid, t] of ticks) {
    for (let p = pid; p > 1; p = parent.get(p) ?? 0) {
      if (p === rootPid) {
        tree.set(pid, t);
        break;
      }
    }
  }
  return tree;
}

/** utime + stime, in ticks, of pid and every descendant alive now. */
export function treeTicks(rootPid) {
  let total = 0;
  for (const t of processTree(rootPid).values()) total += t;
  return total;
}

/**
 * The echo floor (bench/qps/floor/): servers that do no DNS work at all and answer every query
 * with itself, QR set, on free loopback ports. `node`: sitedns's batched transport with an echo
 * handler; `waits`: the C echo (built here with cc) waiting in a blocking recvmmsg (gdnsd's way)
 * and/or in epoll (the batched path's way). The C ones are left out, with a message, where no
 * compiler is there. cpu.mjs measures their CPU per query, latency.mjs their latency: what the
 * machine and dnsperf cost before any server does anything.
 */
export async function startEchoFloor(processes, { node = true, waits = ['blocking', 'epoll'] } = {}) {
  const floor = [];
  if (node) {
    const nodeEcho = new URL('./floor/node-echo.mjs', import.meta.url).pathname;
    const port = await freePort();
    const echo = await startProcess(process.execPath, [nodeEcho, String(port), String(processes)], { label: 'node echo', ready: (line) => line.includes('node echo ready') });
    floor.push({ ...echo, port, key: 'node-echo', label: `node echo ${processes}p (floor)` });
  }
  if (waits.length === 0) return floor;
  const compiler = ['cc', 'gcc'].find(have);
  if (compiler === undefined) {
    console.error('no C compiler: the C echo floor is skipped');
    return floor;
  }
  const binary = join(mkdtempSync(join(tmpdir(), 'sitedns-echo-')), 'echo');
  const built = spawnSync(compiler, ['-O2', '-o', binary, new URL('./floor/echo.c', import.meta.url).pathname], { encoding: 'utf8' });
  if (built.status !== 0) {
    console.error(`cannot build the C echo floor:\n${built.stderr}`);
    return floor;
  }
  for (const wait of waits) {
    const cPort = await freePort();
    const c = await startProcess(binary, [String(cPort), wait, String(processes)], { label: `C echo ${wait}`, ready: (line) => line.includes('echo ready') });
    floor.push({ ...c, port: cPort, key: `c-echo-${wait}`, label: `C echo ${processes}p, ${wait === 'blocking' ? 'blocking recvmmsg' : 'epoll'} (floor)` });
  }
  return floor;
}
