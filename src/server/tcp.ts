/**
 * TCP transport (RFC 7766): 2-byte length framing, pipelined queries answered in order, an idle
 * timeout, caps on connections (total and per client) and on unanswered bytes, and write
 * backpressure: when a client stops reading we stop reading from it, and if its backlog still
 * grows past the cap the connection is closed. dns2's TCP server has no connection cap and no
 * write backpressure, so it is not used.
 */
import net from 'node:net';
import type { Handler } from './handler.js';

export interface TcpOptions {
  /** Close a connection idle this long (RFC 7766 §6.2.3 suggests seconds, not minutes). */
  idleTimeoutMs?: number;
  /** Close a connection that has not sent a full query this long after connecting. */
  firstQueryTimeoutMs?: number;
  maxConnections?: number;
  maxConnectionsPerClient?: number;
  /** Queued response bytes past which a non-reading client is disconnected. */
  maxPendingWriteBytes?: number;
  onEvent?: (event: 'accept' | 'reject' | 'timeout' | 'overflow' | 'error') => void;
}

export interface TcpListener {
  readonly address: string;
  readonly port: number;
  /** Stops accepting; resolves once every open connection has been answered and closed. */
  close(graceMs?: number): Promise<void>;
  connections(): number;
}

/** At stop, how long open connections may still deliver queries before being half-closed. */
const STOP_LINGER_MS = 100;

const DEFAULTS = {
  idleTimeoutMs: 10_000,
  firstQueryTimeoutMs: 5_000,
  maxConnections: 2000,
  maxConnectionsPerClient: 64,
  maxPendingWriteBytes: 256 * 1024,
};

export function listenTcp(handler: Handler, host: string, port: number, options: TcpOptions = {}): Promise<TcpListener> {
  const opts = { ...DEFAULTS, ...options };
  const onEvent = options.onEvent ?? (() => {});
  const perClient = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  /** Connections holding part of a query: at stop they are answered before being closed. */
  const midQuery = new Set<net.Socket>();
  let closing = false;

  const server = net.createServer({ pauseOnConnect: false, noDelay: true }, (socket) => {
    const client = socket.remoteAddress ?? '';
    const count = perClient.get(client) ?? 0;
    if (closing || sockets.size >= opts.maxConnections || count >= opts.maxConnectionsPerClient) {
      onEvent('reject');
      socket.destroy();
      return;
    }
    onEvent('accept');
    perClient.set(client, count + 1);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      midQuery.delete(socket);
      const n = (perClient.get(client) ?? 1) - 1;
      if (n <= 0) perClient.delete(client);
      else perClient.set(client, n);
    });
    socket.on('error', () => onEvent('error'));

    let pending: Buffer = Buffer.alloc(0);
    let answered = 0;
    socket.setTimeout(opts.firstQueryTimeoutMs, () => {
      onEvent('timeout');
      socket.destroy();
    });

    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // A frame is at most 2 + 65535 bytes, so `pending` never holds more than one partial frame.
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const query = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        const out = handler.handle(query, { transport: 'tcp', clientAddress: client });
        answered++;
        if (answered === 1) socket.setTimeout(opts.idleTimeoutMs);
        if (out === null) continue;
        const frame = Buffer.allocUnsafe(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        const flushed = socket.write(frame);
        if (!flushed) {
          if (socket.writableLength > opts.maxPendingWriteBytes) {
            onEvent('overflow');
            socket.destroy();
            return;
          }
          // Backpressure: read no more until the client takes what we wrote.
          socket.pause();
          socket.once('drain', () => socket.resume());
        }
      }
      if (pending.length > 0 && pending.buffer.byteLength > 4 * 65537) pending = Buffer.from(pending);
      if (pending.length > 0) midQuery.add(socket);
      else midQuery.delete(socket);
      if (closing && pending.length === 0) socket.end();
    });
  });
  server.maxConnections = opts.maxConnections + 16;
  server.on('error', () => onEvent('error'));

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({
        address: addr.address,
        port: addr.port,
        connections: () => sockets.size,
        close: (graceMs = 3000) =>
          new Promise<void>((done) => {
            closing = true;
            server.close(() => done());
            // Answer what is in flight, then half-close so clients see an orderly end. The
            // handler is synchronous, so a query already read is already answered; a short
            // linger lets queries still in socket buffers be read, and a connection holding
            // part of a query is closed by its data handler once that query is answered.
            setTimeout(() => {
              for (const s of sockets) if (!midQuery.has(s)) s.end();
            }, Math.min(STOP_LINGER_MS, graceMs)).unref();
            setTimeout(() => {
              for (const s of sockets) s.destroy();
            }, graceMs).unref();
          }),
      });
    });
  });
}
