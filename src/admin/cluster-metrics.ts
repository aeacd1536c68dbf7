/**
 * Metrics under `serve --workers N` (node:cluster): the workers answer the queries, so their
 * per-query metrics live in their processes; the primary's /metrics asks every worker for its
 * registry (prom-client's cluster protocol and aggregation, AggregatorRegistry) and adds its own
 * (state, probes, config). Gauges of one process are 0 in the others, so summing is right.
 * The UDP threads of `serve --udp-threads` are added the same way (addMetricsSource); their
 * registries have no process metrics (metrics.ts collects those on the main thread only).
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

type Metric = MetricObjectWithValues<MetricValue<string>>;
import { registry, runScrapeHooks } from './metrics.js';

const GET_METRICS_REQ = 'prom-client:getMetricsReq';
const GET_METRICS_RES = 'prom-client:getMetricsRes';

/** In a worker: answer the primary's metric requests from sitedns's registry (prom-client does the IPC). */
export function serveMetricsToPrimary(): void {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs prom-client's worker-side listener (idempotent)
}

let requestSeq = 0;

function askWorker(worker: Worker, timeoutMs: number): Promise<Metric[] | null> {
  const requestId = `sitedns-${process.pid}-${++requestSeq}`;
  return new Promise((resolve) => {
    const done = (value: Metric[] | null) => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve(value);
    };
    const onMessage = (message: any) => {
      if (message?.type !== GET_METRICS_RES || message.requestId !== requestId) return;
      done(message.error ? null : (message.metrics as Metric[][]).flat());
    };
    // A worker that does not answer (restarting, stuck) is left out rather than failing the scrape.
    const timer = setTimeout(() => done(null), timeoutMs);
    worker.on('message', onMessage);
    try {
      worker.send({ type: GET_METRICS_REQ, requestId });
    } catch {
      done(null);
    }
  });
}

/** Other registries of this process to add in (the UDP threads of `serve --udp-threads`, #8). */
const answererSources = new Set<(timeoutMs: number) => Promise<Metric[][]>>();

/** Adds a source of registries to this process's /metrics; returns its removal. */
export function addMetricsSource(source: (timeoutMs: number) => Promise<Metric[][]>): () => void {
  answererSources.add(source);
  return () => answererSources.delete(source);
}

/** True when /metrics must aggregate: this is a cluster primary, or threads answer queries too. */
export function metricsNeedAggregation(clusterPrimary: boolean): boolean {
  return clusterPrimary || answererSources.size > 0;
}

/** The primary's /metrics: its own registry plus every worker's (and thread's), summed per series. */
export async function renderClusterMetrics(timeoutMs = 2000): Promise<string> {
  runScrapeHooks();
  const own = (await registry.getMetricsAsJSON()) as unknown as Metric[];
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const replies = await Promise.all(workers.map((w) => askWorker(w, timeoutMs)));
  const threads = (await Promise.all([...answererSources].map((source) => source(timeoutMs)))).flat();
  const others = [...replies.filter((r): r is Metric[] => r !== null), ...threads];
  // A metric only this registry has is kept as it is: prom-client omits some default metrics
  // when aggregating (process start time, ...), which is right for copies from many processes
  // but would drop the one copy the UDP threads' process has (threads export no process metrics).
  const elsewhere = new Set(others.flatMap((registry) => registry.map((m) => m.name)));
  const ownKept = own.map((m) => (elsewhere.has(m.name) ? m : { ...m, aggregator: 'sum' as const }));
  return AggregatorRegistry.aggregate([ownKept, ...others] as never).metrics();
}
