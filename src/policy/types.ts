/**
 * The policy contract: a pure function of (name entry, state snapshot, client, injected clock,
 * random source and memory) -> Selection. No I/O, no awaits; `explain` replays the same call.
 * The only state carried between queries is the explicit PolicyMemory in the env (memory.ts).
 */
import type { ClientSubnet } from '../dns/decode.js';
import type { DynamicName, SiteModel } from '../model/zone-model.js';
import type { Selection } from '../model/selection.js';
import type { StateSnapshot } from '../state/snapshot.js';
import { PolicyMemory } from './memory.js';

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
  /**
   * Per-name and per-site memory (round-robin position, answers since the last load report).
   * Absent: policies behave as if every query were the first (round-robin starts at the first
   * site, least-busy adds no correction). Hysteresis keeps none: its current site comes with
   * the snapshot (hysteresis.ts).
   */
  readonly memory?: PolicyMemory;
  /**
   * Told the sites and weights of each weighted draw a policy makes, before it draws. explain
   * shows them; the query path leaves it unset.
   */
  readonly observeDraw?: (sites: readonly SiteModel[], weights: readonly number[]) => void;
  /**
   * With a memory: a name's weighted picks take their draw points from one evenly spread
   * sequence per name and address family (PolicyMemory.evenDraw) instead of one independent `random()` each, so in
   * any report interval the answers follow the weights to within a few, and a ramping site's
   * bound holds in the counts, not only on average. The answering env sets it; tests that
   * script each draw through `random` leave it unset.
   */
  readonly evenDraws?: boolean;
}

export type Family = 4 | 6;

export type Policy = (
  name: DynamicName,
  family: Family,
  snapshot: StateSnapshot,
  client: ClientInfo,
  env: PolicyEnv,
) => Selection;

/**
 * The candidate list a policy chooses from. Usually `name.sites`; topology narrows a Pool Name
 * to the client's group first (topology.ts), so policies take the list as an argument.
 */
export type SitePolicy = (
  name: DynamicName,
  candidates: readonly SiteModel[],
  family: Family,
  snapshot: StateSnapshot,
  client: ClientInfo,
  env: PolicyEnv,
) => Selection | undefined;

export function hasFamily(site: SiteModel, family: Family): boolean {
  return family === 4 ? site.v4.length > 0 : site.v6.length > 0;
}

/** The real clock and random source, even draws. The Handler adds its own PolicyMemory (withMemory). */
export const systemEnv: PolicyEnv = { now: Date.now, random: Math.random, evenDraws: true };

/** `env` itself when it carries a memory, else the same clock, random source and draws with a new one. */
export function withMemory(env: PolicyEnv): PolicyEnv {
  return env.memory !== undefined ? env : { now: env.now, random: env.random, memory: new PolicyMemory(), evenDraws: env.evenDraws };
}

/** The draw point in [0, 1) of one weighted pick for `name` and `family` (see `evenDraws`). */
export function drawFor(name: DynamicName, family: Family, env: PolicyEnv): number {
  return env.evenDraws === true && env.memory !== undefined ? env.memory.evenDraw(name, family, env.random) : env.random();
}
