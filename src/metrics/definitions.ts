/**
 * Every metric sitedns exports, defined once (docs/metrics.md lists them). Components import the
 * metric they update; nothing else registers metrics. Names are `sitedns_*`, except the process's
 * own (prom-client's default metrics, `process_*` and `nodejs_*`).
 *
 * Per-query updates must stay cheap. prom-client hashes and validates the label set on every
 * `inc()`/`observe()` (measured: ~0.5 µs each, more than answering a query), so the per-query
 * path tallies into plain typed arrays (admin/query-metrics.ts) and folds the tallies into these
 * metrics just before a scrape, through `beforeScrape` hooks run by `renderMetrics()`.
 */
import { isMainThread } from 'node:worker_threads';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SITEDNS_VERSION } from '../util/version.js';

export const registry = new Registry();
// The event-loop lag histogram samples with a timer; prom-client's default 10 ms wakes every
// process 100 times a second even when idle: 3.6 % of a core for three idle `serve` processes (measured with
// the process-per-core mode sitedns no longer has)
// against 1.0-2.4 % at 100 ms (10 s of /proc CPU time). 100 ms still gives
// ~150 samples per 15 s scrape and catches every stall longer than 100 ms.
const EVENT_LOOP_MONITORING_MS = 100;
/**
 * prom-client's gauges of a total (sums over their `type` label's series, which stay): a gauge's
 * name must not end in `_total`, the counter suffix (Prometheus naming conventions).
 */
const TOTAL_NAMED_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
// Process metrics come from the main thread only: a UDP thread (serve --udp-threads) shares the
// process, so its copy would double every sum, and its event loop is meant to be blocked. They
// keep prom-client's standard names (`process_*`, `nodejs_*`), which stock Node.js dashboards use.
if (isMainThread) {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_MS });
  for (const name of TOTAL_NAMED_GAUGES) registry.removeSingleMetric(name);
}

const scrapeHooks = new Set<() => void>();

/** Registers a function run before every scrape (flush tallies, read gauges from live state). Returns an unregister function. */
export function beforeScrape(hook: () => void): () => void {
  scrapeHooks.add(hook);
  return () => scrapeHooks.delete(hook);
}

export function runScrapeHooks(): void {
  for (const hook of scrapeHooks) hook();
}

/** The Prometheus text exposition, after running the scrape hooks. */
export async function renderMetrics(): Promise<string> {
  runScrapeHooks();
  return registry.metrics();
}

/**
 * A histogram fed from pre-counted buckets. prom-client's Histogram has no way to add bucket
 * counts in bulk, and observing per query through it costs ~0.6 µs (label hashing), so the
 * per-query path counts into a `HistogramTally` (a Float64Array; ~10 ns) and this class exports
 * the tallies in prom-client's histogram value format (registered with `registerMetric`, the
 * documented way to add a custom metric to a Registry).
 */
export class TallyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly children = new Map<string, HistogramTally>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelName: string,
    readonly buckets: readonly number[],
    registers: Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as never);
  }

  /** The tally for one label value; keep the reference on the hot path. */
  child(labelValue: string): HistogramTally {
    let c = this.children.get(labelValue);
    if (c === undefined) this.children.set(labelValue, (c = new HistogramTally(this.buckets)));
    return c;
  }

  reset(): void {
    for (const c of this.children.values()) c.reset();
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] } {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const [labelValue, c] of this.children) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += c.counts[i];
        values.push({ metricName: `${this.name}_bucket`, labels: { le: this.buckets[i], [this.labelName]: labelValue }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', [this.labelName]: labelValue }, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: { [this.labelName]: labelValue }, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: { [this.labelName]: labelValue }, value: c.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HistogramTally {
  /** counts[i]: observations in (buckets[i-1], buckets[i]]; the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

export const queriesTotal = new Counter({
  name: 'sitedns_queries_total',
  help: 'DNS queries answered (or dropped), by zone, query type, response code and transport',
  labelNames: ['zone', 'qtype', 'rcode', 'transport'] as const,
  registers: [registry],
  // Reads that bypass renderMetrics (a UDP thread's registry sent to the main thread) flush the
  // per-query tallies too: this metric is registered first, so its collect runs first.
  collect: runScrapeHooks,
});

export const answerLatency = new TallyHistogram(
  'sitedns_answer_seconds',
  'Time from a query reaching the handler to its response being built (measured on 1 query in 16: a clock read costs more than the rest of the metrics)',
  'transport',
  [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
  [registry],
);

export const siteAnswersTotal = new Counter({
  name: 'sitedns_site_answers_total',
  help: 'Answers handing out a site, by the Pool/Group/Site Name answered (a CNAME\'s target) and the site chosen',
  labelNames: ['name', 'site'] as const,
  registers: [registry],
});

export const siteUp = new Gauge({
  name: 'sitedns_site_up',
  help: '1 when the site is up (answers may use it), 0 when down or drained',
  labelNames: ['zone', 'site'] as const,
  registers: [registry],
});

export const siteState = new Gauge({
  name: 'sitedns_site_state',
  help: 'The site\'s state, one series per state of the status view (up, down, drained, forced-up, unknown): 1 for the state it is in, 0 for the others',
  labelNames: ['zone', 'site', 'state'] as const,
  registers: [registry],
});

export const siteUtilization = new Gauge({
  name: 'sitedns_site_utilization',
  help: 'Last known utilization of the site (load / capacity)',
  labelNames: ['zone', 'site'] as const,
  registers: [registry],
});

export const probeDuration = new Histogram({
  name: 'sitedns_probe_seconds',
  help: 'Probe round-trip time',
  labelNames: ['zone', 'site', 'kind'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export const probeFailuresTotal = new Counter({
  name: 'sitedns_probe_failures_total',
  help: 'Failed probes, by reason',
  labelNames: ['zone', 'site', 'reason'] as const,
  registers: [registry],
});

export const stateAgeSeconds = new Gauge({
  name: 'sitedns_state_age_seconds',
  help: 'Age of the site state the nameserver answers from (time since the last update from the state store)',
  registers: [registry],
});

export const stateStoreConnected = new Gauge({
  name: 'sitedns_state_store_connected',
  help: '1 while the state store (Redis) is reachable; 0 while answering from the last known state',
  registers: [registry],
});

export const configGeneration = new Gauge({
  name: 'sitedns_config_generation',
  help: 'Generation of the served zones; increases with every successful (re)load',
  registers: [registry],
});

export const configReloadErrorsTotal = new Counter({
  name: 'sitedns_config_reload_errors_total',
  help: 'Zone file problems found while loading or reloading (the last good zone keeps serving); a problem still present at the next reload is not counted again',
  labelNames: ['code'] as const,
  registers: [registry],
});

export const configProblems = new Gauge({
  name: 'sitedns_config_problems',
  help: 'Zone file problems found by the last (re)load; 0 when every file is good',
  registers: [registry],
});

export const configReloadsTotal = new Counter({
  name: 'sitedns_config_reloads_total',
  help: 'Zone (re)loads, by trigger (start, sighup, watch, api, keys: a DNSSEC key timing change, resign: signatures due) and result (ok, problems)',
  labelNames: ['trigger', 'result'] as const,
  registers: [registry],
});

export const configLoadedTimestamp = new Gauge({
  name: 'sitedns_config_loaded_timestamp_seconds',
  help: 'Unix time the served zone set was built',
  registers: [registry],
});

export const zonesServed = new Gauge({
  name: 'sitedns_zones',
  help: 'Zones served',
  registers: [registry],
});

export const ready = new Gauge({
  name: 'sitedns_ready',
  help: '1 when /readyz says ready (zones loaded, a first site state known and, with --udp-threads, a UDP thread listening), 0 otherwise',
  registers: [registry],
});

export const udpThreadsLive = new Gauge({
  name: 'sitedns_udp_threads_live',
  help: 'serve --udp-threads N: UDP threads listening now (less than N while one restarts; 0: not ready); 0 without --udp-threads',
  registers: [registry],
});

export const allDownNames = new Gauge({
  name: 'sitedns_all_down_names',
  help: 'Pool/Group/Site Names whose every candidate site is down right now',
  registers: [registry],
});

export const allDownEventsTotal = new Counter({
  name: 'sitedns_all_down_events_total',
  help: 'Transitions of a name into the all-down state (every candidate site down)',
  labelNames: ['name'] as const,
  registers: [registry],
});

export const handlerErrorsTotal = new Counter({
  name: 'sitedns_handler_errors_total',
  help: 'Unexpected errors while answering (answered with SERVFAIL, or dropped)',
  registers: [registry],
});

export const transportEventsTotal = new Counter({
  name: 'sitedns_transport_events_total',
  help: 'Transport events: UDP send errors, TCP accepts, rejects (caps), evictions (longest idle, when full), timeouts, overflows',
  labelNames: ['transport', 'event'] as const,
  registers: [registry],
});

export const rateLimitedTotal = new Counter({
  name: 'sitedns_rate_limited_total',
  help: 'UDP responses withheld (drop) or truncated (slip) by response rate limiting',
  labelNames: ['action'] as const,
  registers: [registry],
});

/**
 * The batched UDP path counts in C, per socket; src/server/udp-batched.ts registers a reader
 * of the totals (open sockets plus closed ones) and the two counters below copy them at scrape
 * time. Without the addon both stay empty.
 */
type UdpBatchTotals = Readonly<Record<string, number>>;
let readUdpBatchTotals: () => UdpBatchTotals = () => ({});
export function setUdpBatchTotalsReader(reader: () => UdpBatchTotals): void {
  readUdpBatchTotals = reader;
}

/** Native counter name -> `kind` label. */
const UDP_BATCH_ERROR_KINDS = { recvErrors: 'recv', sendErrors: 'send', pollErrors: 'poll', callbackErrors: 'callback', bufferErrors: 'buffer', sendEagain: 'send_eagain' } as const;
const UDP_BATCH_DROP_REASONS = { dropPort0: 'port0', dropOversize: 'oversize', dropEmpty: 'empty', dropBadAddress: 'bad_address', dropBadReply: 'bad_reply', dropSendQueue: 'send_queue' } as const;

function copyTotals(counter: Counter<string>, label: string, names: Readonly<Record<string, string>>): void {
  const totals = readUdpBatchTotals();
  counter.reset();
  for (const [key, value] of Object.entries(names)) counter.inc({ [label]: value }, totals[key] ?? 0);
}

export const udpBatchErrorsTotal = new Counter({
  name: 'sitedns_udp_batch_errors_total',
  help: 'Batched UDP path: recvmmsg/sendmmsg/poll errors, JS callback exceptions, buffer faults, and send EAGAINs (retried), by kind',
  labelNames: ['kind'] as const,
  registers: [registry],
  collect() {
    copyTotals(this, 'kind', UDP_BATCH_ERROR_KINDS);
  },
});

export const udpBatchDroppedTotal = new Counter({
  name: 'sitedns_udp_batch_dropped_total',
  help: 'Batched UDP path: datagrams dropped in C (source port 0, oversize, empty, bad address) and replies dropped (bad length, send queue full too long), by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
  collect() {
    copyTotals(this, 'reason', UDP_BATCH_DROP_REASONS);
  },
});

/** Native counter name -> `event` label: datagrams the batched path handled in a particular way. */
const UDP_BATCH_EVENTS = { large: 'large', noPktinfo: 'no_pktinfo' } as const;

export const udpBatchEventsTotal = new Counter({
  name: 'sitedns_udp_batch_events_total',
  help: 'Batched UDP path: queries longer than a slot, read from the spare area and answered (large), and datagrams on a wildcard socket that came without their destination address, answered from the address the routing table picks (no_pktinfo), by event',
  labelNames: ['event'] as const,
  registers: [registry],
  collect() {
    copyTotals(this, 'event', UDP_BATCH_EVENTS);
  },
});

const UDP_SPIN_OUTCOMES = { spinHits: 'hit', spinMisses: 'miss' } as const;

export const udpSpinTotal = new Counter({
  name: 'sitedns_udp_spin_total',
  help: 'serve --udp-threads with --udp-spin: waits for datagrams that polled first, by outcome (hit: the datagrams came while polling; miss: it then slept in recvmmsg)',
  labelNames: ['outcome'] as const,
  registers: [registry],
  collect() {
    copyTotals(this, 'outcome', UDP_SPIN_OUTCOMES);
  },
});

/** The UDP thread this registry belongs to (its `thread` label); null on the main thread. */
let udpThreadIndex: number | null = null;
export function setUdpThreadIndex(index: number): void {
  udpThreadIndex = index;
}

export const udpThreadReceivedTotal = new Counter({
  name: 'sitedns_udp_thread_received_total',
  help: 'serve --udp-threads: datagrams each UDP thread received, by thread (steering: one thread takes them all until it falls behind)',
  labelNames: ['thread'] as const,
  registers: [registry],
  collect() {
    if (udpThreadIndex === null) return;
    this.reset();
    this.inc({ thread: String(udpThreadIndex) }, readUdpBatchTotals().received ?? 0);
  },
});

export const udpSteeringSwitchesTotal = new Counter({
  name: 'sitedns_udp_steering_switches_total',
  help: 'serve --udp-threads: changes of which threads the kernel hands datagrams to, by the mode switched to (single: thread 0; spread: all; away: all but thread 0 while it compiles a reload)',
  labelNames: ['to'] as const,
  registers: [registry],
});

export const probersLive = new Gauge({
  name: 'sitedns_probers_live',
  help: 'Probers whose heartbeat is fresh (they vote on site state); 0 while answering from the last known state',
  registers: [registry],
});

export const selfProbing = new Gauge({
  name: 'sitedns_self_probing',
  help: '1 while this nameserver probes the sites itself (no live prober for --stale-after), 0 otherwise',
  registers: [registry],
});

export const udpThreadStateMessagesTotal = new Counter({
  name: 'sitedns_udp_thread_state_messages_total',
  help: 'State messages the main thread sent the UDP threads: whole snapshots (start, hello, reload, full recomputes) and deltas (the sites an incremental recompute changed)',
  labelNames: ['kind'] as const,
  registers: [registry],
});

// Describes the process, so the main thread alone exports it, like the process metrics: the UDP
// threads' registries are summed into /metrics (admin/answerer-metrics.ts).
export const buildInfo = new Gauge({
  name: 'sitedns_build_info',
  help: 'Always 1; the labels say which sitedns version runs on which Node.js',
  labelNames: ['version', 'node'] as const,
  registers: isMainThread ? [registry] : [],
});
buildInfo.labels(SITEDNS_VERSION, process.versions.node).set(1);
