/**
 * The simple policies (docs/policies.md): `first` (ordered: the first usable site, failover only),
 * `round-robin` (each usable site in turn, position kept in PolicyMemory), `weighted` (drawn in
 * proportion to capacity, draw points evenly spread when answering: types.ts `evenDraws`),
 * `random` (uniformly). None reads loads.
 */
import { answerWith, usable, weightedIndex } from './candidates.js';
import { drawFor, type SitePolicy } from './types.js';

export const first: SitePolicy = (name, candidates, family, snapshot) => {
  const sites = usable(candidates, family, snapshot);
  if (sites.length === 0) return undefined;
  return answerWith(name, sites[0], sites, sites[0] === candidates[0] ? 'first in order, up' : `first up in order (${candidates[0].id} unusable)`);
};

export const roundRobin: SitePolicy = (name, candidates, family, snapshot, _client, env) => {
  const sites = usable(candidates, family, snapshot);
  if (sites.length === 0) return undefined;
  // Without memory every query is the first: the first usable site.
  const memory = env.memory?.of(name);
  const position = memory === undefined ? 0 : memory.next++ % sites.length;
  if (memory !== undefined && memory.next >= Number.MAX_SAFE_INTEGER) memory.next = 0;
  return answerWith(name, sites[position], sites, 'round robin', position);
};

export const weighted: SitePolicy = (name, candidates, family, snapshot, _client, env) => {
  const sites = usable(candidates, family, snapshot);
  if (sites.length === 0) return undefined;
  if (sites.length === 1) return answerWith(name, sites[0], sites, 'weighted by capacity');
  const weights = sites.map((s) => s.capacity);
  env.observeDraw?.(sites, weights);
  const index = weightedIndex(weights, drawFor(name, family, env));
  return answerWith(name, sites[index], sites, 'weighted by capacity', index + 1);
};

export const random: SitePolicy = (name, candidates, family, snapshot, _client, env) => {
  const sites = usable(candidates, family, snapshot);
  if (sites.length === 0) return undefined;
  env.observeDraw?.(sites, sites.map(() => 1));
  const index = Math.min(sites.length - 1, Math.floor(env.random() * sites.length));
  return answerWith(name, sites[index], sites, 'random', index + 1);
};
