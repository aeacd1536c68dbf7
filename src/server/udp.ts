/**
 * UDP transport: a thin adapter from node:dgram to the handler. dns2's UDP server is not used:
 * one datagram from source port 0 makes its README-style server exit (the rejected send()
 * promise is unhandled). Here a send error is counted and forgotten, never thrown.
 *
 * The UDP path is chosen in one place, `listenUdpPath()` (flag --udp-path, env SITEDNS_UDP_PATH):
 * `dgram` is this file; `batched` is the optional recvmmsg/sendmmsg addon of #9, which lives in
 * `./udp-batched.js` and exports `listenBatchedUdp` with the signature of `listenUdp` and
 * `batchedUnavailable(): string | null` (why it cannot be used here, or null). `auto` takes
 * the batched path when it loads, else falls back to dgram.
 */
import dgram from 'node:dgram';
import { rateLimitedTotal, transportEventsTotal } from '../metrics/definitions.js';
import { slipResponse } from '../dns/response.js';
import { type Handler } from './handler.js';
import { PeerContext } from './request-context.js';
import type { ResponseRateLimiter } from './rrl.js';

export interface UdpListener {
  readonly address: string;
  readonly port: number;
  /** Which implementation answers on this socket. */
  readonly path: UdpPathName;
  close(): Promise<void>;
}

/** 'threads': answered by `serve --udp-threads` worker threads (udp-threads.ts), not chosen here. */
export type UdpPathName = 'dgram' | 'batched' | 'threads';
export type UdpPathChoice = 'auto' | 'dgram' | 'batched';

export interface UdpOptions {
  /** Called for each failed send (counted by metrics); never throws. */
  onSendError?: (error: Error) => void;
  /**
   * false (the default) lets node:cluster workers share one socket bound by the primary;
   * true binds a socket of this process's own.
   */
  exclusive?: boolean;
  /** Response rate limiting (#7); null or disabled: every response is sent. */
  rrl?: ResponseRateLimiter | null;
}

const sendErrors = transportEventsTotal.labels('udp', 'send_error');
const rateLimitedDrop = rateLimitedTotal.labels('drop');
const rateLimitedSlip = rateLimitedTotal.labels('slip');

export type UdpListenFunction = (handler: Handler, host: string, port: number, options?: UdpOptions) => Promise<UdpListener>;

interface BatchedModule {
  listenBatchedUdp: UdpListenFunction;
  batchedUnavailable(): string | null;
}

/** Loads the batched path's module; a reason string when it is not available. */
async function loadBatched(): Promise<BatchedModule | string> {
  // A variable specifier: the module is optional (#9), tsc must not require it.
  const specifier = './udp-batched.js';
  try {
    const mod = (await import(specifier)) as BatchedModule;
    const why = mod.batchedUnavailable();
    return why === null ? mod : why;
  } catch (error) {
    return `batched UDP path not built: ${(error as Error).message}`;
  }
}

/** Opens a UDP listener on the chosen path; `fallback` explains why `auto` took dgram. */
export async function listenUdpPath(
  choice: UdpPathChoice,
  handler: Handler,
  host: string,
  port: number,
  options: UdpOptions = {},
): Promise<UdpListener & { fallback?: string }> {
  if (choice === 'dgram') return listenUdp(handler, host, port, options);
  const batched = await loadBatched();
  if (typeof batched === 'string') {
    if (choice === 'batched') throw new Error(batched);
    const listener = await listenUdp(handler, host, port, options);
    return Object.assign(Object.create(listener) as UdpListener, listener, { fallback: batched });
  }
  return batched.listenBatchedUdp(handler, host, port, options);
}

export function listenUdp(handler: Handler, host: string, port: number, options: UdpOptions = {}): Promise<UdpListener> {
  const type = host.includes(':') ? 'udp6' : 'udp4';
  const socket = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
  const onSendError = (error: Error) => {
    sendErrors.inc();
    options.onSendError?.(error);
  };
  const sendDone = (error: Error | null) => {
    if (error) onSendError(error);
  };
  const ctx = new PeerContext('udp');
  const rrl = options.rrl?.enabled ? options.rrl : null;
  socket.on('message', (msg, rinfo) => {
    // Port 0 cannot be replied to (and is a classic reflection probe): drop silently.
    if (rinfo.port === 0) return;
    ctx.setText(rinfo.address, rinfo.port);
    // handle() copies the reply out of the handler's scratch: dgram may queue the buffer
    // (EAGAIN), so it must not be reused by the next datagram.
    let out = handler.handle(msg, ctx);
    if (out === null) return;
    if (rrl !== null) {
      const verdict = rrl.check(rinfo.address, out);
      if (verdict === 'drop') {
        rateLimitedDrop.inc();
        return;
      }
      if (verdict === 'slip') {
        rateLimitedSlip.inc();
        out = slipResponse(out);
      }
    }
    try {
      socket.send(out, rinfo.port, rinfo.address, sendDone);
    } catch (error) {
      onSendError(error as Error);
    }
  });
  // An ICMP-induced error on a UDP socket must not take the server down.
  socket.on('error', (error) => onSendError(error));
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: host, port, exclusive: options.exclusive ?? false }, () => {
      socket.off('error', reject);
      const addr = socket.address();
      resolve({
        address: addr.address,
        port: addr.port,
        path: 'dgram',
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
}
