/**
 * What a transport tells the handler about one request (the handleInto contract, handler.ts).
 *
 * RequestContext: `transport` and the client's address. `clientAddress` is the text form
 * (as node:dgram reports it); it may be a lazy getter. A transport that has raw sockaddr bytes
 * (the addon) reuses one `PeerContext` and calls `setBytes(family, bytes, offset, port)` per
 * datagram: the text is then computed only if something reads `clientAddress` (topology
 * without ECS, RRL keys), and `clientFamily` + `clientBytes` (first 4 or 16 bytes, network
 * order) let consumers match prefixes without parsing text. Consumers must not keep
 * `clientBytes` past the call (it is overwritten by the next datagram); copy what they keep.
 */
import ipaddr from 'ipaddr.js';
import type { Transport } from '../dns/response.js';

export interface RequestContext {
  readonly transport: Transport;
  /** The resolver's address as text (for topology without ECS, and rate limiting); may be lazy. */
  readonly clientAddress: string;
  /** When the transport has the raw address: 4 or 6, with the bytes in `clientBytes`. */
  readonly clientFamily?: 4 | 6;
  /**
   * The raw address: the first 4 (IPv4) or 16 (IPv6) bytes, network order; meaningful only when
   * `clientFamily` is set. Valid during the call only.
   */
  readonly clientBytes?: Uint8Array;
  /** The client's source port, when known (0 otherwise). */
  readonly clientPort?: number;
}

/**
 * A reusable RequestContext for transports that hold raw socket addresses: one per socket,
 * refilled per datagram without allocating; the text form is built only when read.
 */
export class PeerContext implements RequestContext {
  transport: Transport;
  /** 4 or 6 after setBytes(); undefined after setText() (then `clientBytes` means nothing). */
  clientFamily: 4 | 6 | undefined = undefined;
  clientPort = 0;
  readonly clientBytes = new Uint8Array(16);
  private text: string | null = '';

  constructor(transport: Transport = 'udp') {
    this.transport = transport;
  }

  /** Copies the 4 (family 4) or 16 (family 6) address bytes at `offset` of `source`. */
  setBytes(family: 4 | 6, source: Uint8Array, offset: number, port = 0): void {
    const n = family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) this.clientBytes[i] = source[offset + i];
    this.clientFamily = family;
    this.clientPort = port;
    this.text = null;
  }

  /** For transports that only have text (node:dgram, node:net): bytes are then not provided. */
  setText(address: string, port = 0): void {
    this.text = address;
    this.clientFamily = undefined;
    this.clientPort = port;
  }

  get clientAddress(): string {
    if (this.text === null) {
      const b = this.clientBytes;
      this.text = this.clientFamily === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : ipaddr.fromByteArray(Array.from(b)).toString();
    }
    return this.text;
  }
}

/**
 * The client's address as bytes into out[0 ..]: 4 for IPv4 (an IPv4-mapped IPv6 address counts
 * as its IPv4 address, as rate limiting takes it), 16 for IPv6, 0 when the text is not an address.
 */
export function clientAddressBytes(ctx: RequestContext, out: Uint8Array): number {
  if (ctx.clientFamily !== undefined && ctx.clientBytes !== undefined) {
    const b = ctx.clientBytes;
    if (ctx.clientFamily === 4 || isIPv4Mapped(b)) {
      const from = ctx.clientFamily === 4 ? 0 : 12;
      for (let i = 0; i < 4; i++) out[i] = b[from + i];
      return 4;
    }
    for (let i = 0; i < 16; i++) out[i] = b[i];
    return 16;
  }
  try {
    const bytes = ipaddr.process(ctx.clientAddress).toByteArray();
    for (let i = 0; i < bytes.length; i++) out[i] = bytes[i];
    return bytes.length;
  } catch {
    return 0;
  }
}

function isIPv4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}
