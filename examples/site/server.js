#!/usr/bin/env node
/**
 * Runs the example site from the environment:
 *
 *   SITE=boston ZONE=zones/app.example.com.yaml SECRET=... PORT=8080 HOST=127.0.0.1 node examples/site/server.js
 *
 * Optional: CAPACITY (sessions before busy, default 100), SESSION_TTL (default 30m),
 * MARKER_MAX_AGE (default 60s), CLOCK_SKEW (default 5s), TRUST_PROXY=1 (behind a proxy).
 * SIGUSR2 toggles "busy" (to watch overflow); SIGTERM/SIGINT stop. Logs are JSON lines.
 */
import { durationMs } from 'sitedns/affinity';
import { createSiteApp } from './app.js';

const env = process.env;
const log = (line) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), site: env.SITE, ...line })}\n`);

function fail(message) {
  log({ level: 'fatal', msg: message });
  process.exit(1);
}

if (!env.SITE) fail('SITE is required ("I am site X": a site id of the zone)');
if (!env.SECRET) fail('SECRET is required (shared by every site, at least 16 bytes)');

/** An optional duration variable (`60s`, `30m`, `1h30m`: the syntax of docs/zones.md#durations). */
function envDuration(name) {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  try {
    return durationMs(text);
  } catch (error) {
    fail(`${name}: ${error.message}`);
  }
}

let app;
try {
  app = createSiteApp({
    site: env.SITE,
    zone: env.ZONE ?? 'zones/app.example.com.yaml',
    secret: env.SECRET,
    capacity: env.CAPACITY ? Number(env.CAPACITY) : undefined,
    sessionTtlMs: envDuration('SESSION_TTL'),
    maxAge: envDuration('MARKER_MAX_AGE'),
    clockSkew: envDuration('CLOCK_SKEW'),
    trustProxy: env.TRUST_PROXY === '1' || env.TRUST_PROXY === 'true',
    log,
  });
} catch (error) {
  fail(`${error.code ?? 'ERROR'}: ${error.message}`);
}

const host = env.HOST ?? '127.0.0.1';
const port = Number(env.PORT ?? 8080);
app.server.on('error', (error) => fail(`cannot listen on ${host}:${port}: ${error.message}`));
app.server.listen(port, host, () => {
  const address = app.server.address();
  log({ msg: 'listening', host: address.address, port: address.port, siteName: app.site.name });
});

process.on('SIGUSR2', () => {
  app.busy = !app.busy;
  log({ msg: 'busy toggled', busy: app.busy });
});
const stop = (signal) => {
  log({ msg: 'stopping', signal });
  app.server.close(() => process.exit(0));
  app.server.closeAllConnections();
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
