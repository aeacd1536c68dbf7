/**
 * PolicyMemory: the only state policies keep between queries, passed in explicitly through
 * `PolicyEnv.memory` (never a module global), so a policy stays a function of its inputs:
 * (name, family, snapshot, client, env{now, random, memory}) -> Selection, plus the memory update
 * it documents. Tests hand a fresh memory to each case; the Handler owns one per process.
 *
 * Per site (by site key), `answers`: answers handed out in short time buckets, whichever name
 * handed them out, so least-busy can add "what we sent since the load was measured" to a load
 * report that is seconds old (docs/policies.md).
 *
 * Per Pool/Group/Site Name (keyed by the compiled DynamicName object, so a zone reload starts
 * afresh and dropped names are collected) it holds:
 * - `next`: the round-robin position;
 * - `current`: the site hysteresis is staying on (seed 002 stage S203);
 * - `allDown`: whether the name was last answered in the all-down state; only the handler's
 *   all-down watch reads and writes it (transitions are logged and counted, never per query).
 */
import type { DynamicName, SiteModel } from '../model/zone-model.js';

/** Width of one answer-count bucket. A quarter of the usual report interval, so little is over-counted. */
export const ANSWER_BUCKET_MS = 250;
/** Buckets kept per site: 128 x 250 ms = 32 s, longer than a load report is trusted. */
const BUCKETS = 128;

/** Answers handed out for one site, in a ring of time buckets. */
export class AnswerLog {
  private readonly counts = new Float64Array(BUCKETS);
  private readonly stamps = new Float64Array(BUCKETS).fill(-1);

  record(now: number, weight = 1): void {
    const bucket = Math.floor(now / ANSWER_BUCKET_MS);
    const slot = bucket % BUCKETS;
    if (this.stamps[slot] !== bucket) {
      this.stamps[slot] = bucket;
      this.counts[slot] = 0;
    }
    this.counts[slot] += weight;
  }

  /**
   * Answers recorded from the bucket holding `since` up to `now`. The bucket holding `since` is
   * counted whole: a slight over-count, which errs towards spreading rather than herding.
   */
  since(since: number, now: number): number {
    const last = Math.floor(now / ANSWER_BUCKET_MS);
    const first = Math.max(Math.floor(since / ANSWER_BUCKET_MS), last - BUCKETS + 1);
    let total = 0;
    for (let bucket = first; bucket <= last; bucket++) {
      const slot = bucket % BUCKETS;
      if (this.stamps[slot] === bucket) total += this.counts[slot];
    }
    return total;
  }
}

export interface NameMemory {
  /** Round-robin position (grows without bound; used modulo the candidate count). */
  next: number;
  /**
   * Hysteresis: the site this name currently sticks to, per candidate list (the whole pool, or
   * the client's topology group: each keeps its own current site).
   */
  readonly current: Map<readonly SiteModel[], SiteModel>;
  /** Whether the last answer was an all-down answer (the handler's all-down watch only). */
  allDown: boolean;
}

export class PolicyMemory {
  private readonly names = new WeakMap<DynamicName, NameMemory>();
  /** Site key -> answers handed out (least-busy's since-report correction). */
  private readonly answers = new Map<string, AnswerLog>();

  of(name: DynamicName): NameMemory {
    let memory = this.names.get(name);
    if (memory === undefined) {
      memory = { next: 0, current: new Map(), allDown: false };
      this.names.set(name, memory);
    }
    return memory;
  }

  /** Counts one answer handing out `site` at `now`. */
  recordAnswer(site: SiteModel, now: number): void {
    let log = this.answers.get(site.key);
    if (log === undefined) this.answers.set(site.key, (log = new AnswerLog()));
    log.record(now);
  }

  /** Answers handed out for `site` since `since` (ms since the epoch). */
  answersSince(site: SiteModel, since: number, now: number): number {
    return this.answers.get(site.key)?.since(since, now) ?? 0;
  }
}
