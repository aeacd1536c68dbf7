/**
 * The handler's observer for metrics and sampled query logs. Runs once per query, so it only
 * adds to plain typed arrays (a few ns); `flush()` folds the tallies into the prom-client
 * metrics right before a scrape (metrics.ts explains why). Measured cost: docs/metrics.md.
 */
import { QTYPE } from '../dns/constants.js';
import { RCODE, RCODE_NAME, typeName } from '../dns/constants.js';
import type { DynamicName } from '../model/zone-model.js';
import type { Selection } from '../model/selection.js';
import type { HandlerObserver, QueryEvent } from '../server/query-event.js';
import type { Logger } from '../util/logger.js';
import { answerLatency, beforeScrape, handlerErrorsTotal, queriesTotal, siteAnswersTotal, type HistogramTally } from '../metrics/definitions.js';

/**
 * Query types with their own label value; any other type counts as "other" so that a client
 * sending random types cannot grow the label set (cardinality stays zones x 20 x RCODE_SLOTS x 2).
 */
const LABELLED_TYPES = [...Object.values(QTYPE), 12, 35, 46, 48, 64, 65];
const TYPE_LABELS: string[] = ['other'];
const TYPE_INDEX = new Uint8Array(65536);
for (const t of new Set(LABELLED_TYPES)) {
  TYPE_INDEX[t] = TYPE_LABELS.length;
  TYPE_LABELS.push(typeName(t));
}
TYPE_LABELS[TYPE_INDEX[35]] = 'NAPTR';
TYPE_LABELS[TYPE_INDEX[46]] = 'RRSIG';
TYPE_LABELS[TYPE_INDEX[48]] = 'DNSKEY';
TYPE_LABELS[TYPE_INDEX[64]] = 'SVCB';
TYPE_LABELS[TYPE_INDEX[65]] = 'HTTPS';

/**
 * Label slots: header RCODEs 0..15, then the extended RCODEs we send (RFC 6891 §6.1.3, e.g.
 * BADVERS), then "dropped" (no reply at all).
 */
const EXTENDED_RCODES: readonly number[] = Object.values(RCODE).filter((r) => r > 0xf);
const RCODE_SLOTS = 16 + EXTENDED_RCODES.length + 1;
const DROPPED = RCODE_SLOTS - 1;
const RCODE_LABELS = Array.from({ length: RCODE_SLOTS }, (_, i) => (i === DROPPED ? 'dropped' : i > 0xf ? RCODE_NAME[EXTENDED_RCODES[i - 16]] : (RCODE_NAME[i] ?? `RCODE${i}`)));
/** A QueryEvent's rcode -> its slot (an extended RCODE we never send would count by its low 4 bits). */
function rcodeSlot(ev: QueryEvent): number {
  if (ev.dropped) return DROPPED;
  if (ev.rcode <= 0xf) return ev.rcode & 0xf;
  const extended = EXTENDED_RCODES.indexOf(ev.rcode);
  return extended < 0 ? ev.rcode & 0xf : 16 + extended;
}
const TRANSPORTS = ['udp', 'tcp'] as const;
const CELLS = TYPE_LABELS.length * RCODE_SLOTS * TRANSPORTS.length;
/** Label value for queries outside every zone (REFUSED) or not parsed far enough (FORMERR). */
export const NO_ZONE = '(none)';

export interface QueryLogOptions {
  logger: Logger;
  /** Fraction of queries logged, 0 (off) to 1. */
  sample: number;
  random?: () => number;
}

/** Distinct handler error messages logged (each once); more are only counted. */
const MAX_LOGGED_ERRORS = 100;

/** Answer latency is measured on 1 query in this many (see HandlerObserver.timeEvery). */
export const DEFAULT_TIME_EVERY = 16;

export class QueryMetrics implements HandlerObserver {
  readonly timeEvery: number;
  private perZone = new Map<string, Float64Array>();
  /** Per name: answers per site, by the site's position in name.sites. */
  private siteAnswers = new Map<DynamicName, Float64Array>();
  // The tallies of the last zone and name seen: consecutive queries mostly share them, and the
  // check is cheaper than a Map lookup (bench/qps/handler.mjs, "observed" rows). Reset by flush().
  private lastZone: string | null = null;
  private lastZoneCells: Float64Array | null = null;
  private lastName: DynamicName | null = null;
  private lastNameCounts: Float64Array | null = null;
  private errors = 0;
  private readonly latency: Record<string, HistogramTally> = { udp: answerLatency.child('udp'), tcp: answerLatency.child('tcp') };
  private readonly sample: number;
  private readonly random: () => number;
  private readonly queryLog: Logger | undefined;
  private readonly unregister: () => void;
  private readonly loggedErrors = new Set<string>();

  /** `errorLog`: where unexpected handler errors are logged, each distinct message once. */
  constructor(queryLog?: QueryLogOptions, timeEvery = DEFAULT_TIME_EVERY, private readonly errorLog?: Logger) {
    this.timeEvery = timeEvery;
    this.sample = queryLog?.sample ?? 0;
    this.random = queryLog?.random ?? Math.random;
    this.queryLog = this.sample > 0 ? queryLog?.logger : undefined;
    this.unregister = beforeScrape(() => this.flush());
  }

  // Own properties, not prototype methods: the nameserver composes observers with object spread
  // ({ onAllDown, ...observer }), which copies own properties only.
  readonly onQuery = (ev: QueryEvent): void => {
    let cells: Float64Array;
    if (ev.zone === this.lastZone) cells = this.lastZoneCells!;
    else {
      let found = this.perZone.get(ev.zone);
      if (found === undefined) this.perZone.set(ev.zone, (found = new Float64Array(CELLS)));
      this.lastZone = ev.zone;
      this.lastZoneCells = cells = found;
    }
    cells[(TYPE_INDEX[ev.qtype] * RCODE_SLOTS + rcodeSlot(ev)) * 2 + (ev.transport === 'tcp' ? 1 : 0)]++;
    let seconds = -1;
    if (ev.startedAt !== 0) {
      seconds = (performance.now() - ev.startedAt) / 1000;
      (this.latency[ev.transport] ?? this.latency.udp).observe(seconds);
    }
    if (ev.error !== null) this.handlerError(ev);
    if (this.queryLog !== undefined && this.random() < this.sample) this.logQuery(ev, seconds);
  };

  readonly onSelection = (name: DynamicName, selection: Selection): void => {
    if (selection.kind !== 'sites') return;
    let counts: Float64Array;
    if (name === this.lastName) counts = this.lastNameCounts!;
    else {
      let found = this.siteAnswers.get(name);
      if (found === undefined) this.siteAnswers.set(name, (found = new Float64Array(name.sites.length)));
      this.lastName = name;
      this.lastNameCounts = counts = found;
    }
    // A selection only ever names sites of name.sites (pool, group or failover order).
    const all = name.sites;
    const sites = selection.sites;
    for (let i = 0; i < sites.length; i++) {
      for (let j = 0; j < all.length; j++) {
        if (all[j] === sites[i]) {
          counts[j]++;
          break;
        }
      }
    }
  };

  /** Folds the tallies into the prom-client metrics (run before each scrape). */
  flush(): void {
    const perZone = this.perZone;
    this.perZone = new Map();
    this.lastZone = this.lastZoneCells = null;
    this.lastName = this.lastNameCounts = null;
    for (const [zone, cells] of perZone) {
      for (let i = 0; i < CELLS; i++) {
        const n = cells[i];
        if (n === 0) continue;
        const transport = TRANSPORTS[i % 2];
        const rest = (i - (i % 2)) / 2;
        queriesTotal.inc({ zone: zone === '' ? NO_ZONE : zone, qtype: TYPE_LABELS[Math.floor(rest / RCODE_SLOTS)], rcode: RCODE_LABELS[rest % RCODE_SLOTS], transport }, n);
      }
    }
    const siteAnswers = this.siteAnswers;
    this.siteAnswers = new Map();
    for (const [name, counts] of siteAnswers) {
      for (let j = 0; j < counts.length; j++) if (counts[j] > 0) siteAnswersTotal.inc({ name: name.name, site: name.sites[j].id }, counts[j]);
    }
    if (this.errors > 0) {
      handlerErrorsTotal.inc(this.errors);
      this.errors = 0;
    }
  }

  close(): void {
    this.flush();
    this.unregister();
  }

  private handlerError(ev: QueryEvent): void {
    this.errors++;
    const key = ev.error!.message;
    if (this.errorLog === undefined || this.loggedErrors.has(key) || this.loggedErrors.size >= MAX_LOGGED_ERRORS) return;
    this.loggedErrors.add(key);
    this.errorLog.error({ err: ev.error, name: ev.name, qtype: typeName(ev.qtype), transport: ev.transport }, 'error while answering (answered SERVFAIL; logged once per message, counted in sitedns_handler_errors_total)');
  }

  private logQuery(ev: QueryEvent, seconds: number): void {
    this.queryLog!.info(
      {
        client: ev.client,
        transport: ev.transport,
        name: ev.name,
        qtype: typeName(ev.qtype),
        zone: ev.zone || undefined,
        rcode: RCODE_LABELS[rcodeSlot(ev)],
        site: ev.site || undefined,
        us: seconds >= 0 ? Math.round(seconds * 1e6) : undefined,
        err: ev.error ?? undefined,
      },
      'query',
    );
  }
}
