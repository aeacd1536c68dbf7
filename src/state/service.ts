/**
 * Operator actions on the state store (drain, undrain, load reports, status), shared by the admin
 * listener's routes (admin/state-routes.ts) and the CLI when it talks to Redis directly. Each is
 * logged by the process that performs it and kept in the audit trail (state/audit.ts).
 */
import { duration } from '../util/duration.js';
import { forcedEntry, recordAudit, refusedReportEntry, reportEntry, undrainEntry, type AuditOrigin, type EndedForcedState } from './audit.js';
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

export async function drain(store: StateStore, key: string, request: DrainRequest, origin: AuditOrigin, now = Date.now()): Promise<ForcedState | { error: string }> {
  const ms = drainDurationMs(request.for);
  if (typeof ms !== 'number') return ms;
  const state = request.state ?? 'down';
  if (state !== 'down' && state !== 'up') return { error: 'state is "down" (drain) or "up" (force up)' };
  const forced: ForcedState = { state, by: String(request.by ?? 'unknown').slice(0, 100), reason: String(request.reason ?? 'no reason given').slice(0, 300), until: now + ms, at: now };
  await store.setForced(key, forced);
  await recordAudit(store, origin, forcedEntry(key, forced, origin.from));
  return forced;
}

/** Ends the forced state of `key`; `ended` is the one in place, as the caller last saw it (the trail names it). */
export async function undrain(store: StateStore, key: string, by: string, ended: EndedForcedState | undefined, origin: AuditOrigin, now = Date.now()): Promise<void> {
  await store.setForced(key, null, now);
  await recordAudit(store, origin, undrainEntry(key, by, origin.from, ended, now));
}

export function parseLoad(body: unknown): number | { error: string } {
  const load = loadValue(body !== null && typeof body === 'object' ? (body as Record<string, unknown>).load : undefined);
  return load ?? { error: `body must be {"load": <${LOAD_VALUE_RULE}>}` };
}

/**
 * Stores a pushed load report. `previous` is the site's last report as the caller saw it: a
 * reporter's first report and a change of reporter go to the audit trail, the rest only to the store.
 */
export async function reportLoad(store: StateStore, key: string, load: number, by: string, previous: LoadReport | undefined, origin: AuditOrigin, now = Date.now()): Promise<LoadReport> {
  const report: LoadReport = { load, at: now, by };
  await store.report(key, report);
  const entry = reportEntry(key, report, previous, origin.from);
  if (entry) await recordAudit(store, origin, entry);
  return report;
}

/** A report that was not stored (no such site, no load in it): logged and kept in the reports' trail. */
export async function refuseReport(store: StateStore, site: string, by: string, why: string, origin: AuditOrigin, now = Date.now()): Promise<void> {
  await recordAudit(store, origin, refusedReportEntry(site, by, origin.from, why, now));
}
