/**
 * Every metric sitedns exports, defined once (docs/metrics.md lists them). Components import the
 * metric they update; nothing else registers metrics. Names are `sitedns_*`.
 *
 * Per-query updates must stay cheap: handlers update counters through pre-bound label sets
 * where the labels are known in advance (see `queryCounter`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'sitedns_process_' });

export const queriesTotal = new Counter({
  name: 'sitedns_queries_total',
  help: 'DNS queries answered (or dropped), by zone, query type, response code and transport',
  labelNames: ['zone', 'qtype', 'rcode', 'transport'] as const,
  registers: [registry],
});

export const answerLatency = new Histogram({
  name: 'sitedns_answer_seconds',
  help: 'Time from a query reaching the handler to its response being built',
  labelNames: ['transport'] as const,
  buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
  registers: [registry],
});

export const siteAnswersTotal = new Counter({
  name: 'sitedns_site_answers_total',
  help: 'Answers handing out a site, by the name asked and the site chosen',
  labelNames: ['name', 'site'] as const,
  registers: [registry],
});

export const siteUp = new Gauge({
  name: 'sitedns_site_up',
  help: '1 when the site is up (answers may use it), 0 when down or drained',
  labelNames: ['zone', 'site'] as const,
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
  help: 'Zone file problems found while loading or reloading (the last good zone keeps serving)',
  labelNames: ['code'] as const,
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
  help: 'Transport events: UDP send errors, TCP accepts, rejects (caps), timeouts, overflows',
  labelNames: ['transport', 'event'] as const,
  registers: [registry],
});

export const rateLimitedTotal = new Counter({
  name: 'sitedns_rate_limited_total',
  help: 'UDP responses withheld (drop) or truncated (slip) by response rate limiting',
  labelNames: ['action'] as const,
  registers: [registry],
});

export const probersLive = new Gauge({
  name: 'sitedns_probers_live',
  help: 'Probers whose heartbeat is fresh (they vote on site state); 0 while answering from the last known state',
  registers: [registry],
});
