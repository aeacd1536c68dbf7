#!/usr/bin/env node
/**
 * The image's HEALTHCHECK: exit 0 when the nameserver's admin listener says ready (GET /readyz:
 * zones loaded, first state known, UDP listening, not stopping), else exit 1 with one line why.
 * The listener is the one `serve` opens: SITEDNS_HTTP, default 127.0.0.1:8053; a wildcard address
 * (0.0.0.0, [::]) is asked on loopback. /readyz needs no token (docs/security.md).
 */
const TIMEOUT_MS = 2000;

function readyzUrl(listen = '127.0.0.1:8053') {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen.trim());
  if (match === null) return null;
  const v6 = match[1];
  const host = v6 !== undefined ? `[${v6 === '::' ? '::1' : v6}]` : match[2] === '0.0.0.0' ? '127.0.0.1' : match[2];
  return `http://${host}:${match[3]}/readyz`;
}

async function main() {
  const listen = process.env.SITEDNS_HTTP || undefined;
  if (listen !== undefined && /^(off|none|false|0)$/i.test(listen)) return fail('SITEDNS_HTTP is off: no admin listener, so no readiness route');
  const url = readyzUrl(listen);
  if (url === null) return fail(`SITEDNS_HTTP ${JSON.stringify(listen)} is not host:port`);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.ok) return;
    fail(`${url}: HTTP ${res.status} ${await res.text()}`);
  } catch (error) {
    fail(`${url}: ${error.cause?.code ?? error.name}`);
  }
}

function fail(message) {
  console.error(`not ready: ${message}`);
  process.exitCode = 1;
}

await main();
