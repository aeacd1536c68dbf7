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
 * - `drawA`, `drawAAAA`: the last draw point of its weighted picks per address family, with even
 *   draws (types.ts `evenDraws`): one sequence per family from its own random start, so a
 *   dual-stack client's A and AAAA picks share a site as often, over the starts, as independent
 *   draws do (docs/policies.md);
 * - `allDown`: whether the name was last answered in the all-down state; only the handler's
 *   all-down watch reads and writes it (transitions are logged and counted, never per query).
 */
import type { DynamicName, SiteModel } from '../model/zone-model.js';

/** Width of one answer-count bucket. A quarter of the usual report interval, so little is over-counted. */
export const ANSWER_BUCKET_MS = 250;
/** Buckets kept per site (a power of two): 128 x 250 ms = 32 s, longer than a load report is trusted. */
const BUCKETS = 128;

/**
 * Answers handed out for one site: a running total, and for each recent time bucket the total
 * when that bucket began, so "answers since t" is one subtraction in the busy case.
 *
 * Buckets are numbered from the log's creation so they stay small integers: a remainder of an
 * epoch-sized bucket number is a slow floating-point operation on the query path.
 */
export class AnswerLog {
  private total = 0;
  private readonly origin: number;
  private readonly startTotals = new Float64Array(BUCKETS);
  private readonly stamps = new Int32Array(BUCKETS).fill(-1);

  constructor(now: number) {
    this.origin = Math.floor(now / ANSWER_BUCKET_MS);
  }

  private bucketOf(time: number): number {
    const bucket = Math.floor(time / ANSWER_BUCKET_MS) - this.origin;
    return bucket < 0 ? 0 : bucket;
  }

  record(now: number, weight = 1): void {
    const bucket = this.bucketOf(now);
    const slot = bucket & (BUCKETS - 1);
    if (this.stamps[slot] !== bucket) {
      this.stamps[slot] = bucket;
      this.startTotals[slot] = this.total;
    }
    this.total += weight;
  }

  /**
   * Answers recorded from the bucket holding `since` up to `now`. The bucket holding `since` is
   * counted whole: a slight over-count, which errs towards spreading rather than herding.
   */
  since(since: number, now: number): number {
    const last = this.bucketOf(now);
    // The first bucket at or after `since` that saw an answer began at the total we subtract.
    for (let bucket = Math.max(this.bucketOf(since), last - BUCKETS + 1); bucket <= last; bucket++) {
      const slot = bucket & (BUCKETS - 1);
      if (this.stamps[slot] === bucket) return this.total - this.startTotals[slot];
    }
    return 0;
  }
}

export interface NameMemory {
  /** Round-robin position (grows without bound; used modulo the candidate count). */
  next: number;
  /** Whether the last answer was an all-down answer (the handler's all-down watch only). */
  allDown: boolean;
  /** The last draw point of the name's weighted picks for A (NaN before the first). */
  drawA: number;
  /** The same for AAAA, its own sequence from its own random start. */
  drawAAAA: number;
}

/**
 * 1/φ, the step between a name's successive draw points. The additive sequence frac(x0 + k/φ)
 * is the most evenly spread one (its gaps take at most three sizes, Steinhaus), so over any n
 * consecutive picks with the same weights each site gets its weighted share to within two
 * answers, where independent draws stray by about sqrt(n) (docs/balance.md).
 */
const EVEN_STEP = 0.6180339887498949;

export class PolicyMemory {
  private readonly names = new WeakMap<DynamicName, NameMemory>();
  /** Site key -> answers handed out (least-busy's since-report correction). */
  private readonly answers = new Map<string, AnswerLog>();

  of(name: DynamicName): NameMemory {
    let memory = this.names.get(name);
    if (memory === undefined) {
      memory = { next: 0, allDown: false, drawA: Number.NaN, drawAAAA: Number.NaN };
      this.names.set(name, memory);
    }
    return memory;
  }

  /**
   * The next draw point of `name`'s weighted picks for `family`: `random()` first, then steps of
   * 1/φ. A and AAAA keep separate sequences: in one shared sequence a client asking A then AAAA
   * would get two points 1/φ apart, with three equal sites never the same site, and seed 004
   * keeps a session on one site.
   */
  evenDraw(name: DynamicName, family: 4 | 6, random: () => number): number {
    const memory = this.of(name);
    if (family === 4) return (memory.drawA = Number.isNaN(memory.drawA) ? random() : (memory.drawA + EVEN_STEP) % 1);
    return (memory.drawAAAA = Number.isNaN(memory.drawAAAA) ? random() : (memory.drawAAAA + EVEN_STEP) % 1);
  }

  /** Counts one answer handing out `site` at `now`. */
  recordAnswer(site: SiteModel, now: number): void {
    let log = this.answers.get(site.key);
    if (log === undefined) this.answers.set(site.key, (log = new AnswerLog(now)));
    log.record(now);
  }

  /** Answers handed out for `site` since `since` (ms since the epoch). */
  answersSince(site: SiteModel, since: number, now: number): number {
    return this.answers.get(site.key)?.since(since, now) ?? 0;
  }
}
