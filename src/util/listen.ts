import dgram from 'node:dgram';
import net from 'node:net';
import { CodedError } from './coded-error.js';

/** "127.0.0.1:5353", "[::1]:5353", ":5353" -> host and port. */
export function parseHostPort(text: string, defaultHost = '127.0.0.1'): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not host:port (IPv6 as [addr]:port)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || defaultHost), port };
}

/** host and port as one text: "127.0.0.1:5353", "[::1]:5353" (RFC 3986 §3.2.2 brackets IPv6). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A --listen address that could not be opened, the start fails with it; the message is one line
 * that names the address (`--listen 127.0.0.1:53: UDP: bind: address already in use
 * (EADDRINUSE)`). `code`: the errno code of the bind (EADDRINUSE, EACCES, ...), else its own.
 */
export class ListenError extends CodedError {}

/** `error` as a ListenError naming `spec` and what was being opened; one that names it already is kept. */
export function listenError(spec: string, what: string, error: unknown): ListenError {
  if (error instanceof ListenError) return error;
  const { code, message } = error as NodeJS.ErrnoException;
  return new ListenError(code ?? 'ELISTEN', `--listen ${spec}: ${what}: ${message}${code !== undefined && !message.includes(code) ? ` (${code})` : ''}`);
}

/**
 * `--listen host:0` asks for a free port; UDP threads must all get the same one, so the
 * main thread picks a port free for both UDP and TCP first.
 */
export async function resolveListenPorts(listen: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const spec of listen) {
    const { host, port } = parseHostPort(spec);
    out.push(formatHostPort(host, port !== 0 ? port : await freePort(host)));
  }
  return out;
}

async function freePort(host: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: host, port: 0, exclusive: true }, () => resolve(udp.address().port));
    });
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen({ host, port, exclusive: true }, () => resolve(true));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (ok) await new Promise<void>((r) => tcp.close(() => r()));
    if (ok) return port;
  }
  throw new Error(`no port free for both UDP and TCP on ${host}`);
}
