/**
 * The one anti-flap state machine (docs/state.md "Anti-flap"). Pure: (state, input, config) ->
 * (state, next delay); fed by raw probe results, tested with tables (test/probe/debounce.test.ts).
 *
 * Fast failover and no false failover pull in opposite directions (a longer fall count
 * alone cannot meet both targets), so failures are told apart:
 * - A decisive failure is the site's own word that it is not serving: connection refused, a bad
 *   HTTP status, a body without the expected text, a TLS failure. `fall` consecutive decisive
 *   failures take the site down.
 * - A soft failure (timeout, reset) may be packet loss: the site goes down only after
 *   `softFall` consecutive failures (default 3 x fall). While the site's own pushed reports are
 *   fresh (seed 002: load exchange doubles as liveness), soft failures do not count at all.
 * - The first failure of a streak triggers rapid re-checks (`recheckMs`) instead of waiting a
 *   whole interval, so a dead site is confirmed in about one re-check, and rising needs `rise`
 *   consecutive successes, also re-checked rapidly.
 * The machine starts `unknown`: one success makes it up; a failure streak that would take an up
 * site down makes it down. An unknown site counts as up (never answer "all down" for lack of data).
 *
 * Flap damping (after RFC 2439's route-flap damping): every fall from up adds one to a penalty
 * that halves every `flapHalfLifeMs`. Going down is never delayed. Coming back is: while the
 * decayed penalty is above 1 (a second fall within about a half-life of the first), a site that
 * has met `rise` is held down until the penalty decays to 1, so a backend that flaps every second
 * is answered for a while, then left out for longer each time instead of cycling. The penalty is
 * capped at 8, so no hold lasts more than three half-lives. A half-life of 0 turns damping off.
 */

export type HealthStatus = 'unknown' | 'up' | 'down';

export interface ProbeResult {
  readonly ok: boolean;
  /** For failures: the site itself said no (refused, bad status) rather than silence (timeout). */
  readonly decisive: boolean;
  /** Short human reason: "HTTP 200", "connection refused", "timeout after 500ms". */
  readonly reason: string;
  readonly rttMs?: number;
  readonly load?: number;
}

export interface DebounceConfig {
  readonly rise: number;
  readonly fall: number;
  /** Consecutive failures of any kind that take the site down. */
  readonly softFall: number;
  readonly intervalMs: number;
  readonly recheckMs: number;
  /** The flap penalty's half-life (ms); 0: no damping. */
  readonly flapHalfLifeMs: number;
}

export interface HealthState {
  readonly status: HealthStatus;
  readonly okStreak: number;
  /** Decisive failures in the current failure streak. */
  readonly decisive: number;
  /** Failures that count in the current streak (soft ones excused by fresh pushed reports do not). */
  readonly counted: number;
  /** When `status` last changed (ms). */
  readonly since: number;
  readonly reason: string;
  /** Flap penalty as of `penaltyAt` (ms); it halves every flapHalfLifeMs. */
  readonly penalty: number;
  readonly penaltyAt: number;
}

/** Added to the penalty by each fall from up. */
const FLAP_PENALTY = 1;
/** A rising site is held down while its penalty is above this. */
const FLAP_REUSE = 1;
const FLAP_PENALTY_MAX = 8;
const DEFAULT_FLAP_HALF_LIFE_MS = 10_000;

/** The penalty decayed to `now`. */
function flapPenalty(state: HealthState, now: number, cfg: DebounceConfig): number {
  if (state.penalty === 0 || cfg.flapHalfLifeMs <= 0) return 0;
  return state.penalty * 2 ** (-Math.max(0, now - state.penaltyAt) / cfg.flapHalfLifeMs);
}

/** How long a site that could rise now stays held down (0: not held). */
export function flapHoldMs(state: HealthState, now: number, cfg: DebounceConfig): number {
  const penalty = flapPenalty(state, now, cfg);
  return penalty > FLAP_REUSE ? Math.ceil(cfg.flapHalfLifeMs * Math.log2(penalty / FLAP_REUSE)) : 0;
}

export interface StepInput {
  readonly result: ProbeResult;
  readonly now: number;
  /** The site's own pushed reports are fresh: soft failures are excused. */
  readonly pushAlive: boolean;
}

export interface StepOutput {
  readonly state: HealthState;
  readonly changed: boolean;
  /** Delay before the next probe (the scheduler adds jitter to full intervals only). */
  readonly nextInMs: number;
  readonly recheck: boolean;
}

export function initialHealth(now: number): HealthState {
  return { status: 'unknown', okStreak: 0, decisive: 0, counted: 0, since: now, reason: 'not probed yet', penalty: 0, penaltyAt: now };
}

export function debounceConfig(p: { rise?: number; fall?: number; intervalMs: number; softFall?: number; recheckMs?: number; flapHalfLifeMs?: number }): DebounceConfig {
  const rise = p.rise ?? 2;
  const fall = p.fall ?? 2;
  return {
    rise,
    fall,
    softFall: p.softFall ?? Math.max(fall * 3, fall + 2),
    intervalMs: p.intervalMs,
    recheckMs: p.recheckMs ?? Math.max(20, Math.min(100, Math.floor(p.intervalMs / 4))),
    flapHalfLifeMs: p.flapHalfLifeMs ?? DEFAULT_FLAP_HALF_LIFE_MS,
  };
}

export function step(state: HealthState, input: StepInput, cfg: DebounceConfig): StepOutput {
  const { result, now } = input;
  if (result.ok) {
    const okStreak = state.okStreak + 1;
    let status = state.status;
    const holdMs = status === 'down' && okStreak >= cfg.rise ? flapHoldMs(state, now, cfg) : 0;
    if (status === 'unknown' || (status === 'down' && okStreak >= cfg.rise && holdMs === 0)) status = 'up';
    const changed = status !== state.status;
    const rising = status === 'down' && holdMs === 0;
    const reason =
      status !== 'down' ? result.reason
      : holdMs > 0 ? `held down: flapping (penalty ${flapPenalty(state, now, cfg).toFixed(2)}, back in about ${Math.ceil(holdMs / 1000)} s): ${result.reason}`
      : `rising ${okStreak}/${cfg.rise}: ${result.reason}`;
    return {
      state: { ...state, status, okStreak, decisive: 0, counted: 0, since: changed ? now : state.since, reason },
      changed,
      nextInMs: rising ? cfg.recheckMs : cfg.intervalMs,
      recheck: rising,
    };
  }
  const excused = !result.decisive && input.pushAlive;
  const decisive = state.decisive + (result.decisive ? 1 : 0);
  const counted = state.counted + (excused ? 0 : 1);
  const goesDown = decisive >= cfg.fall || counted >= cfg.softFall;
  if (state.status === 'down') {
    return { state: { ...state, okStreak: 0, decisive, counted, reason: result.reason }, changed: false, nextInMs: cfg.intervalMs, recheck: false };
  }
  if (goesDown) {
    const penalty = state.status === 'up' ? Math.min(FLAP_PENALTY_MAX, flapPenalty(state, now, cfg) + FLAP_PENALTY) : flapPenalty(state, now, cfg);
    return { state: { status: 'down', okStreak: 0, decisive, counted, since: now, reason: result.reason, penalty, penaltyAt: now }, changed: true, nextInMs: cfg.intervalMs, recheck: false };
  }
  // Still up (or unknown): look again soon rather than in a whole interval.
  const why = excused ? `${result.reason} (excused: pushed reports fresh)` : `${result.reason} (${Math.max(decisive, counted)} in a row)`;
  return {
    state: { ...state, okStreak: 0, decisive, counted, reason: state.status === 'up' ? `up; last probe: ${why}` : why },
    changed: false,
    nextInMs: excused ? cfg.intervalMs : cfg.recheckMs,
    recheck: !excused,
  };
}
