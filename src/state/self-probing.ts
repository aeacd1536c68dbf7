/**
 * Fail static with a bound: a nameserver following the store that has heard no live prober for
 * `staleAfterMs` (while the store answers) probes the sites itself, with the embedded prober
 * over a store of its own (app/serve-app.ts), and answers from its own verdicts until a prober
 * heart-beats again. Its views stay in this process: they are one nameserver's verdicts from one
 * place, not a prober's vote that every nameserver would count.
 *
 * The hand-back: a prober's first heartbeat comes before its first round of views, and a prober
 * restarted with the same id still has the views of its earlier life in the store (a prober
 * publishes nothing while a site is `unknown` to it, so a view from before its restart can stay
 * for as long as its anti-flap machine takes to decide: 6 timeouts and their re-checks can pass
 * 12 s). So a site keeps this nameserver's verdict until a live prober has written a view of it
 * in its current life (checked at or after the prober started). Self-probing stops once the live
 * probers have done so for every site it has a verdict of, or HANDBACK_LIMIT_MS after the first
 * heartbeat; at the limit the verdicts that say down stay overlaid, each until a current view of
 * its site exists (a dead site is never answered for an old view), and the ones that say up go.
 */
import { selfProbing as selfProbingGauge } from '../metrics/definitions.js';
import type { Logger } from '../util/logger.js';
import { combineSite } from './combine.js';
import type { SiteState } from './snapshot.js';
import type { ProbeView, StoreContents } from './types.js';

/** What probes for the nameserver: started when the probers fall silent, stopped when they are back. */
export interface SelfProber {
  /** Starts probing; each verdict (null: none, or the site is gone) goes to `onView`. */
  start(onView: (key: string, view: ProbeView | null) => void): void;
  stop(): void;
}

/** How long after a prober's first heartbeat its missing views are waited for at most. */
export const HANDBACK_LIMIT_MS = 10_000;

/** The voter id of this nameserver's own views (it never appears in the store). */
const SELF = 'self';

export interface QuietInput {
  readonly storeUp: boolean;
  readonly liveProbers: number;
  /** The newest prober heartbeat seen, or the first read of the store when none was (ms). */
  readonly quietSince: number;
  readonly now: number;
  readonly staleAfterMs: number;
}

/** Whether to start probing for ourselves: the store answers, and no prober has been live for `staleAfterMs`. */
export function shouldSelfProbe(q: QuietInput): boolean {
  return q.storeUp && q.liveProbers === 0 && q.now - q.quietSince >= q.staleAfterMs;
}

/** Whether a live prober has a view of `key` from its current life (written since it started). */
export function liveProberHasCurrentView(contents: StoreContents, live: readonly string[], key: string): boolean {
  for (const id of live) {
    const view = contents.views.get(id)?.get(key);
    const info = contents.probers.get(id);
    if (view !== undefined && info !== undefined && view.checkedAt >= info.startedAt) return true;
  }
  return false;
}

/** Whether the live probers have a current view of every site in `keys`. */
export function handedBack(contents: StoreContents, live: readonly string[], keys: Iterable<string>): boolean {
  if (live.length === 0) return false;
  for (const key of keys) if (!liveProberHasCurrentView(contents, live, key)) return false;
  return true;
}

export class SelfProbing {
  private readonly views = new Map<string, ProbeView>();
  /** When self-probing started (undefined: not probing). */
  private since: number | undefined;
  /** When a prober was first seen live again while self-probing. */
  private liveAgainAt: number | undefined;
  private readonly log: Logger;

  constructor(
    private readonly prober: SelfProber,
    logger: Logger,
    private readonly staleAfterMs: number,
    /** Called when a verdict of ours changed: the follower recomputes. */
    private readonly onChange: (urgent: boolean) => void,
  ) {
    this.log = logger;
    selfProbingGauge.set(0);
  }

  get active(): boolean {
    return this.since !== undefined;
  }

  /** Whether some own verdict is overlaid on the combined states (while probing, or held down after it). */
  get overlaying(): boolean {
    return this.views.size > 0;
  }

  /** Starts or stops self-probing for what the store says at `now` (every recompute calls it). */
  update(contents: StoreContents, live: readonly string[], storeUp: boolean, quietSince: number, now: number): void {
    if (this.since === undefined) {
      if (shouldSelfProbe({ storeUp, liveProbers: live.length, quietSince, now, staleAfterMs: this.staleAfterMs })) this.begin(now, quietSince);
      else for (const key of this.views.keys()) if (liveProberHasCurrentView(contents, live, key)) this.views.delete(key);
      return;
    }
    if (live.length === 0) {
      this.liveAgainAt = undefined;
      return;
    }
    this.liveAgainAt ??= now;
    const complete = handedBack(contents, live, this.views.keys());
    if (complete || now - this.liveAgainAt >= HANDBACK_LIMIT_MS) this.end(now, live, complete);
  }

  /**
   * Puts this nameserver's verdicts into freshly combined site states: for every site it has
   * one of and no live prober has a current view of. A forced state still wins (combineSite).
   */
  overlay(sites: Map<string, SiteState>, contents: StoreContents, live: readonly string[], now: number): void {
    if (this.views.size === 0) return;
    const own: StoreContents = { ...contents, probers: new Map(), views: new Map([[SELF, this.views]]) };
    const voters = { live: [SELF], stale: false, voters: [SELF] };
    for (const key of this.views.keys()) {
      if (liveProberHasCurrentView(contents, live, key)) continue;
      const state = combineSite(own, key, voters, now);
      if (state !== undefined) sites.set(key, state);
    }
  }

  stop(): void {
    if (this.since !== undefined) this.prober.stop();
    this.since = undefined;
    this.views.clear();
  }

  private begin(now: number, quietSince: number): void {
    this.since = now;
    this.liveAgainAt = undefined;
    this.views.clear();
    selfProbingGauge.set(1);
    this.log.warn({ quietMs: now - quietSince, staleAfterMs: this.staleAfterMs }, 'no live prober: this nameserver probes the sites itself until a prober heart-beats again');
    this.prober.start((key, view) => this.verdict(key, view));
  }

  private end(now: number, live: readonly string[], complete: boolean): void {
    this.prober.stop();
    this.log.info({ probers: live, selfProbedMs: now - this.since!, waitedMs: now - this.liveAgainAt!, complete }, complete ? 'probers heart-beating again with a view of every site: self-probing stopped' : 'probers heart-beating again; not every site has their view yet, but self-probing stops after the hand-back limit');
    this.since = undefined;
    this.liveAgainAt = undefined;
    // Past the limit: the down verdicts stay until a current view of their site exists (update()).
    for (const [key, view] of this.views) if (complete || view.up) this.views.delete(key);
    selfProbingGauge.set(0);
    this.onChange(true);
  }

  private verdict(key: string, view: ProbeView | null): void {
    if (this.since === undefined) return;
    const before = this.views.get(key);
    if (view === null) this.views.delete(key);
    else this.views.set(key, { ...view, reason: `${view.reason} (probed by this nameserver: no live prober)` });
    this.onChange(before === undefined || view === null || before.up !== view.up);
  }
}
