/** Real-socket helpers for end-to-end tests: start sitedns, send UDP and TCP queries. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { followJsonLines } from './json-lines.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

/** A TCP port nothing listens on at `host` now (bound, then closed). */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer().listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A UDP port nothing listens on at 127.0.0.1 now (bound, then closed), for servers that take a fixed port (knotd, unbound). */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  socket.close();
  return port;
}

export interface Started {
  proc: ChildProcess;
  port: number;
  /** Every log line so far (parsed JSON, or {raw}). */
  logs: any[];
  waitForLog(predicate: (line: any) => boolean, timeoutMs?: number): Promise<any>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `sitedns <args>` and resolves once it reports its DNS port. */
export async function startSitedns(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Started> {
  // UDP on the main thread's event loop (the fallback path) unless a test asks for threads
  // (`serve` defaults to one per core): one thread per server keeps a full test run light.
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SITEDNS_UDP_THREADS: process.env.SITEDNS_UDP_THREADS ?? '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const followed = followJsonLines(proc);
  const logs = followed.lines;
  const waitForLog = (predicate: (l: any) => boolean, timeoutMs = 10_000) => followed.waitFor(predicate, timeoutMs);
  // UDP threads compile the zones before they listen: seconds on a busy machine. A server that
  // does not come up is killed, so that the test fails rather than waits for it.
  const listening = await waitForLog((l) => l.msg === 'listening on UDP and TCP', 30_000).catch((error: Error) => {
    proc.kill('SIGKILL');
    throw error;
  });
  return {
    proc,
    port: listening.port,
    logs,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      const [code] = await once(proc, 'exit');
      return code as number | null;
    },
  };
}

/** A `sitedns probe --redis` process, started by startProber. */
export interface ProberProcess {
  readonly proc: ChildProcess;
  /** SIGKILL by default: no clean leave, its heartbeat just stops. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `sitedns probe --zones <zones> --redis <redis> --prober-id <id>`; resolves once it probes. */
export async function startProber(zones: string, redis: string, id: string): Promise<ProberProcess> {
  const proc = spawn(process.execPath, [CLI, 'probe', '--zones', zones, '--redis', redis, '--prober-id', id], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`prober ${id} did not start: ${out}`)), 15_000);
    const read = (chunk: Buffer) => {
      out += chunk;
      if (!out.includes('"msg":"probing"')) return;
      clearTimeout(timer);
      resolve();
    };
    proc.stdout!.on('data', read);
    proc.stderr!.on('data', read);
    proc.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`prober exited: ${out}`));
    });
  });
  return {
    proc,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await once(proc, 'exit');
    },
  };
}

/** Sends one UDP datagram and waits for one reply (or null after the timeout). */
export async function udpQuery(port: number, packet: Buffer, host = '127.0.0.1', timeoutMs = 2000): Promise<Buffer | null> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    return await new Promise<Buffer | null>((resolve, reject) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      socket.once('message', (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      socket.once('error', reject);
      socket.send(packet, port, host);
    });
  } finally {
    socket.close();
  }
}

/** Opens a TCP connection, writes all queries (pipelined, in one write), and reads `expect` replies. */
export async function tcpQueries(port: number, packets: Buffer[], expect = packets.length, host = '127.0.0.1', timeoutMs = 3000): Promise<Buffer[]> {
  const socket = net.connect({ port, host });
  await once(socket, 'connect');
  const frames = packets.map((p) => {
    const f = Buffer.alloc(2 + p.length);
    f.writeUInt16BE(p.length, 0);
    p.copy(f, 2);
    return f;
  });
  socket.write(Buffer.concat(frames));
  const replies: Buffer[] = [];
  let pending = Buffer.alloc(0);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${replies.length} of ${expect} TCP replies`)), timeoutMs);
      socket.on('data', (chunk) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
          replies.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
          pending = pending.subarray(2 + pending.readUInt16BE(0));
        }
        if (replies.length >= expect) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.on('error', reject);
    });
  } finally {
    socket.destroy();
  }
  return replies;
}

/**
 * Runs `sitedns serve --listen 127.0.0.1:0 --http off <args>` (no SITEDNS_UDP_THREADS from this
 * environment) and returns its exit status and output: for flag combinations it must refuse.
 */
export function serveRefusal(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', '--http', 'off', ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, SITEDNS_UDP_THREADS: '' } });
  return { status: r.status, output: r.stdout + r.stderr };
}
