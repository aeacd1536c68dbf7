/**
 * Processes for the abuse and fault tests: sitedns and helpers started under a raised fd
 * limit. Holding 1,000+ connections needs more descriptors than the common soft limit of 1024;
 * a process may raise its own soft limit up to the hard limit, so each child is started through
 * `sh -c 'ulimit -n N; exec ...'`. `fdLimits()` tells a test what it can count on.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { followJsonLines } from '../../test/helpers/json-lines.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
export const HOLDER = fileURLToPath(new URL('./hold-connections.mjs', import.meta.url));

export function fdLimits(): { soft: number; hard: number } {
  const [soft, hard] = execFileSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' }).trim().split('\n');
  const n = (s: string) => (s === 'unlimited' ? 1 << 20 : Number(s));
  return { soft: n(soft), hard: n(hard) };
}

/** Starts `command args` with its soft fd limit raised to `fds` (or the hard limit, if lower). */
export function spawnWithFds(fds: number, command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const script = `ulimit -n ${fds} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`;
  return spawn('sh', ['-c', script, command, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
}

export interface Proc {
  proc: ChildProcess;
  /** Parsed JSON lines (or {raw}) from stdout and stderr. */
  lines: any[];
  waitFor(predicate: (line: any) => boolean, timeoutMs?: number): Promise<any>;
  send(line: string): void;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function track(proc: ChildProcess): Proc {
  const followed = followJsonLines(proc);
  return {
    proc,
    lines: followed.lines,
    waitFor: followed.waitFor,
    send: (line) => proc.stdin!.write(`${line}\n`),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.stdin!.end();
      proc.kill(signal);
      const [code] = await once(proc, 'exit');
      return code as number | null;
    },
  };
}

/** `sitedns serve` with a raised fd limit; resolves once it listens, with its port. */
export async function startServe(args: string[], fds = 8192, env: NodeJS.ProcessEnv = {}): Promise<Proc & { port: number }> {
  const p = track(spawnWithFds(fds, process.execPath, [CLI, 'serve', ...args], env));
  const listening = await p.waitFor((l) => l.msg === 'listening on UDP and TCP');
  return Object.assign(p, { port: listening.port as number });
}

/** The connection holder (hold-connections.mjs); resolves with what it managed to hold. */
export async function holdConnections(port: number, count: number, sources = 20, mode = 'idle-after-query', fds = 8192): Promise<Proc & { held: number; failed: number }> {
  const p = track(spawnWithFds(fds, process.execPath, [HOLDER, String(port), String(count), String(sources), mode]));
  const r = await p.waitFor((l) => typeof l.held === 'number', 120_000);
  return Object.assign(p, { held: r.held as number, failed: r.failed as number });
}

/** Asks the holder how many of its connections are still open. */
export async function openCount(p: Proc): Promise<number> {
  const before = p.lines.length;
  p.send('count');
  const r = await p.waitFor((l) => typeof l.open === 'number' && p.lines.indexOf(l) >= before);
  return r.open;
}

/**
 * Sends `count` valid UDP queries for `names` with at most `window` outstanding, retrying none;
 * resolves with how many were answered (a query unanswered after `stallMs` counts as lost).
 */
export async function udpLoad(port: number, count: number, names: string[] = ['mail.app.example.com', 'app.example.com'], window = 32, stallMs = 2000): Promise<{ sent: number; answered: number; lost: number; rcodes: Record<number, number>; seconds: number }> {
  const dgram = await import('node:dgram');
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const outstanding = new Set<number>();
  const rcodes: Record<number, number> = {};
  let answered = 0;
  let lost = 0;
  let wake: (() => void) | null = null;
  socket.on('message', (msg) => {
    const id = msg.readUInt16BE(0);
    if (!outstanding.delete(id)) return;
    answered++;
    rcodes[msg[3] & 0xf] = (rcodes[msg[3] & 0xf] ?? 0) + 1;
    wake?.();
  });
  const questions = names.map((n) => {
    const labels = n.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
    return Buffer.concat([Buffer.from([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
  });
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const q = Buffer.from(questions[i % questions.length]);
    const id = i & 0xffff;
    q.writeUInt16BE(id, 0);
    outstanding.add(id);
    socket.send(q, port, '127.0.0.1');
    while (outstanding.size >= window) {
      const progressed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), stallMs);
        wake = () => (clearTimeout(timer), resolve(true));
      });
      wake = null;
      if (!progressed) {
        lost += outstanding.size;
        outstanding.clear();
      }
    }
  }
  const deadline = Date.now() + stallMs;
  while (outstanding.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  lost += outstanding.size;
  const seconds = (Date.now() - t0) / 1000;
  socket.close();
  return { sent: count, answered, lost, rcodes, seconds };
}

/** A free TCP port on 127.0.0.1 (for servers that cannot report the port they took, like redis-server). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

export interface RedisProc {
  proc: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** Starts redis-server on 127.0.0.1 with no persistence; `extra` are more command-line options. */
export async function startRedis(extra: string[] = [], port?: number): Promise<RedisProc> {
  const p = port ?? (await freePort());
  const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(p), '--save', '', '--appendonly', 'no', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (c) => (output += c));
  proc.stderr!.on('data', (c) => (output += c));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
    const check = () => {
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  return {
    proc,
    port: p,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}
