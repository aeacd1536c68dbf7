/**
 * Real health backends for probe tests: a tiny HTTP server on 127.0.0.x that answers with a load
 * in JSON, can be told to fail with a status, go silent (timeouts), and be stopped (refused) and
 * started again on the same address.
 */
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { decode, query, tempZonesDir } from './dns.js';
import { udpQuery } from './net.js';
import { startRedis, type TestRedis } from './redis.js';

export interface Backend {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  load: number;
  /** Answer with this status instead of 200. */
  status: number;
  /** Fraction of requests left unanswered (0..1): probe timeouts. */
  dropRate: number;
  requests: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startBackend(host = '127.0.0.1', load = 10): Promise<Backend> {
  let server: http.Server | undefined;
  let port = 0;
  const backend: Backend = {
    host,
    get port() {
      return port;
    },
    get url() {
      return `http://${host}:${port}/health`;
    },
    load,
    status: 200,
    dropRate: 0,
    requests: 0,
    async start() {
      const s = http.createServer((req, res) => {
        backend.requests++;
        if (backend.dropRate > 0 && Math.random() < backend.dropRate) return; // silence: a timeout
        res.writeHead(backend.status, { 'content-type': 'application/json', 'x-load': String(backend.load), connection: 'close' });
        res.end(JSON.stringify({ load: backend.load }));
      });
      s.listen(port, host);
      await once(s, 'listening');
      port = (s.address() as net.AddressInfo).port;
      server = s;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    },
  };
  await backend.start();
  return backend;
}

/** A TCP listener (accepts and closes) for tcp probes. */
export async function startTcpBackend(host = '127.0.0.1'): Promise<{ port: number; stop(): Promise<void> }> {
  const server = net.createServer((s) => s.destroy());
  server.listen(0, host);
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, stop: () => new Promise((r) => server.close(() => r())) };
}

/** The A answer of `name` as a comma-joined address list ('timeout' when no reply). */
export async function answer(port: number, name: string): Promise<string> {
  const raw = await udpQuery(port, query(name, 'A'), '127.0.0.1', 2000);
  if (!raw) return 'timeout';
  const d = decode(raw);
  return d.answers.map((a: any) => a.address).join(',') || `rcode ${d.rcode}`;
}

/** Polls until `predicate` holds (no timed assertion: the limit only keeps a broken run finite). */
export async function eventually(what: string, predicate: () => Promise<boolean> | boolean, limitMs = 15_000): Promise<void> {
  const until = Date.now() + limitMs;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A zone (default r.test) with sites a (192.0.2.10) and b (192.0.2.20), probed over HTTP at `a`
 * and `b` every 200 ms, then `moreSites`, then `rest` (default: a and b in one group and a
 * least-busy Pool Name at the apex).
 */
export function probedZone(a: string, b: string, o: { zone?: string; moreSites?: string; rest?: string } = {}): string {
  const zone = o.zone ?? 'r.test';
  return `zone: ${zone}
soa: { mname: ns1.${zone}, rname: h.${zone} }
nameservers: { ns1.${zone}: [192.0.2.1] }
sites:
  a: { addresses: [192.0.2.10], capacity: 100, probe: { http: "${a}", interval: 200ms, timeout: 300ms, load: load } }
  b: { addresses: [192.0.2.20], capacity: 100, probe: { http: "${b}", interval: 200ms, timeout: 300ms, load: load } }
${o.moreSites ?? ''}${o.rest ?? 'groups:\n  all: [a, b]\npool: { name: "@", policy: least-busy }\n'}`;
}

/**
 * A redis-server, backends a (127.0.0.2, load 10) and b (127.0.0.3, load 50), and a zones
 * directory with probedZone(a, b); stopped when `t` ends.
 */
export async function redisAndTwoSites(t: Tap.Test): Promise<{ redis: TestRedis; a: Backend; b: Backend; zones: string }> {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const a = await startBackend('127.0.0.2', 10);
  const b = await startBackend('127.0.0.3', 50);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  return { redis, a, b, zones: tempZonesDir({ 'r.yaml': probedZone(a.url, b.url) }) };
}
