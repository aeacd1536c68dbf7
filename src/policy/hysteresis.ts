/**
 * Hysteresis (seed 002, stages S203-S209), optional per pool (`hysteresis: {stay_below,
 * differential}`): keep answering the current site while its utilization is below the first
 * level (seed: 50 %); above it, move only when another up site is lower by at least the
 * differential (seed: 20 points), and then to the least loaded one (S208).
 *
 * The current site is decided once per snapshot, not per query: `decideCurrentSites` is the
 * stay-or-move rule as a pure function of (zones, previous current sites, site states, now),
 * evaluated where snapshots are built (state/follower.ts) and published with the snapshot
 * (`StateSnapshot.currentSites`), so every answerer (thread, process, nameserver) that holds the
 * same snapshot answers the same site. No randomness: the first pick and every move break ties
 * by the sites' configured order.
 *
 * Each candidate list has its own current site: the pool, and each group of it (a topology group
 * of the Pool Name, or the Group Name). `withHysteresis` answers the published current site; a
 * list without one (every site down, or a snapshot built without zones) is answered by the
 * wrapped policy, and so is a query for a family the current site lacks.
 */
import type { PoolModel, SiteModel, ZoneSet } from '../model/zone-model.js';
import { stateOf, type SiteState, type StateSnapshot } from '../state/snapshot.js';
import { oneSite } from './candidates.js';
import { utilizationOf } from './load.js';
import { hasFamily, type SitePolicy } from './types.js';

/** One candidate list that keeps a current site: a hysteresis pool's sites, or one group's. */
export interface HysteresisList {
  /** `<pool name>` for the pool, `<pool name>/<group id>` for a group of it (docs/state.md). */
  readonly key: string;
  readonly pool: PoolModel;
  readonly settings: { readonly stayBelow: number; readonly differential: number };
  readonly sites: readonly SiteModel[];
}

const listsOfZones = new WeakMap<ZoneSet, readonly HysteresisList[]>();
/** Per pool: candidate list (by identity, as select.ts passes it) -> its key. */
const keysOfPools = new WeakMap<PoolModel, Map<readonly SiteModel[], string>>();

function keysOf(pool: PoolModel): Map<readonly SiteModel[], string> {
  let keys = keysOfPools.get(pool);
  if (keys === undefined) {
    keys = new Map([[pool.sites, pool.name]]);
    for (const group of pool.groups) keys.set(group.sites, `${pool.name}/${group.id}`);
    keysOfPools.set(pool, keys);
  }
  return keys;
}

/** Every hysteresis candidate list of the zone set (computed once per zone set). */
export function hysteresisLists(zones: ZoneSet): readonly HysteresisList[] {
  let lists = listsOfZones.get(zones);
  if (lists === undefined) {
    const found: HysteresisList[] = [];
    for (const zone of zones.zones.values()) {
      for (const pool of zone.pools) {
        const settings = pool.hysteresis;
        if (settings === undefined) continue;
        for (const [sites, key] of keysOf(pool)) found.push({ key, pool, settings, sites });
      }
    }
    listsOfZones.set(zones, (lists = Object.freeze(found)));
  }
  return lists;
}

/** The rule's inputs for one site: up, and its utilization (undefined: unknown or stale). */
function usableUtilization(site: SiteModel, states: ReadonlyMap<string, SiteState>, now: number): { up: boolean; u: number | undefined } {
  const state = states.get(site.key);
  if (state === undefined) return { up: true, u: undefined }; // not probed: up, load unknown (snapshot.ts)
  return { up: state.up, u: state.up ? utilizationOf(site, state, now) : undefined };
}

/**
 * The stay-or-move rule for one list (pure, deterministic):
 * - `previous` up and a candidate, its utilization unknown/stale or below `stayBelow`: stay;
 * - above it: move to the least utilized other up site when that one is lower by at least
 *   `differential`, else stay;
 * - no previous, or it is down (drained) or no longer a candidate: the least utilized up site,
 *   sites with an unknown or stale load after every measured one;
 * - no site up: none.
 * Ties go to the site listed first.
 */
export function nextCurrentSite(list: HysteresisList, previous: SiteModel | undefined, states: ReadonlyMap<string, SiteState>, now: number): SiteModel | undefined {
  let best: SiteModel | undefined;
  let bestU = Infinity;
  let firstUp: SiteModel | undefined;
  let previousU: number | undefined;
  let previousUp = false;
  for (const site of list.sites) {
    const { up, u } = usableUtilization(site, states, now);
    if (!up) continue;
    firstUp ??= site;
    if (site === previous) {
      previousUp = true;
      previousU = u;
      continue;
    }
    if (u !== undefined && u < bestU) {
      best = site;
      bestU = u;
    }
  }
  if (previous !== undefined && previousUp) {
    if (previousU === undefined || previousU < list.settings.stayBelow) return previous;
    // The epsilon keeps "exactly the differential" a move despite binary fractions (0.7 - 0.2).
    return best !== undefined && bestU <= previousU - list.settings.differential + 1e-9 ? best : previous;
  }
  return best ?? firstUp;
}

/**
 * The current site of every hysteresis list of `zones`, given the previous ones (list key -> site
 * id) and the site states at `now`. Lists with no site up have none. Equal inputs give equal
 * outputs in every process.
 */
export function decideCurrentSites(zones: ZoneSet, previous: ReadonlyMap<string, string>, states: ReadonlyMap<string, SiteState>, now: number): Map<string, string> {
  const current = new Map<string, string>();
  for (const list of hysteresisLists(zones)) {
    const id = previous.get(list.key);
    const before = id === undefined ? undefined : list.sites.find((site) => site.id === id);
    const next = nextCurrentSite(list, before, states, now);
    if (next !== undefined) current.set(list.key, next.id);
  }
  return current;
}

/** The published current site of (pool, candidate list), when it is up and still a candidate. */
export function currentSiteOf(pool: PoolModel, candidates: readonly SiteModel[], snapshot: StateSnapshot): SiteModel | undefined {
  if (snapshot.currentSites.size === 0) return undefined;
  const key = keysOf(pool).get(candidates);
  const id = key === undefined ? undefined : snapshot.currentSites.get(key);
  if (id === undefined) return undefined;
  for (const site of candidates) if (site.id === id) return stateOf(snapshot, site.key).up ? site : undefined;
  return undefined;
}

export function withHysteresis(base: SitePolicy): SitePolicy {
  return (name, candidates, family, snapshot, client, env) => {
    const current = name.pool === undefined ? undefined : currentSiteOf(name.pool, candidates, snapshot);
    if (current === undefined || !hasFamily(current, family)) return base(name, candidates, family, snapshot, client, env);
    return oneSite(current, 'hysteresis: the current site');
  };
}
