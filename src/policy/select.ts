/**
 * Chooses the policy for a dynamic name: Site Names fail over (DNS Failover role); Pool and Group
 * Names load-balance with their pool's policy (DNS Load Balance role).
 */
import type { DynamicName } from '../model/zone-model.js';
import type { StateSnapshot } from '../state/snapshot.js';
import { failover } from './failover.js';
import { leastBusy } from './least-busy.js';
import type { ClientInfo, Family, Policy, PolicyEnv, Selection } from './types.js';

const POLICIES: Record<string, Policy> = {
  'least-busy': leastBusy,
  first: failover,
};

export function selectAnswer(name: DynamicName, family: Family, snapshot: StateSnapshot, client: ClientInfo, env: PolicyEnv): Selection {
  if (name.kind === 'site') return failover(name, family, snapshot, client, env);
  const policy = POLICIES[name.pool?.policy ?? 'least-busy'] ?? leastBusy;
  return policy(name, family, snapshot, client, env);
}
