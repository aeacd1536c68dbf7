/**
 * What a selection policy decided for one query of a Pool, Group or Site Name: the result the
 * response builder (dns/response.ts) turns into records, and explain shows with its reason.
 */
import type { SiteModel } from './zone-model.js';

interface SelectionBase {
  readonly reason: string;
  /** ECS scope prefix length for the response (RFC 7871 §7.2.1); 0 or absent: not client-specific. */
  readonly scope?: number;
  /** Set when no candidate site was up and the name's all_down rule answered. */
  readonly allDown?: boolean;
}

export type Selection =
  /** Answer with these sites' addresses, best first. */
  | (SelectionBase & { readonly kind: 'sites'; readonly sites: readonly SiteModel[] })
  /** Answer with the pool's sorry address (throttling, or all down). */
  | (SelectionBase & { readonly kind: 'sorry' })
  | (SelectionBase & { readonly kind: 'nodata' })
  | (SelectionBase & { readonly kind: 'servfail' })
  /** No response at all (seed 000 claim 9: above T3 the query is dropped). */
  | (SelectionBase & { readonly kind: 'drop' });
