/**
 * Prepared selection: the part of a policy's choice that depends only on the state
 * snapshot, worked out once per snapshot instead of once per query.
 *
 * selectAnswer (select.ts) is the reference and stays a pure function of (name, family,
 * snapshot, client, env). For the common cases its result is a function of the snapshot alone,
 * or of the snapshot and one random draw:
 *   - Site Names (failover) and `first` pools: the same Selection for every query until the
 *     snapshot changes;
 *   - `least-busy` pools and groups (no hysteresis, topology, load_per_answer or answers > 1):
 *     the usable sites and their headroom weights, then one draw per query (types.ts drawFor)
 *     mapped to a site exactly as leastBusy maps it. The weights also depend on time, but only
 *     through the staleness of load reports, so they hold until a fresh load turns stale (or
 *     the clock moves back past a stale one): the window of load.ts's loadWindow().
 * Everything else (offload, topology, hysteresis, round-robin, weighted, random, several answers,
 * load_per_answer) depends on the client or on per-query memory and goes to selectAnswer.
 *
 * A query then costs a snapshot identity check (and a clock read only while some load carries a
 * timestamp) instead of a filter, Map lookups and arrays. The result is the very Selection object
 * selectAnswer would give (shared one-site selections, candidates.ts), and
 * test/policy/prepared.test.ts replays random snapshots, times and draws through both.
 *
 * One instance per (name, family), owned by the prebuilt table (server/fast-path.ts), which a
 * ZoneSet's handlers share: that is safe because the cache is keyed by the snapshot and time
 * only, and JavaScript runs one query at a time.
 */
import type { DynamicName } from '../model/zone-model.js';
import { stateOf, type SiteState, type StateSnapshot } from '../state/snapshot.js';
import { nothingChosen } from './all-down.js';
import { oneSite, usable, weightedIndex } from './candidates.js';
import { headroomWeights, LEAST_BUSY } from './least-busy.js';
import { loadWindow } from './load.js';
import { selectAnswer } from './select.js';
import { drawFor, type ClientInfo, type Family, type PolicyEnv } from './types.js';
import type { Selection } from '../model/selection.js';

/** How a name's selection can be prepared. */
export type PreparedKind =
  /** Depends on the snapshot only (failover, first). */
  | 'fixed'
  /** Snapshot and time windows give weights; one draw per query picks. */
  | 'least-busy'
  /** Depends on the client or per-query memory: selectAnswer every time. */
  | 'per-query';

/** Which way `name` is answered (mirrors the branches of selectAnswer). */
export function preparedKind(name: DynamicName): PreparedKind {
  if (name.kind === 'site') return 'fixed';
  const pool = name.pool;
  if (pool === undefined) return 'least-busy'; // selectAnswer: leastBusy over name.sites
  if (name.kind === 'pool' && pool.policy === 'offload') return 'per-query';
  if (pool.hysteresis !== undefined) return 'per-query';
  if (name.kind === 'pool' && (pool.topology.length > 0 || pool.defaultGroup !== undefined)) return 'per-query';
  if ((pool.answers ?? 1) > 1) return 'per-query';
  if (pool.policy === 'first') return 'fixed';
  // Group Names of an offload pool balance by load like least-busy (select.ts, PLAIN).
  if ((pool.policy === 'least-busy' || pool.policy === 'offload') && !((pool.loadPerAnswer ?? 0) > 0)) return 'least-busy';
  return 'per-query';
}

export class PreparedSelection {
  readonly kind: PreparedKind;
  private snapshot: StateSnapshot | null = null;
  /** The window (after, until] (ms) in which the prepared weights hold. */
  private readonly window = { after: -Infinity, until: Infinity };
  /** True when the window matters (some load carries a timestamp): read the clock per query. */
  private timed = false;
  /** The answer for every query of this snapshot, or null when a draw decides. */
  private fixed: Selection | null = null;
  private readonly weights: number[] = [];
  private readonly utilizations: (number | undefined)[] = [];
  private readonly states: SiteState[] = [];
  /** Per usable site, its shared one-site selection (what leastBusy returns for it). */
  private readonly choices: Selection[] = [];

  constructor(
    readonly name: DynamicName,
    readonly family: Family,
  ) {
    this.kind = preparedKind(name);
  }

  /** The same Selection selectAnswer(name, family, snapshot, client, env) gives. */
  select(snapshot: StateSnapshot, client: ClientInfo, env: PolicyEnv): Selection {
    if (this.kind === 'per-query') return selectAnswer(this.name, this.family, snapshot, client, env);
    if (this.snapshot !== snapshot) {
      this.prepare(snapshot, client, env, this.kind === 'least-busy' ? env.now() : 0);
    } else if (this.timed) {
      const now = env.now();
      if (now <= this.window.after || now > this.window.until) this.prepare(snapshot, client, env, now);
    }
    if (this.fixed !== null) return this.fixed;
    return this.choices[weightedIndex(this.weights, drawFor(this.name, this.family, env))];
  }

  private prepare(snapshot: StateSnapshot, client: ClientInfo, env: PolicyEnv, now: number): void {
    // The snapshot is recorded only once everything is computed: if a policy throws on a broken
    // snapshot, the next query tries again (and fails the same way) instead of using half a plan.
    this.snapshot = null;
    this.timed = false;
    this.fixed = null;
    if (this.kind === 'fixed') {
      this.fixed = selectAnswer(this.name, this.family, snapshot, client, env);
    } else {
      this.prepareLeastBusy(snapshot, now);
    }
    this.snapshot = snapshot;
  }

  /** leastBusy (least-busy.ts) with perAnswer 0 and one answer, step by step. */
  private prepareLeastBusy(snapshot: StateSnapshot, now: number): void {
    const sites = usable(this.name.sites, this.family, snapshot);
    if (sites.length === 0) {
      this.fixed = nothingChosen(this.name, this.family, snapshot);
      return;
    }
    if (sites.length === 1) {
      this.fixed = oneSite(sites[0], LEAST_BUSY);
      return;
    }
    headroomWeights(sites, snapshot, now, 0, undefined, this.weights, this.utilizations);
    this.states.length = 0;
    this.choices.length = 0;
    for (const site of sites) {
      this.states.push(stateOf(snapshot, site.key));
      this.choices.push(oneSite(site, LEAST_BUSY));
    }
    loadWindow(sites, this.states, now, this.window);
    this.timed = this.window.after !== -Infinity || this.window.until !== Infinity;
  }
}
