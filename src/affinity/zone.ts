/**
 * "I am site X" in the zone the nameserver serves: the middleware reads the same zone file with
 * the same loader and compiler as `sitedns serve`, so Site, Group and Pool Names and the order of
 * each group are written once (seed 004, Appendix A definitions).
 */
import { compileZone } from '../config/compile.js';
import { formatProblem } from '../config/errors.js';
import { loadZoneFile } from '../config/load.js';
import type { GroupModel, PoolModel, SiteModel, ZoneModel } from '../model/zone-model.js';
import { AffinityError } from './errors.js';

export interface AffinityZone {
  readonly zone: ZoneModel;
  /** This site. */
  readonly self: SiteModel;
  /** The pool this site belongs to (its Pool Name is the load-balanced entry point). */
  readonly pool: PoolModel | undefined;
  /** Groups listing this site, in zone order (a site may serve several client bases). */
  readonly homeGroups: readonly GroupModel[];
  readonly siteById: ReadonlyMap<string, SiteModel>;
  readonly siteByName: ReadonlyMap<string, SiteModel>;
  /** Group id and Group Name -> group. */
  readonly groupByKey: ReadonlyMap<string, GroupModel>;
}

export function compileZoneFile(path: string): ZoneModel {
  const loaded = loadZoneFile(path);
  if ('problems' in loaded) throw new AffinityError('EAFFINITY_ZONE', loaded.problems.map(formatProblem).join('\n'));
  const compiled = compileZone(loaded);
  if ('problems' in compiled) throw new AffinityError('EAFFINITY_ZONE', compiled.problems.map(formatProblem).join('\n'));
  return compiled;
}

function bareName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

export function affinityZone(zone: ZoneModel, site: string): AffinityZone {
  const siteById = new Map(zone.sites.map((s) => [s.id, s]));
  const siteByName = new Map(zone.sites.map((s) => [s.name, s]));
  const self = siteById.get(site) ?? siteByName.get(bareName(site));
  if (!self) {
    const known = zone.sites.map((s) => `${s.id} (${s.name})`).join(', ') || 'none';
    throw new AffinityError('EAFFINITY_SITE', `zone ${zone.origin} has no site "${site}"; its sites: ${known}`);
  }
  const pool = zone.pools.find((p) => p.sites.includes(self));
  const homeGroups = zone.groups.filter((g) => g.sites.includes(self));
  if (!pool && homeGroups.length === 0) {
    throw new AffinityError('EAFFINITY_NOWHERE', `site ${self.id} is in no pool and no group of zone ${zone.origin}: there is no load-balanced name to redistribute new sessions to`);
  }
  const groupByKey = new Map<string, GroupModel>();
  for (const g of zone.groups) {
    groupByKey.set(g.id, g);
    groupByKey.set(g.name, g);
  }
  return Object.freeze({ zone, self, pool, homeGroups: Object.freeze(homeGroups), siteById, siteByName, groupByKey });
}
