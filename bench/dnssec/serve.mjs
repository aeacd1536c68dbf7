#!/usr/bin/env node
/**
 * A signed sitedns for bench/dnssec/qps.mjs: bench/qps's zone with `dnssec: true`, served on
 * 127.0.0.1 (a free port, UDP on the main thread) with keys made by bench/dnssec/keys.mjs.
 * Prints `{"port": N}` once answering; stops on SIGTERM.
 *   node bench/dnssec/serve.mjs <zones-dir>
 */
import { benchSigning } from './keys.mjs';

const dist = new URL('../../dist/', import.meta.url);
const { startServeApp } = await import(new URL('app/serve-app.js', dist));
const { createLogger } = await import(new URL('util/logger.js', dist));

const app = await startServeApp({
  zonesPath: process.argv[2],
  listen: ['127.0.0.1:0'],
  udpPath: 'dgram',
  logger: createLogger('warn'),
  http: null,
  httpExplicit: false,
  startupLimitMs: 500,
  keys: benchSigning(),
});
console.log(JSON.stringify({ port: app.ns.udp[0].port }));
process.on('SIGTERM', () => void app.stop().then(() => process.exit(0)));
