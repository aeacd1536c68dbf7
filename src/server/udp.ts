/**
 * UDP transport: a thin adapter from node:dgram to the answer step (answer-step.ts). dns2's UDP
 * server is not used: one datagram from source port 0 makes its README-style server exit (the
 * rejected send() promise is unhandled). Here a send error is counted and forgotten, never thrown.
 *
 * A reply must leave from the address its query was sent to (RFC 1122 §4.1.3.5: resolvers drop
 * it otherwise). node:dgram cannot read a datagram's destination (no IP_PKTINFO), so a socket
 * bound to a wildcard address would reply from whatever address the kernel picks. A wildcard
 * listen address (0.0.0.0, ::) is therefore served by one socket per local address of that
 * family, loopback included (os.networkInterfaces() at start): an address added to the host
 * later gets no UDP answers until a restart (nameserver.ts logs this at start; the addon's
 * paths have no such limit).
 *
 * The UDP path is chosen in one place, `listenUdpPath()` (flag --udp-path, env SITEDNS_UDP_PATH):
 * `dgram` is this file; `batched` is the optional recvmmsg/sendmmsg addon, which lives in
 * `./udp-batched.js` and exports `listenBatchedUdp` with the signature of `listenUdp` and
 * `batchedUnavailable(): string | null` (why it cannot be used here, or null). `auto` takes
 * the batched path when it loads, else falls back to dgram.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { AnswerStep, transportEvents, type HandlerCore } from './answer-step.js';
import { UDP_RESPONSE_MAX } from './handler.js';
import { PeerContext } from './request-context.js';
import type { ResponseRateLimiter } from './rrl.js';
import { ListenError, formatHostPort } from '../util/listen.js';

export interface UdpListener {
  readonly address: string;
  readonly port: number;
  /** Which implementation answers on this socket. */
  readonly path: UdpPathName;
  /**
   * node:dgram on a wildcard address: the local addresses it bound one socket each to (replies
   * leave from the address asked; addresses added later are not served). Absent otherwise.
   */
  readonly boundAddresses?: readonly string[];
  close(): Promise<void>;
}

/** 'threads': answered by `serve --udp-threads` worker threads (udp-threads.ts), not chosen here. */
export type UdpPathName = 'dgram' | 'batched' | 'threads';
export type UdpPathChoice = 'auto' | 'dgram' | 'batched';

export interface UdpOptions {
  /** Called for each failed send (counted by metrics); never throws. */
  onSendError?: (error: Error) => void;
  /** Response rate limiting (rrl.ts); null or disabled: every response is sent. */
  rrl?: ResponseRateLimiter | null;
  /** The host's interfaces, for a wildcard address on node:dgram (default: os.networkInterfaces()). */
  interfaces?: ReturnType<typeof os.networkInterfaces>;
}

export type UdpListenFunction = (handler: HandlerCore, host: string, port: number, options?: UdpOptions) => Promise<UdpListener>;

interface BatchedModule {
  listenBatchedUdp: UdpListenFunction;
  batchedUnavailable(): string | null;
}

/** Loads the batched path's module; a reason string when it is not available. */
async function loadBatched(): Promise<BatchedModule | string> {
  // A variable specifier: the module is optional (the addon may not be built), tsc must not require it.
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
  handler: HandlerCore,
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

/** Why a UDP listener cannot start (a coded, one-line error). */
/** `code`: EUDP_WILDCARD, or the errno code of the bind that failed (EADDRINUSE, ...). */
export class UdpListenError extends ListenError {}

/** 4 or 6 for 0.0.0.0 or :: (any spelling), else 0. */
export function wildcardFamily(host: string): 0 | 4 | 6 {
  if (net.isIPv4(host)) return host === '0.0.0.0' ? 4 : 0;
  return net.isIPv6(host) && /^[0:]+$/.test(host) ? 6 : 0;
}

/**
 * The host's addresses of one family, loopback included, as node:dgram binds them (an IPv6
 * link-local address with its interface: fe80::1%eth0). Read once, at start.
 */
export function localAddresses(family: 4 | 6, interfaces = os.networkInterfaces()): string[] {
  const found = new Set<string>();
  for (const [name, entries] of Object.entries(interfaces)) {
    for (const entry of entries ?? []) {
      if (entry.family !== (family === 4 ? 'IPv4' : 'IPv6')) continue;
      const linkLocal = family === 6 && /^fe[89ab]/i.test(entry.address);
      found.add(linkLocal ? `${entry.address}%${name}` : entry.address);
    }
  }
  return [...found];
}

export async function listenUdp(handler: HandlerCore, host: string, port: number, options: UdpOptions = {}): Promise<UdpListener> {
  const step = new AnswerStep(handler, options.rrl);
  const family = wildcardFamily(host);
  if (family === 0) {
    const socket = await bindSocket(step, host, port, options);
    const addr = socket.address();
    return { address: addr.address, port: addr.port, path: 'dgram', close: () => closeSocket(socket) };
  }
  const addresses = localAddresses(family, options.interfaces);
  const listen = formatHostPort(host, port);
  if (addresses.length === 0) {
    throw new UdpListenError('EUDP_WILDCARD', `--listen ${listen}: this host has no IPv${family} address, and without the batched UDP addon a wildcard is served by one UDP socket per local address`);
  }
  // Port 0: the first socket picks the port, the others take the same one, which another
  // process may hold on one of the addresses: then all of them try again.
  for (let attempt = 1; ; attempt++) {
    const sockets: dgram.Socket[] = [];
    try {
      for (const address of addresses) sockets.push(await bindSocket(step, address, sockets.length === 0 ? port : sockets[0].address().port, options));
    } catch (error) {
      await Promise.all(sockets.map(closeSocket));
      const code = (error as NodeJS.ErrnoException).code ?? 'EUDP_WILDCARD';
      if (port === 0 && code === 'EADDRINUSE' && attempt < 10) continue;
      throw new UdpListenError(code, `--listen ${listen}: without the batched UDP addon a wildcard is served by one UDP socket per local address, and ${addresses[sockets.length]} could not be bound: ${(error as Error).message}`);
    }
    return {
      address: host,
      port: sockets[0].address().port,
      path: 'dgram',
      boundAddresses: addresses,
      close: async () => {
        await Promise.all(sockets.map(closeSocket));
      },
    };
  }
}

const closeSocket = (socket: dgram.Socket) => new Promise<void>((done) => socket.close(() => done()));

/** One node:dgram socket bound to `host`, answering through `step`. */
function bindSocket(step: AnswerStep, host: string, port: number, options: UdpOptions): Promise<dgram.Socket> {
  const type = host.includes(':') ? 'udp6' : 'udp4';
  const socket = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
  const onSendError = (error: Error) => {
    transportEvents.udp.sendError.inc();
    options.onSendError?.(error);
  };
  const sendDone = (error: Error | null) => {
    if (error) onSendError(error);
  };
  const ctx = new PeerContext('udp');
  const scratch = Buffer.allocUnsafe(UDP_RESPONSE_MAX);
  socket.on('message', (msg, rinfo) => {
    // Port 0 cannot be replied to (and is a classic reflection probe): drop silently.
    if (rinfo.port === 0) return;
    ctx.setText(rinfo.address, rinfo.port);
    const n = step.answer(msg, msg.length, ctx, scratch);
    if (n < 0) return;
    // A copy of the reply: dgram may queue it (EAGAIN), and the scratch serves the next datagram.
    const out = Buffer.allocUnsafe(n);
    scratch.copy(out, 0, 0, n);
    try {
      socket.send(out, rinfo.port, rinfo.address, sendDone);
    } catch (error) {
      onSendError(error as Error);
    }
  });
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => {
      socket.close();
      reject(error);
    };
    socket.once('error', failed);
    socket.bind({ address: host, port }, () => {
      socket.off('error', failed);
      // An ICMP-induced error on a UDP socket must not take the server down.
      socket.on('error', (error) => onSendError(error));
      resolve(socket);
    });
  });
}
