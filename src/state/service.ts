/**
 * Operator actions on the state store (drain, undrain, load reports, status), shared by the admin
 * listener's routes (admin/state-routes.ts) and the CLI when it talks to Redis directly.
 */
import { duration } from '../util/duration.js';
import { LOAD_VALUE_RULE, loadValue } from './load-value.js';
import type { ForcedState, LoadReport, StateStore } from './types.js';

export const DEFAULT_DRAIN_MS = 3_600_000;

export interface DrainRequest {
  /** How long: a duration ("30m", "2h"; docs/zones.md#durations); a JSON number other than 0 is refused. */
  readonly for?: string | number;
  readonly reason?: string;
  readonly by?: string;
  readonly state?: 'down' | 'up';
}

/** The longest drain: its end must stay a date every reader can write (explain, status). */
export const MAX_DRAIN_MS = 365 * 86_400_000;

/** How long a drain lasts (`--for`, the request's `for`): a duration longer than 0, at most 365d. */
export const drainDuration = duration.refine((ms) => ms > 0, 'is not longer than 0').refine((ms) => ms <= MAX_DRAIN_MS, 'is longer than 365d, the longest drain');

export function drainDurationMs(value: string | number | undefined): number | { error: string } {
  if (value === undefined) return DEFAULT_DRAIN_MS;
  const parsed = drainDuration.safeParse(value);
  if (parsed.success) return parsed.data;
  const { message } = parsed.error.issues[0];
  return { error: message.startsWith('is ') ? `${JSON.stringify(value)} ${message}` : message };
}

export async function drain(store: StateStore, key: string, request: DrainRequest, now = Date.now()): Promise<ForcedState | { error: string }> {
  const ms = drainDurationMs(request.for);
  if (typeof ms !== 'number') return ms;
  const state = request.state ?? 'down';
  if (state !== 'down' && state !== 'up') return { error: 'state is "down" (drain) or "up" (force up)' };
  const forced: ForcedState = { state, by: String(request.by ?? 'unknown').slice(0, 100), reason: String(request.reason ?? 'no reason given').slice(0, 300), until: now + ms, at: now };
  await store.setForced(key, forced);
  return forced;
}

export async function undrain(store: StateStore, key: string): Promise<void> {
  await store.setForced(key, null);
}

export function parseLoad(body: unknown): number | { error: string } {
  const load = loadValue(body !== null && typeof body === 'object' ? (body as Record<string, unknown>).load : undefined);
  return load ?? { error: `body must be {"load": <${LOAD_VALUE_RULE}>}` };
}

export async function reportLoad(store: StateStore, key: string, load: number, by?: string, now = Date.now()): Promise<LoadReport> {
  const report: LoadReport = by ? { load, at: now, by } : { load, at: now };
  await store.report(key, report);
  return report;
}
