/** Real-socket helpers for end-to-end tests: start sitedns, send UDP and TCP queries. */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

export const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

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
  // One process unless a test asks for workers (#8: `serve` defaults to every core).
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SITEDNS_WORKERS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: any[] = [];
  const waiters: { predicate: (l: any) => boolean; resolve: (l: any) => void }[] = [];
  let buffered = '';
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let parsed: any;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = { raw: line };
      }
      logs.push(parsed);
      for (const w of [...waiters]) {
        if (w.predicate(parsed)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const waitForLog = (predicate: (l: any) => boolean, timeoutMs = 10_000) =>
    new Promise<any>((resolve, reject) => {
      const found = logs.find(predicate);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; got:\n${logs.map((l) => JSON.stringify(l)).join('\n')}`)), timeoutMs);
      waiters.push({ predicate, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      proc.once('exit', (code) => reject(new Error(`sitedns exited with ${code}; logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}`)));
    });
  const listening = await waitForLog((l) => l.msg === 'listening on UDP and TCP');
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
