/**
 * What the handler reports per query: one QueryEvent (reused across queries) to a HandlerObserver
 * (metrics, sampled query logs).
 */
import type { Transport } from '../dns/response.js';
import { questionNameText } from '../dns/prebuilt.js';
import type { DynamicName } from '../model/zone-model.js';
import type { Selection } from '../model/selection.js';
import type { RequestContext } from './request-context.js';

/** What a handled query turned into, for metrics and logs (reused object: copy what you keep). */
export interface QueryEvent {
  transport: Transport;
  zone: string;
  qtype: number;
  /** The whole RCODE: the header's 4 bits, or an extended RCODE such as BADVERS (16); -1 with no reply. */
  rcode: number;
  /** Site ids answered for a dynamic name, or '' */
  site: string;
  /** The question name, lower case (computed on first read when the fast path did not need it). */
  name: string;
  dropped: boolean;
  error: Error | null;
  /** The resolver's address (for sampled query logs); read during onQuery only. */
  readonly client: string;
  /** performance.now() when the handler got the packet, on 1 query in observer.timeEvery; else 0. */
  startedAt: number;
}

/** The one QueryEvent a handler reuses; `name` is decoded from the query only if read. */
export class ReusedQueryEvent implements QueryEvent {
  transport: Transport = 'udp';
  zone = '';
  qtype = 0;
  rcode = 0;
  site = '';
  dropped = false;
  error: Error | null = null;
  startedAt = 0;
  /** The request, during onQuery only: `client` reads its (possibly lazy) address on demand. */
  ctx: RequestContext | null = null;
  get client(): string {
    return this.ctx === null ? '' : this.ctx.clientAddress;
  }
  private nameText = '';
  private nameQuery: Buffer | null = null;
  private nameEnd = 0;

  get name(): string {
    if (this.nameQuery !== null) {
      this.nameText = questionNameText(this.nameQuery, this.nameEnd);
      this.nameQuery = null;
    }
    return this.nameText;
  }
  set name(text: string) {
    this.nameText = text;
    this.nameQuery = null;
  }
  /** Valid during onQuery only (the query bytes are the transport's). */
  nameFrom(query: Buffer, nameEnd: number): void {
    this.nameQuery = query;
    this.nameEnd = nameEnd;
  }
}

export interface HandlerObserver {
  /**
   * Read the clock for 1 query in this many (a power of two; unset: never). A clock read costs
   * more than all the counting (bench/observer.mjs), so latency is measured on a sample.
   */
  readonly timeEvery?: number;
  onQuery?(event: QueryEvent): void;
  onSelection?(name: DynamicName, selection: Selection): void;
  /** A name entered (true) or left (false) the all-down state; called once per transition. */
  onAllDown?(name: DynamicName, allDown: boolean, selection: Selection): void;
}
