import type { ClientInfo } from '../policy/types.js';
import type { RequestContext } from './request-context.js';

/** The ClientInfo policies see on the fast path: reused, the address text read only on demand. */
export class ClientView implements ClientInfo {
  ctx: RequestContext | null = null;
  readonly ecs = null;
  get address(): string {
    return this.ctx === null ? '' : this.ctx.clientAddress;
  }
}
