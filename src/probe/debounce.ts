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
  return { status: 'unknown', okStreak: 0, decisive: 0, counted: 0, since: now, reason: 'not probed yet' };
}

export function debounceConfig(p: { rise?: number; fall?: number; intervalMs: number; softFall?: number; recheckMs?: number }): DebounceConfig {
  const rise = p.rise ?? 2;
  const fall = p.fall ?? 2;
  return {
    rise,
    fall,
    softFall: p.softFall ?? Math.max(fall * 3, fall + 2),
    intervalMs: p.intervalMs,
    recheckMs: p.recheckMs ?? Math.max(20, Math.min(100, Math.floor(p.intervalMs / 4))),
  };
}

export function step(state: HealthState, input: StepInput, cfg: DebounceConfig): StepOutput {
  const { result, now } = input;
  if (result.ok) {
    const okStreak = state.okStreak + 1;
    let status = state.status;
    if (status === 'unknown' || (status === 'down' && okStreak >= cfg.rise)) status = 'up';
    const changed = status !== state.status;
    const rising = status === 'down';
    return {
      state: { status, okStreak, decisive: 0, counted: 0, since: changed ? now : state.since, reason: status === 'down' ? `rising ${okStreak}/${cfg.rise}: ${result.reason}` : result.reason },
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
    return { state: { status: 'down', okStreak: 0, decisive, counted, since: now, reason: result.reason }, changed: true, nextInMs: cfg.intervalMs, recheck: false };
  }
  // Still up (or unknown): look again soon rather than in a whole interval.
  const why = excused ? `${result.reason} (excused: pushed reports fresh)` : `${result.reason} (${Math.max(decisive, counted)} in a row)`;
  return {
    state: { status: state.status, okStreak: 0, decisive, counted, since: state.since, reason: state.status === 'up' ? `up; last probe: ${why}` : why },
    changed: false,
    nextInMs: excused ? cfg.intervalMs : cfg.recheckMs,
    recheck: !excused,
  };
}
