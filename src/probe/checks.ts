/**
 * The probe kinds: HTTP, HTTPS and TCP connect. Each returns a raw ProbeResult (ok, decisive,
 * reason, rtt, load) for the anti-flap machine; none of them decides up or down.
 *
 * node:http/https rather than fetch: the probe must tell a refused connection (decisive) from a
 * timeout (not), set Host and SNI independently of the URL's address, skip certificate checks
 * when the zone says so, and open a fresh connection every time (`agent: false`) so a dead
 * server is seen at once, not hidden behind a pooled socket.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { ProbeConfig } from '../model/zone-model.js';
import { LOAD_VALUE_RULE, loadValue } from '../state/load-value.js';
import type { ProbeResult } from './debounce.js';

export const DEFAULT_INTERVAL_MS = 1000;
export const DEFAULT_TIMEOUT_MS = 500;
const MAX_BODY = 64 * 1024;
const MAX_REDIRECTS = 3;

export interface CompiledCheck {
  readonly kind: 'http' | 'https' | 'tcp';
  readonly target: string;
  readonly timeoutMs: number;
  run(): Promise<ProbeResult>;
}

/** Errors that mean the site answered "no": nobody listens, or TLS refused us. */
const DECISIVE_CODES = new Set(['ECONNREFUSED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_SSL_WRONG_VERSION_NUMBER']);

function failure(error: NodeJS.ErrnoException, timeoutMs: number, timedOut: boolean): ProbeResult {
  if (timedOut) return { ok: false, decisive: false, reason: `timeout after ${timeoutMs}ms` };
  const code = error.code ?? 'ERROR';
  const reason = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ECONNRESET' ? 'connection reset' : `${code}: ${error.message}`;
  return { ok: false, decisive: DECISIVE_CODES.has(code), reason };
}

export function compileCheck(probe: ProbeConfig): CompiledCheck | undefined {
  const timeoutMs = probe.timeout ?? DEFAULT_TIMEOUT_MS;
  if (probe.tcp !== undefined) {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(probe.tcp)!;
    const host = m[1] ?? m[2];
    const port = Number(m[3]);
    return { kind: 'tcp', target: probe.tcp, timeoutMs, run: () => tcpCheck(host, port, timeoutMs) };
  }
  const url = probe.http ?? probe.https;
  if (url === undefined) return undefined;
  const parsed = new URL(url);
  // `https:` key with an http:// URL (or the reverse): the key decides the scheme.
  if (probe.https !== undefined) parsed.protocol = 'https:';
  if (probe.http !== undefined && parsed.protocol !== 'https:') parsed.protocol = 'http:';
  const kind = parsed.protocol === 'https:' ? 'https' : 'http';
  const options: HttpCheckOptions = {
    timeoutMs,
    host: probe.host,
    insecure: probe.insecure ?? false,
    expectStatus: probe.expect_status ? new Set(probe.expect_status) : undefined,
    expectBody: probe.expect_body,
    loadField: probe.load,
    loadHeader: probe.load_header?.toLowerCase(),
    followRedirects: probe.follow_redirects ?? false,
  };
  return { kind, target: parsed.toString(), timeoutMs, run: () => httpCheck(parsed, options) };
}

export function tcpCheck(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect({ host, port });
    let done = false;
    const finish = (result: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(failure(new Error('timeout'), timeoutMs, true)), timeoutMs);
    socket.once('connect', () => finish({ ok: true, decisive: false, reason: 'connected', rttMs: round(performance.now() - started) }));
    socket.once('error', (error) => finish(failure(error, timeoutMs, false)));
  });
}

export interface HttpCheckOptions {
  timeoutMs: number;
  host?: string;
  insecure: boolean;
  expectStatus?: ReadonlySet<number>;
  expectBody?: string;
  loadField?: string;
  loadHeader?: string;
  followRedirects: boolean;
}

export async function httpCheck(url: URL, o: HttpCheckOptions): Promise<ProbeResult> {
  const deadline = performance.now() + o.timeoutMs;
  let current = url;
  for (let hop = 0; ; hop++) {
    const result = await httpOnce(current, o, deadline);
    if (result.kind === 'done') return result.result;
    // A redirect: followed only when allowed, only to the same host, and only a few times.
    const next = new URL(result.location, current);
    if (!o.followRedirects || next.host !== url.host || hop >= MAX_REDIRECTS) {
      return { ok: false, decisive: true, reason: `HTTP ${result.status} redirect to ${next.toString()} (not followed)`, rttMs: result.rttMs };
    }
    current = next;
  }
}

type Once = { kind: 'done'; result: ProbeResult } | { kind: 'redirect'; status: number; location: string; rttMs: number };

function httpOnce(url: URL, o: HttpCheckOptions, deadline: number): Promise<Once> {
  return new Promise((resolve) => {
    const started = performance.now();
    const remaining = Math.max(1, deadline - started);
    const mod = url.protocol === 'https:' ? https : http;
    let settled = false;
    let timedOut = false;
    const settle = (value: Once) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    const headers: Record<string, string> = { 'user-agent': 'sitedns-probe', accept: '*/*', connection: 'close' };
    if (o.host) headers.host = o.host;
    const sni = o.host?.replace(/:\d+$/, '');
    const req = mod.request(url, {
      method: 'GET',
      agent: false,
      headers,
      ...(url.protocol === 'https:' ? { servername: sni && net.isIP(sni) === 0 ? sni : undefined, rejectUnauthorized: !o.insecure } : {}),
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new Error('timeout'));
    }, remaining);
    req.on('error', (error) => settle({ kind: 'done', result: failure(error, o.timeoutMs, timedOut) }));
    req.on('response', (res) => {
      const rttMs = round(performance.now() - started);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && !o.expectStatus?.has(status)) {
        res.resume();
        settle({ kind: 'redirect', status, location: res.headers.location, rttMs });
        req.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_BODY) chunks.push(c);
        size += c.length;
      });
      res.on('error', (error) => settle({ kind: 'done', result: failure(error, o.timeoutMs, timedOut) }));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        settle({ kind: 'done', result: judge(status, res.headers, body, rttMs, o) });
      });
    });
    req.end();
  });
}

function judge(status: number, headers: http.IncomingHttpHeaders, body: string, rttMs: number, o: HttpCheckOptions): ProbeResult {
  const statusOk = o.expectStatus ? o.expectStatus.has(status) : status >= 200 && status < 300;
  if (!statusOk) return { ok: false, decisive: true, reason: `HTTP ${status}`, rttMs };
  if (o.expectBody !== undefined && !body.includes(o.expectBody)) {
    return { ok: false, decisive: true, reason: `HTTP ${status} without "${o.expectBody}" in the body`, rttMs };
  }
  let load: number | undefined;
  let note = '';
  if (o.loadHeader !== undefined) {
    const raw = headers[o.loadHeader];
    load = loadValue(Array.isArray(raw) ? raw[0] : raw);
    if (load === undefined) note = ` (no ${o.loadHeader} header with ${LOAD_VALUE_RULE})`;
  } else if (o.loadField !== undefined) {
    load = loadFromJson(body, o.loadField);
    if (load === undefined) note = ` (no "${o.loadField}" with ${LOAD_VALUE_RULE} in the body)`;
  }
  return load === undefined ? { ok: true, decisive: false, reason: `HTTP ${status}${note}`, rttMs } : { ok: true, decisive: false, reason: `HTTP ${status}`, rttMs, load };
}

/** `load` reads {"load": 0.42}; a dotted path (`stats.load`) reads nested objects. */
export function loadFromJson(body: string, field: string): number | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  for (const part of field.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return loadValue(value);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
