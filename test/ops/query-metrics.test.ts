/** The handler observer: counts by zone/qtype/rcode/transport, latency, site answers, sampled query logs. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { renderMetrics } from '../../src/metrics/definitions.js';
import { QueryMetrics } from '../../src/admin/query-metrics.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { compileText, fixedEnv, query } from '../helpers/dns.js';
import { memoryLogger, metric, parseMetrics } from '../helpers/metrics.js';

const SAMPLE = readFileSync(new URL('../fixtures/app.example.com.yaml', import.meta.url), 'utf8');

t.test('queries are counted with their labels, flushed at scrape', async (t) => {
  const { logger, lines } = memoryLogger();
  const observer = new QueryMetrics({ logger, sample: 1 }, 1);
  t.teardown(() => observer.close());
  const handler = new Handler(new Runtime(compileText(SAMPLE)), fixedEnv(), observer);
  const before = parseMetrics(await renderMetrics());
  const ctx = { transport: 'udp' as const, clientAddress: '192.0.2.7' };
  for (let i = 0; i < 5; i++) handler.handle(query('boston.app.example.com', 'A'), ctx);
  handler.handle(query('nope.app.example.com', 'A'), { transport: 'tcp', clientAddress: '192.0.2.7' });
  handler.handle(query('example.org', 'MX'), ctx);
  handler.handle(query('app.example.com', 999), ctx);
  const response = query('app.example.com');
  response.writeUInt16BE(0x8000, 2); // QR=1: dropped
  handler.handle(response, ctx);
  const after = parseMetrics(await renderMetrics());
  const delta = (name: string, labels: Record<string, string>) => metric(after, name, labels) - metric(before, name, labels);

  t.equal(delta('sitedns_queries_total', { zone: 'app.example.com', qtype: 'A', rcode: 'NOERROR', transport: 'udp' }), 5);
  t.equal(delta('sitedns_queries_total', { zone: 'app.example.com', qtype: 'A', rcode: 'NXDOMAIN', transport: 'tcp' }), 1);
  t.equal(delta('sitedns_queries_total', { zone: '(none)', qtype: 'MX', rcode: 'REFUSED' }), 1);
  t.equal(delta('sitedns_queries_total', { zone: 'app.example.com', qtype: 'other' }), 1, 'unknown types share one label value');
  t.equal(delta('sitedns_queries_total', { rcode: 'dropped' }), 1);
  t.equal(delta('sitedns_queries_total', {}), 9);
  t.equal(delta('sitedns_answer_seconds_count', { transport: 'udp' }), 8);
  t.equal(delta('sitedns_answer_seconds_count', { transport: 'tcp' }), 1);
  t.equal(delta('sitedns_answer_seconds_bucket', { transport: 'udp', le: '+Inf' }), 8);
  t.ok(delta('sitedns_answer_seconds_sum', { transport: 'udp' }) > 0);
  t.equal(delta('sitedns_site_answers_total', { name: 'boston.app.example.com', site: 'boston' }), 5);

  const again = parseMetrics(await renderMetrics());
  t.equal(metric(again, 'sitedns_queries_total'), metric(after, 'sitedns_queries_total'), 'a second scrape does not count twice');

  const logged = lines.filter((l) => l.msg === 'query');
  t.equal(logged.length, 9, 'sample 1 logs every query');
  t.match(logged[0], { client: '192.0.2.7', transport: 'udp', name: 'boston.app.example.com', qtype: 'A', rcode: 'NOERROR', site: 'boston' });
});

t.test('latency is measured on 1 query in timeEvery', async (t) => {
  const observer = new QueryMetrics(undefined, 4);
  t.teardown(() => observer.close());
  const handler = new Handler(new Runtime(compileText(SAMPLE)), fixedEnv(), observer);
  const before = parseMetrics(await renderMetrics());
  for (let i = 0; i < 40; i++) handler.handle(query('boston.app.example.com'), { transport: 'tcp', clientAddress: '192.0.2.1' });
  const after = parseMetrics(await renderMetrics());
  t.equal(metric(after, 'sitedns_answer_seconds_count', { transport: 'tcp' }) - metric(before, 'sitedns_answer_seconds_count', { transport: 'tcp' }), 10);
  t.equal(metric(after, 'sitedns_queries_total', { transport: 'tcp' }) - metric(before, 'sitedns_queries_total', { transport: 'tcp' }), 40, 'every query is counted');
});

t.test('query logging is sampled, and off at 0', async (t) => {
  const { logger, lines } = memoryLogger();
  const handler0 = new Handler(new Runtime(compileText(SAMPLE)), fixedEnv(), new QueryMetrics({ logger, sample: 0 }));
  for (let i = 0; i < 100; i++) handler0.handle(query('boston.app.example.com'), { transport: 'udp', clientAddress: '192.0.2.1' });
  t.equal(lines.length, 0, 'off by default');
  let draw = 0;
  const sampled = new QueryMetrics({ logger, sample: 0.1, random: () => (draw++ % 10) / 10 });
  const handler = new Handler(new Runtime(compileText(SAMPLE)), fixedEnv(), sampled);
  for (let i = 0; i < 100; i++) handler.handle(query('boston.app.example.com'), { transport: 'udp', clientAddress: '192.0.2.1' });
  t.equal(lines.length, 10, '1 in 10');
});

t.test('handler errors are counted, and logged once per message', async (t) => {
  const { logger, lines } = memoryLogger();
  const observer = new QueryMetrics(undefined, 16, logger);
  t.teardown(() => observer.close());
  const runtime = new Runtime(compileText(SAMPLE));
  const handler = new Handler(runtime, fixedEnv(), observer);
  // A broken state snapshot makes the policy throw: the handler answers SERVFAIL.
  runtime.publishState({ sites: null as any, version: 1, takenAt: 0, fresh: true });
  const before = metric(parseMetrics(await renderMetrics()), 'sitedns_handler_errors_total');
  for (let i = 0; i < 3; i++) handler.handle(query('boston.app.example.com'), { transport: 'udp', clientAddress: '192.0.2.1' });
  t.equal(metric(parseMetrics(await renderMetrics()), 'sitedns_handler_errors_total') - before, 3);
  t.equal(lines.filter((l) => l.level === 50).length, 1);
});
