/**
 * Offload and throttling (seeds 000/001: claims 1, 7-10, 32), for `policy: offload` Pool Names.
 * On the primary's utilization u against the pool's thresholds T1 < T2 < T3:
 *
 * | primary                | answer                                                               |
 * |------------------------|----------------------------------------------------------------------|
 * | u < T1, or u unknown   | the primary                                                          |
 * | T1 <= u < T2           | offload share min((u - T1)/(T2 - T1), 1 - K) to eligible offload sites, rest primary |
 * | T2 <= u < T3           | throttle share (u - T2)/(T3 - T2) to the sorry address; of the rest, 1 - K offloaded and K primary |
 * | u >= T3                | drop the query (no response, claim 9)                                |
 * | down                   | an eligible offload site (any up one if none is eligible), else all_down |
 *
 * K is `primary_keeps` (default 0.05): the primary keeps serving a share of new sessions while
 * work is offloaded ("offloading at least a portion", claim 1), and throttling answers the sorry
 * address for a share of the queries, not instead of the primary (claims 16-19). With no
 * eligible offload site the primary keeps everything that is not throttled.
 *
 * An offload site is eligible while it is up, has the asked family, and its utilization is under
 * its own `threshold` (unknown counts as under). When none is eligible, offloading stops (claim 1)
 * and the primary keeps those answers until one falls below. Among eligible sites the choice is
 * `offload_choice`: `client` (rendezvous hash of the client's network, so a client stays put and
 * losing a site moves only its clients), `cost` (lowest `cost:`, then list order), or `load`
 * (least-busy's headroom weighting, least-busy.ts). The shares are proportional controllers: more
 * excess, more offload, which lowers the excess; one uniform draw decides each answer.
 * Without a sorry address of the asked family the throttled share is answered like the rest.
 */
import type { DynamicName, PoolModel, SiteModel } from '../model/zone-model.js';
import { stateOf, type StateSnapshot } from '../state/snapshot.js';
import { usable, oneSite } from './candidates.js';
import { leastBusy } from './least-busy.js';
import { utilizationOf } from './load.js';
import { clientNetwork } from './topology.js';
import { hasFamily, type ClientInfo, type Family, type PolicyEnv } from './types.js';
import type { Selection } from '../model/selection.js';

export function offloadSelect(
  name: DynamicName,
  pool: PoolModel,
  family: Family,
  snapshot: StateSnapshot,
  client: ClientInfo,
  env: PolicyEnv,
): Selection | undefined {
  const primary = pool.primary!;
  const now = env.now();
  const primaryState = stateOf(snapshot, primary.key);
  const primaryUsable = primaryState.up && hasFamily(primary, family);
  if (!primaryUsable) {
    const eligible = eligibleOffload(pool, family, snapshot, now);
    const fallback = eligible.length > 0 ? eligible : usable(pool.offload, family, snapshot);
    if (fallback.length === 0) return undefined;
    return offloadTo(name, pool, fallback, family, snapshot, client, env, `primary ${primary.id} ${primaryState.up ? 'has no address of this family' : 'down'}`);
  }
  const u = utilizationOf(primary, primaryState, now);
  const { offload: t1, throttle: t2, drop: t3 } = pool.thresholds;
  if (u === undefined || u < t1) return oneSite(primary, u === undefined ? 'primary (load unknown)' : 'primary below the offload threshold');
  if (u >= t3) return { kind: 'drop', reason: 'primary above the drop threshold' };
  // Only between T1 and T3 do the offload sites matter: below T1 (the usual case) they are not read.
  const eligible = eligibleOffload(pool, family, snapshot, now);
  const draw = env.random();
  const mostOffloaded = 1 - pool.primaryKeeps;
  if (u >= t2) {
    const throttleShare = (u - t2) / (t3 - t2);
    const hasSorry = (family === 4 ? pool.sorry4 : pool.sorry6).length > 0;
    if (hasSorry && draw < throttleShare) return { kind: 'sorry', reason: 'throttled: primary above the throttle threshold' };
    if (eligible.length === 0) return oneSite(primary, 'primary: every offload site over its threshold');
    // The same draw, spread again over what was not throttled, splits the rest.
    const rest = hasSorry ? (draw - throttleShare) / (1 - throttleShare) : draw;
    if (rest < mostOffloaded) return offloadTo(name, pool, eligible, family, snapshot, client, env, 'offloaded: primary above the throttle threshold');
    return oneSite(primary, 'primary keeps its share above the throttle threshold');
  }
  if (eligible.length === 0) return oneSite(primary, 'primary: every offload site over its threshold');
  const offloadShare = Math.min(mostOffloaded, (u - t1) / (t2 - t1));
  if (draw < offloadShare) return offloadTo(name, pool, eligible, family, snapshot, client, env, 'offloaded: primary above the offload threshold');
  return oneSite(primary, 'primary keeps its share above the offload threshold');
}

/** Offload sites that are up, have the family, and are under their own threshold (claim 1). */
function eligibleOffload(pool: PoolModel, family: Family, snapshot: StateSnapshot, now: number): SiteModel[] {
  const out: SiteModel[] = [];
  for (const site of pool.offload) {
    const state = stateOf(snapshot, site.key);
    if (!state.up || !hasFamily(site, family)) continue;
    const u = utilizationOf(site, state, now);
    if (u === undefined || u < site.threshold) out.push(site);
  }
  return out;
}

function offloadTo(
  name: DynamicName,
  pool: PoolModel,
  sites: readonly SiteModel[],
  family: Family,
  snapshot: StateSnapshot,
  client: ClientInfo,
  env: PolicyEnv,
  why: string,
): Selection | undefined {
  switch (pool.offloadChoice) {
    case 'client': {
      // The answer depends on every bit of the ECS source prefix (byClientHash), so that is the
      // scope a resolver may cache it for (RFC 7871 §7.2.1); without ECS there is no scope to give.
      const reason = `${why} (by client)`;
      const ecs = client.ecs;
      const chosen = [byClientHash(sites, client)];
      return ecs !== null && ecs.sourcePrefix > 0 ? { kind: 'sites', sites: chosen, reason, scope: ecs.sourcePrefix } : { kind: 'sites', sites: chosen, reason };
    }
    case 'cost': {
      let chosen = sites[0];
      for (const site of sites) if (site.cost < chosen.cost) chosen = site;
      return { kind: 'sites', sites: [chosen], reason: `${why} (by cost)` };
    }
    case 'load': {
      const picked = leastBusy(name, sites, family, snapshot, client, env);
      if (picked?.kind !== 'sites') return picked;
      return { ...picked, reason: `${why} (by load)` };
    }
  }
}

/**
 * Rendezvous (highest random weight) hashing of the client's network over the sites: stable for a
 * client, and removing a site moves only the clients that were on it. The network is the ECS
 * prefix, or the resolver's /24 (IPv4) or /56 (IPv6), so one resolver's clients stay together.
 */
export function byClientHash(sites: readonly SiteModel[], client: ClientInfo): SiteModel {
  const net = clientNetwork(client);
  let clientHash = 0x811c9dc5;
  if (net !== undefined) {
    const keep = net.fromEcs ? net.bytes.length : net.family === 4 ? 3 : 7;
    for (let i = 0; i < keep; i++) clientHash = Math.imul(clientHash ^ net.bytes[i], 0x01000193);
  }
  let best = sites[0];
  let bestScore = -1;
  for (const site of sites) {
    let h = clientHash;
    for (let i = 0; i < site.key.length; i++) h = Math.imul(h ^ site.key.charCodeAt(i), 0x01000193);
    // Final avalanche (murmur3 fmix32) so nearby inputs spread.
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    const score = h >>> 0;
    if (score > bestScore) {
      best = site;
      bestScore = score;
    }
  }
  return best;
}
