/**
 * What `sitedns status` shows, computed the same way whether it comes from a nameserver's admin
 * listener (the embedded default, or a nameserver following Redis) or straight from Redis.
 */
import type { ZoneSet } from '../model/zone-model.js';
import { combine, liveProbers, DEFAULT_STALE_AFTER_MS } from './combine.js';
import type { SiteState } from './snapshot.js';
import type { StoreContents } from './types.js';

export interface StatusRow {
  readonly site: string;
  readonly state: 'up' | 'down' | 'drained' | 'forced-up' | 'unknown';
  readonly load?: number;
  readonly utilization?: number;
  readonly rttMs?: number;
  readonly checkedAt?: number;
  readonly reason: string;
  readonly forced?: SiteState['forced'];
}

export interface ProberRow {
  readonly id: string;
  readonly live: boolean;
  readonly heartbeatAgeMs: number;
  readonly host?: string;
  readonly pid?: number;
}

export interface StatusReport {
  readonly store: { readonly kind: string; readonly connected: boolean; readonly ageMs?: number; readonly fresh?: boolean };
  readonly probers: readonly ProberRow[];
  readonly sites: readonly StatusRow[];
  readonly now: number;
}

export function rowFor(key: string, s: SiteState | undefined): StatusRow {
  if (!s) return { site: key, state: 'unknown', reason: 'not probed' };
  const state = s.forced ? (s.forced.state === 'down' ? 'drained' : 'forced-up') : s.up ? 'up' : 'down';
  const row: { -readonly [K in keyof StatusRow]: StatusRow[K] } = { site: key, state, reason: s.reason ?? '' };
  if (s.load !== undefined) row.load = s.load;
  if (s.utilization !== undefined) row.utilization = s.utilization;
  if (s.rttMs !== undefined) row.rttMs = s.rttMs;
  if (s.checkedAt !== undefined) row.checkedAt = s.checkedAt;
  if (s.forced) row.forced = s.forced;
  return row;
}

/** Rows for every site of the zones (when known) and every site the state mentions. */
export function statusRows(sites: ReadonlyMap<string, SiteState>, zones?: ZoneSet): StatusRow[] {
  const keys = new Set<string>(sites.keys());
  if (zones) for (const zone of zones.zones.values()) for (const site of zone.sites) keys.add(site.key);
  return [...keys].sort().map((k) => rowFor(k, sites.get(k)));
}

export function proberRows(contents: StoreContents, now: number, staleAfterMs = DEFAULT_STALE_AFTER_MS): ProberRow[] {
  const live = new Set(liveProbers(contents, now, staleAfterMs));
  return [...contents.probers.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((p) => ({ id: p.id, live: live.has(p.id), heartbeatAgeMs: now - p.heartbeatAt, host: p.host, pid: p.pid }));
}

/** Status straight from the store's contents (`sitedns status --redis`). */
export function statusFromContents(contents: StoreContents, now: number, kind: string, staleAfterMs = DEFAULT_STALE_AFTER_MS): StatusReport {
  const combined = combine(contents, now, { staleAfterMs });
  return {
    store: { kind, connected: true, fresh: !combined.stale },
    probers: proberRows(contents, now, staleAfterMs),
    sites: statusRows(combined.sites),
    now,
  };
}

function ago(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s ago`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s ago`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m ago`;
  return `${Math.round(ms / 3_600_000)}h ago`;
}

function until(ms: number): string {
  const left = Math.max(0, ms);
  if (left < 120_000) return `${Math.round(left / 1000)}s`;
  if (left < 7_200_000) return `${Math.round(left / 60_000)}m`;
  return `${(left / 3_600_000).toFixed(1)}h`;
}

/** The table: site, state, load, utilization, last check, why. */
export function formatStatus(report: StatusReport): string {
  const header = ['SITE', 'STATE', 'LOAD', 'UTIL', 'LAST CHECK', 'WHY'];
  const lines = report.sites.map((r) => [
    r.site,
    r.state,
    r.load === undefined ? '-' : String(Math.round(r.load * 1000) / 1000),
    r.utilization === undefined ? '-' : `${Math.round(r.utilization * 100)}%`,
    r.checkedAt === undefined ? '-' : ago(report.now - r.checkedAt),
    r.forced ? `${r.reason} (${until(r.forced.until - report.now)} left)` : r.reason,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  const out = [fmt(header), ...lines.map(fmt)];
  const store = report.store;
  const storeLine = `state store: ${store.kind}${store.connected ? '' : ' (UNREACHABLE: last known state)'}${store.fresh === false ? ' (no live prober: last known state)' : ''}`;
  const probers = report.probers.length === 0 ? 'probers: none' : `probers: ${report.probers.map((p) => `${p.id} (${p.live ? 'live' : 'STALE'}, ${ago(p.heartbeatAgeMs)})`).join(', ')}`;
  return [...out, '', storeLine, probers].join('\n');
}
