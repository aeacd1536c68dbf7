/**
 * TCP transport (RFC 7766): 2-byte length framing, pipelined queries answered in order, an idle
 * timeout, caps on connections (per client address and network; when the total is reached the
 * longest-idle connection makes room: policy/tcp-admission.ts) and on unanswered bytes, and write
 * backpressure: when a client stops reading we stop reading from it, and if its backlog still
 * grows past the cap the connection is closed. dns2's TCP server has no connection cap and no
 * write backpressure, so it is not used.
 */
import net from 'node:net';
import { AnswerStep, transportEvents, type HandlerCore } from './answer-step.js';
import { TCP_RESPONSE_MAX } from './handler.js';
import { ConnectionTable } from '../policy/tcp-admission.js';
import type { RequestContext } from './request-context.js';

type TcpEvent = keyof typeof transportEvents.tcp;

export interface TcpOptions {
  /** Close a connection idle this long between queries (RFC 7766 §6.2.3 suggests seconds, not minutes). */
  idleTimeoutMs?: number;
  /**
   * A query must arrive whole this long after its first byte, and the first query this long after
   * connecting: an absolute deadline, so a client dripping one byte at a time cannot hold a
   * connection (an inactivity timer alone is reset by every byte).
   */
  firstQueryTimeoutMs?: number;
  /** Open connections at most; when reached, the longest-idle one is closed to admit a new one. */
  maxConnections?: number;
  /** Open connections per client address at most; over it a new one is refused. */
  maxConnectionsPerClient?: number;
  /** Open connections per client network (IPv4 /24, IPv6 /56) at most; over it a new one is refused. */
  maxConnectionsPerNetwork?: number;
  /**
   * Answered queries whose responses the client has not taken yet. At the cap we stop reading
   * (and stop answering what was already read) until the client catches up.
   */
  maxQueriesInFlight?: number;
  /** Queued response bytes past which a non-reading client is disconnected (a safety net). */
  maxPendingWriteBytes?: number;
  onEvent?: (event: TcpEvent) => void;
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
  // An eighth of the table: filling it takes eight networks, and eviction answers the rest.
  maxConnectionsPerNetwork: 256,
  maxQueriesInFlight: 64,
  maxPendingWriteBytes: 256 * 1024,
};

export function listenTcp(handler: HandlerCore, host: string, port: number, options: TcpOptions = {}): Promise<TcpListener> {
  const opts = { ...DEFAULTS, ...options };
  // One response is built at a time (the handler is synchronous): into this scratch frame, after
  // its 2-byte length, then copied once into a frame of the exact size for the socket.
  const scratch = Buffer.allocUnsafe(2 + TCP_RESPONSE_MAX);
  const scratchBody = scratch.subarray(2);
  // No rate limiting: a TCP client's address is not spoofed (answer-step.ts).
  const step = new AnswerStep(handler);
  // Every transport event is counted in sitedns_transport_events_total, whoever listens.
  const onEvent = (event: TcpEvent) => {
    transportEvents.tcp[event].inc();
    options.onEvent?.(event);
  };
  const table = new ConnectionTable<net.Socket>({ maxConnections: opts.maxConnections, maxPerAddress: opts.maxConnectionsPerClient, maxPerNetwork: opts.maxConnectionsPerNetwork });
  const sockets = new Set<net.Socket>();
  /** Refused connections held open before closing (a network retrying past its cap). */
  const held = new Set<net.Socket>();
  /** Connections holding part of a query: at stop they are answered before being closed. */
  const midQuery = new Set<net.Socket>();
  let closing = false;

  const server = net.createServer({ pauseOnConnect: false, noDelay: true }, (socket) => {
    const client = socket.remoteAddress ?? '';
    const admission = closing ? null : table.admit(socket, client);
    if (admission === null || !admission.admitted) {
      onEvent('reject');
      // A network retrying past its cap: hold the connection, unread, before closing it
      // (tcp-admission.ts), as many as the table holds at most.
      if (admission?.holdMs !== undefined && held.size < opts.maxConnections) {
        socket.pause();
        socket.on('error', () => undefined);
        held.add(socket);
        const timer = setTimeout(() => socket.destroy(), admission.holdMs);
        socket.once('close', () => {
          clearTimeout(timer);
          held.delete(socket);
        });
        return;
      }
      socket.destroy();
      return;
    }
    if (admission.evict !== null) {
      onEvent('evict');
      admission.evict.destroy();
    }
    onEvent('accept');
    sockets.add(socket);
    socket.on('error', () => onEvent('error'));

    let pending: Buffer = Buffer.alloc(0);
    const ctx: RequestContext = { transport: 'tcp', clientAddress: client };
    let inFlight = 0;
    let blocked = false;
    // Absolute deadline for the query being received (the first one counts from connecting).
    const expire = () => {
      onEvent('timeout');
      socket.destroy();
    };
    let deadline: NodeJS.Timeout | null = setTimeout(expire, opts.firstQueryTimeoutMs);
    socket.setTimeout(opts.idleTimeoutMs, expire);
    socket.once('close', () => {
      if (deadline !== null) clearTimeout(deadline);
      sockets.delete(socket);
      midQuery.delete(socket);
      table.remove(socket);
    });

    const unblock = () => {
      if (!blocked || inFlight >= opts.maxQueriesInFlight || socket.writableNeedDrain || socket.destroyed) return;
      blocked = false;
      socket.resume();
      answerPending();
    };
    const flushed = () => {
      // A client still taking its answers is not idle (tcp-admission.ts), however long ago it asked.
      table.touch(socket);
      inFlight--;
      unblock();
    };
    socket.on('drain', unblock);

    const answerPending = () => {
      // Corked: the responses to the queries of one read leave in one writev, not one syscall
      // each (pipelining clients send many queries per segment, RFC 7766 §6.2.1.1).
      socket.cork();
      try {
        answerFrames();
      } finally {
        socket.uncork();
      }
    };
    const answerFrames = () => {
      let completed = false;
      // A frame is at most 2 + 65535 bytes, and reading stops while blocked, so `pending` stays small.
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        if (inFlight >= opts.maxQueriesInFlight || socket.writableNeedDrain) {
          // Backpressure: answer no more, read no more, until the client takes what we wrote.
          blocked = true;
          socket.pause();
          break;
        }
        const query = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        completed = true;
        const n = step.answer(query, query.length, ctx, scratchBody);
        if (n < 0) continue;
        scratch.writeUInt16BE(n, 0);
        const frame = Buffer.allocUnsafe(2 + n);
        scratch.copy(frame, 0, 0, 2 + n);
        inFlight++;
        socket.write(frame, flushed);
        if (socket.writableLength > opts.maxPendingWriteBytes) {
          onEvent('overflow');
          socket.destroy();
          return;
        }
      }
      // A partial frame must be completed before its deadline (counted from its first byte, or
      // from connecting for the first query); a completed frame ends its deadline.
      const partial = pending.length > 0 && !blocked;
      if (deadline !== null && (completed || !partial)) {
        clearTimeout(deadline);
        deadline = null;
      }
      if (partial && deadline === null) deadline = setTimeout(expire, opts.firstQueryTimeoutMs);
      if (pending.length > 0 && pending.buffer.byteLength > 4 * 65537) pending = Buffer.from(pending);
      if (pending.length > 0) midQuery.add(socket);
      else midQuery.delete(socket);
      if (closing && pending.length === 0) socket.end();
    };

    socket.on('data', (chunk: Buffer) => {
      table.touch(socket);
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      if (!blocked) answerPending();
    });
  });
  // Node refuses connections over this itself: room for the table and as many held ones.
  server.maxConnections = 2 * opts.maxConnections + 16;
  server.on('error', () => onEvent('error'));

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({
        address: addr.address,
        port: addr.port,
        connections: () => table.size,
        close: (graceMs = 3000) =>
          new Promise<void>((done) => {
            closing = true;
            for (const s of held) s.destroy();
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
