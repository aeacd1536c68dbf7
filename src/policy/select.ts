/**
 * Chooses the answer for a dynamic name (the one entry point the handler calls):
 * - Site Names fail over in order (DNS Failover role, failover.ts);
 * - Pool Names of an offload pool follow the thresholds (offload.ts);
 * - other Pool Names: topology narrows the candidates to the client's group (falling back to the
 *   whole pool when that group has no usable site), then the pool's policy chooses, wrapped in
 *   hysteresis when the pool sets it;
 * - Group Names: the pool's policy within the group (topology does not apply).
 * Nothing chosen: the all_down rule (flagged as the all-down state only when no candidate is up).
 */
import type { DynamicName, PolicyName, SiteModel } from '../model/zone-model.js';
import type { StateSnapshot } from '../state/snapshot.js';
import { nothingChosen } from './all-down.js';
import { failover } from './failover.js';
import { withHysteresis } from './hysteresis.js';
import { leastBusy } from './least-busy.js';
import { offloadSelect } from './offload.js';
import { first, random, roundRobin, weighted } from './simple.js';
import { matchTopology } from './topology.js';
import type { ClientInfo, Family, PolicyEnv, SitePolicy } from './types.js';
import type { Selection } from '../model/selection.js';

/** Group Names of an offload pool balance by load within their group. */
const PLAIN: Record<PolicyName, SitePolicy> = {
  'least-busy': leastBusy,
  'round-robin': roundRobin,
  weighted,
  random,
  first,
  offload: leastBusy,
};
const WITH_HYSTERESIS = Object.fromEntries(Object.entries(PLAIN).map(([k, p]) => [k, withHysteresis(p)])) as Record<PolicyName, SitePolicy>;

export function selectAnswer(name: DynamicName, family: Family, snapshot: StateSnapshot, client: ClientInfo, env: PolicyEnv): Selection {
  if (name.kind === 'site') return failover(name, family, snapshot, client, env);
  const pool = name.pool;
  if (pool === undefined) return leastBusy(name, name.sites, family, snapshot, client, env) ?? nothingChosen(name, family, snapshot);
  if (name.kind === 'pool' && pool.policy === 'offload') {
    return offloadSelect(name, pool, family, snapshot, client, env) ?? nothingChosen(name, family, snapshot);
  }
  const policy = (pool.hysteresis !== undefined ? WITH_HYSTERESIS : PLAIN)[pool.policy];
  if (name.kind !== 'pool' || (pool.topology.length === 0 && pool.defaultGroup === undefined)) {
    return policy(name, name.sites, family, snapshot, client, env) ?? nothingChosen(name, family, snapshot);
  }
  const { group, scope } = matchTopology(pool, client);
  let selection: Selection | undefined;
  if (group !== undefined) selection = policy(name, group.sites as readonly SiteModel[], family, snapshot, client, env);
  // The client's group has no usable site: the whole pool serves it (seed 004, "Group").
  selection ??= policy(name, name.sites, family, snapshot, client, env) ?? nothingChosen(name, family, snapshot);
  return scope === undefined ? selection : { ...selection, scope };
}
