/**
 * The audit trail: who drained, undrained or forced up which site, when, until when, why and from
 * where, and the pushed load reports worth a look. Each entry is logged by the process that acts
 * (the admin listener's nameserver, or the CLI acting on Redis) and appended to the store: a Redis
 * stream, or memory in the embedded default (docs/state.md, "Audit trail").
 *
 * Two trails, each keeping the last AUDIT_TRAIL_LENGTH entries: operator actions, and report
 * events. Sites push reports several times a second (seed 002), so a pusher that goes wrong can
 * produce a refusal per push; in a trail of their own those never evict an operator's drain.
 * Accepted reports are not entries: only a reporter's first report for a site and a change of
 * reporter are, since a report repeats the last one's news.
 */
import type { Logger } from '../util/logger.js';
import { redactSecrets } from '../util/redact.js';
import { resolveSiteRef } from './site-ref.js';
import type { AuditAction, AuditEntry, AuditTrailName, ForcedState, LoadReport, StateStore } from './types.js';

/** How many entries each trail keeps (Redis: XADD MAXLEN ~, so a stream may briefly hold a few more; reads take this many). */
export const AUDIT_TRAIL_LENGTH = 1000;

/** The forced state an undrain ended, as its caller last saw it. */
export type EndedForcedState = Pick<ForcedState, 'state' | 'by' | 'reason' | 'until'>;

/** What `GET /v1/audit` and `sitedns audit --output json` print. */
export interface AuditReport {
  readonly store: 'memory' | 'redis';
  /** Oldest first. */
  readonly entries: readonly AuditEntry[];
}

/** Where an action comes from and where its log line goes. */
export interface AuditOrigin {
  /** `admin <client address>` or `cli <host>/<pid>`. */
  readonly from: string;
  /** The acting process's logger: every entry is one line in it. */
  readonly log: Logger;
}

export function trailOf(action: AuditAction): AuditTrailName {
  return action === 'report' || action === 'report-refused' ? 'reports' : 'operator';
}

/** C0 and C1 control characters and DEL, written as \u escapes: an entry is printed to terminals and logs. */
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/** Text from a request made fit for the trail: secrets hidden (util/redact.ts), control characters escaped, at most `max` characters. */
export function auditText(text: string, max: number): string {
  return redactSecrets(text)
    .replace(CONTROL_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .slice(0, max);
}

/** The entry for a drain or force-up just stored. */
export function forcedEntry(site: string, forced: ForcedState, from: string): AuditEntry {
  return { at: forced.at, action: forced.state === 'down' ? 'drain' : 'force-up', site, by: auditText(forced.by, 100), from, state: forced.state, until: forced.until, reason: auditText(forced.reason, 300) };
}

/** The entry for an undrain; `ended` is the forced state that was in place, if any. */
export function undrainEntry(site: string, by: string, from: string, ended: EndedForcedState | undefined, at: number): AuditEntry {
  const entry: AuditEntry = { at, action: 'undrain', site, by: auditText(by, 100), from };
  return ended ? { ...entry, ended: { state: ended.state, by: auditText(ended.by, 100), reason: auditText(ended.reason, 300), until: ended.until } } : entry;
}

/**
 * The entry for an accepted report, or undefined when it says nothing new: only a reporter's
 * first report for a site and a change of reporter are audited.
 */
export function reportEntry(site: string, report: LoadReport, previous: LoadReport | undefined, from: string): AuditEntry | undefined {
  const by = report.by ?? 'unknown';
  if (previous !== undefined && (previous.by ?? 'unknown') === by) return undefined;
  const reason = previous === undefined ? 'first report' : `reporter changed from ${auditText(previous.by ?? 'unknown', 100)}`;
  return { at: report.at, action: 'report', site, by: auditText(by, 100), from, load: report.load, reason };
}

export function refusedReportEntry(site: string, by: string, from: string, why: string, at: number): AuditEntry {
  return { at, action: 'report-refused', site: auditText(site, 300), by: auditText(by, 100), from, reason: auditText(why, 300) };
}

/** Why an entry was made: the table's WHY column, and how the entry's log line ends. */
export function auditWhy(entry: AuditEntry): string {
  switch (entry.action) {
    case 'undrain': {
      const ended = entry.ended;
      if (!ended) return 'no forced state was in place';
      return `ended ${ended.state === 'down' ? 'a drain' : 'a force-up'} by ${ended.by} until ${auditTime(ended.until)}: ${ended.reason}`;
    }
    case 'report':
      return `load ${entry.load}: ${entry.reason ?? ''}`;
    default:
      return entry.reason ?? '';
  }
}

/** What an entry says, in one line: the log message. */
export function describeAudit(entry: AuditEntry): string {
  switch (entry.action) {
    case 'drain':
    case 'force-up':
      return `${entry.site} ${entry.action === 'drain' ? 'drained' : 'forced up'} until ${auditTime(entry.until)} by ${entry.by}: ${auditWhy(entry)}`;
    case 'undrain':
      return `${entry.site} undrained by ${entry.by}: ${auditWhy(entry)}`;
    case 'report':
      return `${entry.site} report by ${entry.by}: ${auditWhy(entry)}`;
    case 'report-refused':
      return `${entry.site} load report by ${entry.by} refused: ${auditWhy(entry)}`;
  }
}

/** A time of the trail (ms since the epoch) in ISO 8601; '-' for none (an undrain has no until). */
export function auditTime(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}

/**
 * Logs the entry in the acting process (a refusal at warn, the rest at info) and appends it to
 * the trail. The action has happened by then: a trail that cannot be written is logged, not
 * thrown, so the caller still reports the action done.
 */
export async function recordAudit(store: StateStore, origin: AuditOrigin, entry: AuditEntry): Promise<void> {
  const line = { audit: entry };
  if (entry.action === 'report-refused') origin.log.warn(line, describeAudit(entry));
  else origin.log.info(line, describeAudit(entry));
  try {
    await store.appendAudit(entry);
  } catch (error) {
    origin.log.error({ audit: entry, err: (error as Error).message }, 'the audit trail could not be written: this log line is the only record');
  }
}

/** A trail in memory: the last `capacity` entries, oldest first. */
export class AuditRing {
  private readonly entries: AuditEntry[] = [];

  constructor(private readonly capacity = AUDIT_TRAIL_LENGTH) {}

  push(entry: AuditEntry): void {
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  list(): AuditEntry[] {
    return [...this.entries];
  }
}

/** Merges trails (each oldest first) into one, oldest first; entries at the same time keep their trail's order. */
export function mergeTrails(...trails: readonly (readonly AuditEntry[])[]): AuditEntry[] {
  return trails.flat().sort((a, b) => a.at - b.at);
}

export interface AuditQuery {
  /** A site key, id or Site Name (as drain takes it); absent: every site. */
  readonly site?: string;
  /** The newest this many; absent: all. */
  readonly limit?: number;
}

/** The entries a query asks for, oldest first (newest last); an ambiguous site is an error. */
export function selectAudit(entries: readonly AuditEntry[], query: AuditQuery): AuditEntry[] | { error: string } {
  let selected = [...entries];
  if (query.site !== undefined) {
    // A refused report's site is whatever the pusher sent, often no site at all: only the other
    // entries name sites, so a refusal for x.test/boston cannot make `boston` ambiguous. A
    // reference that names none of them finds the refusals made under that exact text, if any.
    const found = resolveSiteRef(query.site, entries.filter((e) => e.action !== 'report-refused').map((e) => e.site));
    // A site without entries has an empty trail; only an ambiguous or unprintable name is an error.
    if ('error' in found && found.code !== 'unknown') return { error: found.error };
    const site = 'error' in found ? query.site : found.key;
    selected = selected.filter((e) => e.site === site);
  }
  return query.limit === undefined ? selected : selected.slice(Math.max(0, selected.length - query.limit));
}
