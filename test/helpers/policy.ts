/** Helpers for the policy table tests: hand-built zones, snapshots, envs. */
import type { DynamicName, ZoneModel } from '../../src/model/zone-model.js';
import { PolicyMemory } from '../../src/policy/memory.js';
import type { ClientInfo, PolicyEnv } from '../../src/policy/types.js';
import type { Selection } from '../../src/model/selection.js';
import { EMPTY_SNAPSHOT, makeSnapshot, type SiteState, type StateSnapshot } from '../../src/state/snapshot.js';
import { makeZoneSet } from '../../src/config/compile.js';
import { decideCurrentSites } from '../../src/policy/hysteresis.js';
import { compileText } from './dns.js';

export const NOW = 1_700_000_000_000;

/** A zone with the given sites/groups/pool YAML fragments (indented by the caller). */
export function zoneOf(body: string): ZoneModel {
  const text = `zone: t.test\nsoa: { mname: ns1.t.test, rname: h.t.test }\nnameservers: { ns1.t.test: [192.0.2.53] }\n${body}`;
  return [...compileText(text).zones.values()][0];
}

export function nameOf(zone: ZoneModel, relative: string): DynamicName {
  const fq = relative === '@' ? zone.origin : `${relative}.${zone.origin}`;
  const found = zone.dynamicNames.find((d) => d.name === fq);
  if (!found) throw new Error(`no dynamic name ${fq}`);
  return found;
}

/** Site id -> state (partial); `up` defaults to true, loads are measured at NOW unless given. */
export function snap(states: Record<string, Partial<SiteState> & { u?: number }>, zone = 't.test'): StateSnapshot {
  const map = new Map<string, SiteState>();
  for (const [id, s] of Object.entries(states)) {
    const { u, ...rest } = s;
    map.set(`${zone}/${id}`, { up: true, ...(u !== undefined ? { utilization: u, loadAt: NOW } : {}), ...rest });
  }
  return makeSnapshot(map, true, NOW);
}

/**
 * `snapshot` with the hysteresis current sites the state pipeline would publish with it, decided
 * from the ones `previous` published (policy/hysteresis.ts `decideCurrentSites`).
 */
export function withCurrentSites(zone: ZoneModel, snapshot: StateSnapshot, previous: StateSnapshot = EMPTY_SNAPSHOT): StateSnapshot {
  const current = decideCurrentSites(makeZoneSet([zone]), previous.currentSites, snapshot.sites, snapshot.takenAt);
  return makeSnapshot(snapshot.sites, snapshot.fresh, snapshot.takenAt, current);
}

/** An env whose random() returns the given values in turn (repeating), clock fixed at `now`. */
export function env(randoms: number[] = [0], now = NOW, memory: PolicyMemory | null = new PolicyMemory()): PolicyEnv & { setNow(n: number): void } {
  let i = 0;
  let t = now;
  return { now: () => t, random: () => randoms[i++ % randoms.length], memory: memory ?? undefined, setNow: (n: number) => (t = n) };
}

/** A deterministic uniform sequence (for share counts without flaky randomness). */
export function lcg(seed = 1): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export const RESOLVER: ClientInfo = { address: '192.0.2.1', ecs: null };

/** What a selection answers, compactly: site ids joined, or the kind. */
export function answerOf(s: Selection): string {
  return s.kind === 'sites' ? s.sites.map((x) => x.id).join(',') : s.kind;
}
