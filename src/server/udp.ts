/**
 * UDP transport: a thin adapter from node:dgram to the handler. dns2's UDP server is not used:
 * one datagram from source port 0 makes its README-style server exit (the rejected send()
 * promise is unhandled). Here a send error is counted and forgotten, never thrown.
 */
import dgram from 'node:dgram';
import { rateLimitedTotal, transportEventsTotal } from '../admin/metrics.js';
import { slipResponse } from '../dns/response.js';
import type { Handler } from './handler.js';
import type { ResponseRateLimiter } from './rrl.js';

export interface UdpListener {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface UdpOptions {
  /** Called for each failed send (counted by metrics); never throws. */
  onSendError?: (error: Error) => void;
  /** SO_REUSEPORT-like sharing across cluster workers is done by node:cluster itself. */
  exclusive?: boolean;
  /** Response rate limiting (#7); null or disabled: every response is sent. */
  rrl?: ResponseRateLimiter | null;
}

const sendErrors = transportEventsTotal.labels('udp', 'send_error');
const rateLimitedDrop = rateLimitedTotal.labels('drop');
const rateLimitedSlip = rateLimitedTotal.labels('slip');

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
  const rrl = options.rrl?.enabled ? options.rrl : null;
  socket.on('message', (msg, rinfo) => {
    // Port 0 cannot be replied to (and is a classic reflection probe): drop silently.
    if (rinfo.port === 0) return;
    let out = handler.handle(msg, { transport: 'udp', clientAddress: rinfo.address });
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
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
}
