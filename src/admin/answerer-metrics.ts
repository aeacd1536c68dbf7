/**
 * /metrics with UDP threads (`serve --udp-threads N`): the threads answer the UDP queries, so
 * their per-query metrics live in their own registries; /metrics asks every thread for its
 * registry and sums them with this thread's (state, probes, config, TCP), series by series
 * (prom-client's aggregation). Gauges of one thread are 0 in the others, so summing is right.
 * Threads that miss a scrape or are replaced keep their counts in the sums (KeptRegistries), so
 * a summed counter never steps back. The threads' registries have no process metrics
 * (metrics/definitions.ts collects those on the main thread only).
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import { registry, runScrapeHooks, siteAnswersTotal } from '../metrics/definitions.js';

type Metric = MetricObjectWithValues<MetricValue<string>>;

/** The types whose series only grow; a gauge describes its answerer and ends with it. */
const MONOTONIC = new Set(['counter', 'histogram', 'summary']);
/** The type as getMetricsAsJSON() writes it ('counter', 'gauge', ...; typed as an enum). */
const typeOf = (m: Metric): string => m.type as unknown as string;

/**
 * The registries /metrics sums for answerers that come and go (UDP threads),
 * kept so that the summed counters never step back:
 * - one that does not answer a scrape in time (busy, stuck, dying) counts with
 *   its last answered registry instead of dropping out of the sum;
 * - the counters, histograms and summaries (their _sum and _count) of one that ended are kept
 *   as a retired base, so its replacement, which counts from 0 again, adds to them. Its gauges
 *   are dropped: they described it. The base holds one value per series, however many ended.
 * Keys name one answerer's life (a thread): a replacement has a new key.
 */
export class KeptRegistries<K> {
  private readonly last = new Map<K, Metric[]>();
  private retired: Metric[] = [];

  /**
   * One scrape: `replies` has every answerer alive now (null: no reply in time); others ended.
   * An answerer that ended must not come back (a late reply): its counts would be kept twice.
   */
  merge(replies: ReadonlyMap<K, Metric[] | null>): Metric[][] {
    const ended: Metric[][] = [];
    for (const [key, metrics] of this.last) {
      if (replies.has(key)) continue;
      this.last.delete(key);
      ended.push(metrics.filter((m) => MONOTONIC.has(typeOf(m))).map((m) => (typeOf(m) === 'summary' ? { ...m, values: m.values.filter((v) => v.labels.quantile === undefined) } : m)));
    }
    if (ended.length > 0) this.retired = sumSeries([this.retired, ...ended]);
    const kept: Metric[][] = [];
    for (const [key, metrics] of replies) {
      if (metrics !== null) this.last.set(key, metrics);
      const last = this.last.get(key);
      if (last !== undefined) kept.push(last);
    }
    return this.retired.length > 0 ? [this.retired, ...kept] : kept;
  }
}

/**
 * Registries summed series by series: prom-client's 'sum' aggregation, done here because
 * AggregatorRegistry.aggregate() yields a Registry whose JSON is only async, and merge() must
 * stay synchronous so that two overlapping scrapes cannot retire one answerer twice.
 */
function sumSeries(registries: Metric[][]): Metric[] {
  const byName = new Map<string, { metric: Metric; values: Map<string, MetricValue<string>> }>();
  for (const registry of registries) {
    for (const m of registry) {
      let into = byName.get(m.name);
      if (into === undefined) byName.set(m.name, (into = { metric: m, values: new Map() }));
      for (const v of m.values) {
        const key = `${(v as { metricName?: string }).metricName ?? ''} ${JSON.stringify(Object.entries(v.labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
        const had = into.values.get(key);
        into.values.set(key, had === undefined ? { ...v } : { ...had, value: had.value + v.value });
      }
    }
  }
  return [...byName.values()].map(({ metric, values }) => ({ ...metric, values: [...values.values()] }));
}

/** The registries of the answering threads (`serve --udp-threads`), added to this thread's. */
const answererSources = new Set<(timeoutMs: number) => Promise<Metric[][]>>();

/** Adds a source of registries to this process's /metrics; returns its removal. */
export function addMetricsSource(source: (timeoutMs: number) => Promise<Metric[][]>): () => void {
  answererSources.add(source);
  return () => answererSources.delete(source);
}

/** /metrics: this thread's registry, plus every answering thread's summed in, series by series. */
export async function renderAnswererMetrics(timeoutMs = 2000): Promise<string> {
  return (await summedRegistry(timeoutMs)).metrics();
}

/** Every `sitedns_site_answers_total` series, every answerer's summed (the status page's shares). */
export async function siteAnswerCounts(timeoutMs = 2000): Promise<{ name: string; site: string; value: number }[]> {
  const { name } = await siteAnswersTotal.get();
  const metric = (await summedRegistry(timeoutMs)).getSingleMetric(name);
  if (metric === undefined) return [];
  const { values } = await metric.get();
  return values.map((v) => ({ name: String(v.labels.name), site: String(v.labels.site), value: v.value }));
}

async function summedRegistry(timeoutMs: number): Promise<Registry> {
  runScrapeHooks();
  if (answererSources.size === 0) return registry;
  const own = (await registry.getMetricsAsJSON()) as unknown as Metric[];
  const others = (await Promise.all([...answererSources].map((source) => source(timeoutMs)))).flat();
  // A metric only this registry has is kept as it is: prom-client omits some default metrics
  // when aggregating (process start time, ...), which is right for copies from many processes
  // but would drop the one copy this process has (threads export no process metrics).
  const elsewhere = new Set(others.flatMap((registry) => registry.map((m) => m.name)));
  const ownKept = own.map((m) => (elsewhere.has(m.name) ? m : { ...m, aggregator: 'sum' as const }));
  return AggregatorRegistry.aggregate([ownKept, ...others] as never);
}
