/**
 * The policy contract: a pure function of (name entry, state snapshot, client, injected clock
 * and random source) -> Selection. No I/O, no awaits; `explain` replays the same call.
 */
import type { ClientSubnet } from '../dns/wire.js';
import type { DynamicName, SiteModel } from '../model/zone-model.js';
import type { StateSnapshot } from '../state/snapshot.js';

export interface ClientInfo {
  /** The resolver's address as seen by the transport. */
  readonly address: string;
  /** EDNS Client Subnet of the query, when present and valid (RFC 7871). */
  readonly ecs: ClientSubnet | null;
}

export interface PolicyEnv {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Uniform in [0, 1). */
  random(): number;
}

export type Family = 4 | 6;

export type Selection =
  /** Answer with these sites' addresses, best first. */
  | { readonly kind: 'sites'; readonly sites: readonly SiteModel[]; readonly reason: string; readonly scope?: number }
  /** Answer with the pool's sorry address (throttling, or all down). */
  | { readonly kind: 'sorry'; readonly reason: string; readonly scope?: number }
  | { readonly kind: 'nodata'; readonly reason: string; readonly scope?: number }
  | { readonly kind: 'servfail'; readonly reason: string; readonly scope?: number }
  /** No response at all (seed 000: above T3 the query is dropped). */
  | { readonly kind: 'drop'; readonly reason: string; readonly scope?: number };

export type Policy = (
  name: DynamicName,
  family: Family,
  snapshot: StateSnapshot,
  client: ClientInfo,
  env: PolicyEnv,
) => Selection;

export function hasFamily(site: SiteModel, family: Family): boolean {
  return family === 4 ? site.v4.length > 0 : site.v6.length > 0;
}

export const systemEnv: PolicyEnv = { now: Date.now, random: Math.random };
