/**
 * Every Redis key name and value format sitedns uses, in one place (docs/state.md documents them
 * so another tool can read or write them). All values are JSON objects; times are milliseconds
 * since the epoch. Values read back are validated (zod): a malformed value is skipped and
 * reported, never trusted.
 *
 *   <prefix>probers          HASH  prober id -> ProberInfo        (heartbeats)
 *   <prefix>views:<prober>   HASH  site key  -> ProbeView         (one hash per prober)
 *   <prefix>forced           HASH  site key  -> ForcedState       (drains, force-up)
 *   <prefix>undrained        HASH  site key  -> Undrained         (the last undrain: no write-back of an older drain)
 *   <prefix>reports          HASH  site key  -> LoadReport        (pushed load reports)
 *   <prefix>current          HASH  list key  -> CurrentSite       (hysteresis current sites)
 *   <prefix>notices          pub/sub channel: Notice             (every change, with its new value)
 *   <prefix>audit            STREAM  entry -> AuditEntry         (drain, undrain, force-up; last 1,000)
 *   <prefix>audit:reports    STREAM  entry -> AuditEntry         (first report, reporter change, refusal; last 1,000)
 *   <prefix>epoch            STRING a random id                   (the contents' identity, below)
 *
 * The epoch is set (SET NX) by the first process that finds it missing. A process that saw one
 * epoch and later finds another, or none, knows the store lost its contents in between (a Redis
 * restarted without persistence, or flushed) while a failover to a replica keeps it: whoever
 * still holds state then writes it back (docs/state.md, "What survives what").
 *
 * A site key is `<zone>/<site id>`, e.g. `app.example.com/boston`. A list key names a hysteresis
 * candidate list: `<pool name>` (`www.app.example.com`) or `<pool name>/<group id>`.
 */
import { z } from 'zod';
import type { AuditEntry, AuditTrailName, CurrentSite, ForcedState, LoadReport, Notice, ProbeView, ProberInfo, Undrained } from './types.js';
import { LOAD_VALUE_RULE, loadValue } from './load-value.js';

export const DEFAULT_PREFIX = 'sitedns:';

export interface KeyNames {
  readonly probers: string;
  readonly forced: string;
  readonly undrained: string;
  readonly reports: string;
  readonly current: string;
  readonly notices: string;
  /** The audit trails (state/audit.ts): Redis streams of AuditEntry, one field `entry`. */
  readonly audit: Readonly<Record<AuditTrailName, string>>;
  readonly epoch: string;
  views(prober: string): string;
  /** Pattern matching every prober's views hash (for tools; sitedns itself lists `probers`). */
  readonly viewsPattern: string;
}

export function keyNames(prefix = DEFAULT_PREFIX): KeyNames {
  return {
    probers: `${prefix}probers`,
    forced: `${prefix}forced`,
    undrained: `${prefix}undrained`,
    reports: `${prefix}reports`,
    current: `${prefix}current`,
    notices: `${prefix}notices`,
    audit: { operator: `${prefix}audit`, reports: `${prefix}audit:reports` },
    epoch: `${prefix}epoch`,
    views: (prober) => `${prefix}views:${prober}`,
    viewsPattern: `${prefix}views:*`,
  };
}

const finite = z.number().finite();
/** The last millisecond a JavaScript Date holds (ECMA-262, "Time Values and Time Range"): a later time cannot be shown. */
const LAST_DATE_MS = 8.64e15;
const time = z.number().finite().nonnegative().max(LAST_DATE_MS);
// state/load-value.ts's rule, for loads read back from Redis.
const load = z.number().refine((value) => loadValue(value) === value, `a load is ${LOAD_VALUE_RULE}`);

export const probeViewSchema = z.object({
  up: z.boolean(),
  // A view with a load outside the rule (an older prober's negative one) keeps its up/down
  // verdict and loses only the load.
  load: load.optional().catch(undefined),
  utilization: finite.optional(),
  rttMs: finite.nonnegative().optional(),
  checkedAt: time,
  loadAt: time.optional(),
  since: time,
  reason: z.string(),
  decisive: z.boolean().optional(),
});

export const forcedSchema = z.object({
  state: z.enum(['down', 'up']),
  by: z.string(),
  reason: z.string(),
  until: time,
  at: time,
});

export const reportSchema = z.object({ load, at: time, by: z.string().optional() });

export const currentSiteSchema = z.object({ site: z.string().min(1) });

export const proberInfoSchema = z.object({
  id: z.string().min(1),
  heartbeatAt: time,
  startedAt: time,
  host: z.string().optional(),
  pid: z.number().int().optional(),
  intervalMs: z.number().int().positive().optional(),
});

export const noticeSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('view'), prober: z.string(), key: z.string(), view: probeViewSchema.nullable() }),
  z.object({ t: z.literal('forced'), key: z.string(), forced: forcedSchema.nullable() }),
  z.object({ t: z.literal('report'), key: z.string(), report: reportSchema }),
  z.object({ t: z.literal('prober'), prober: z.string(), info: proberInfoSchema.nullable() }),
  z.object({ t: z.literal('current'), key: z.string(), current: currentSiteSchema }),
]);

const forcedStateNamed = z.object({ state: z.enum(['down', 'up']), by: z.string(), reason: z.string(), until: time });

export const auditEntrySchema = z.object({
  at: time,
  action: z.enum(['drain', 'force-up', 'undrain', 'report', 'report-refused']),
  site: z.string(),
  by: z.string(),
  from: z.string(),
  state: z.enum(['down', 'up']).optional(),
  until: time.optional(),
  reason: z.string().optional(),
  load: finite.optional(),
  ended: forcedStateNamed.optional(),
});

export function encode(value: Undrained | ProbeView | ForcedState | LoadReport | ProberInfo | CurrentSite | Notice | AuditEntry): string {
  return JSON.stringify(value);
}

/** Parses and validates one stored value; undefined when it is not what the key promises. */
export function decode<T>(schema: z.ZodType<T>, text: string | null | undefined): T | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** C0 and C1 control characters and DEL: no zone name or site id holds one, and a log line or terminal must not get one. */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `ref` (a site key, id or Site Name as given) cannot name a site, or undefined when it can. */
export function siteRefProblem(ref: string): string | undefined {
  return CONTROL_CHARACTER.test(ref) ? `${JSON.stringify(ref)} holds a control character: no site is named so` : undefined;
}

/** `zone/site` keys: zones are lower-case names without the trailing dot, site ids lower-case labels. */
export function siteKey(zone: string, site: string): string {
  return `${zone.toLowerCase().replace(/\.$/, '')}/${site.toLowerCase()}`;
}

export function splitSiteKey(key: string): { zone: string; site: string } {
  const slash = key.lastIndexOf('/');
  return { zone: key.slice(0, slash), site: key.slice(slash + 1) };
}
