/**
 * The answer step: what happens to one query once a transport holds its bytes. Transports only
 * move bytes (node:dgram in udp.ts, the addon's batches in udp-batched.ts and udp-thread.ts, TCP
 * frames in tcp.ts); each calls `answer()` per query, and this is the one place that runs the
 * handler, response rate limiting with slip, and their counters.
 *
 * Response rate limiting applies to UDP only: a TCP client has completed a handshake, so its
 * address is not spoofed and it cannot aim replies at someone else (rrl.ts). For the same reason
 * a UDP query with a valid server cookie is exempt (RFC 7873 §5.2.5: only a client that received
 * our reply at that address holds it), and a limited query that carried a client cookie without
 * one slips as BADCOOKIE with a fresh server cookie (RFC 7873 §5.2.3) instead of TC=1: the client
 * retries over UDP, proven.
 *
 * `answer()` keeps the handler's CONTRACT (handler.ts): synchronous, never throws, keeps no
 * reference to its arguments, and allocates nothing unless a reply slips.
 */
import { rateLimitedTotal, transportEventsTotal } from '../metrics/definitions.js';
import { badCookieResponse, slipResponse } from '../dns/response.js';
import { COOKIE_PROVEN, COOKIE_UNPROVEN } from '../dns/reply-options.js';
import type { Handler } from './handler.js';
import type { RequestContext } from './request-context.js';
import type { ResponseRateLimiter } from './rrl.js';

const rateLimitedDrop = rateLimitedTotal.labels('drop');
const rateLimitedSlip = rateLimitedTotal.labels('slip');

/** sitedns_transport_events_total, every transport's events defined here once (docs/metrics.md). */
export const transportEvents = {
  udp: { sendError: transportEventsTotal.labels('udp', 'send_error') },
  tcp: {
    accept: transportEventsTotal.labels('tcp', 'accept'),
    reject: transportEventsTotal.labels('tcp', 'reject'),
    evict: transportEventsTotal.labels('tcp', 'evict'),
    timeout: transportEventsTotal.labels('tcp', 'timeout'),
    overflow: transportEventsTotal.labels('tcp', 'overflow'),
    error: transportEventsTotal.labels('tcp', 'error'),
  },
} as const;

/** The part of the handler the step calls (a transport benchmark passes an echo, without cookies). */
export type HandlerCore = Pick<Handler, 'handleInto'> & Partial<Pick<Handler, 'lastCookie'>>;

export class AnswerStep {
  private readonly rrl: ResponseRateLimiter | null;

  /** `rrl`: UDP response rate limiting; null, undefined or disabled sends every reply. */
  constructor(
    private readonly handler: HandlerCore,
    rrl?: ResponseRateLimiter | null,
  ) {
    this.rrl = rrl?.enabled ? rrl : null;
  }

  /**
   * Answers `query[0 .. queryLength)` from the client in `ctx` into `out`: the length of the
   * reply to send, or -1 when nothing is sent (the handler's verdict, or a rate-limit drop). A
   * limited reply that slips is rewritten in place as its empty TC=1 form, so that a real
   * resolver retries over TCP (rrl.ts).
   */
  answer(query: Buffer, queryLength: number, ctx: RequestContext, out: Buffer): number {
    let n: number;
    try {
      n = this.handler.handleInto(query, ctx, out, queryLength);
    } catch {
      return -1; // handleInto never throws (CONTRACT); if it ever did, this query goes unanswered
    }
    if (n <= 0) return -1;
    if (this.rrl === null) return n;
    const cookie = this.handler.lastCookie;
    if (cookie === COOKIE_PROVEN) return n;
    const verdict = this.rrl.checkClient(ctx, out, n);
    if (verdict === 'send') return n;
    if (verdict === 'drop') {
      rateLimitedDrop.inc();
      return -1;
    }
    rateLimitedSlip.inc();
    const reply = out.subarray(0, n);
    return (cookie === COOKIE_UNPROVEN ? badCookieResponse(reply) : slipResponse(reply)).copy(out, 0);
  }
}
