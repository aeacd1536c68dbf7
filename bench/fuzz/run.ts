/**
 * The long fuzz run: millions of packets through the in-process Handler, then a real
 * `sitedns serve` process over UDP and TCP. Prints a JSON summary; exits 1 on any failure.
 *
 *   npm run build
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import bench/fuzz/run.ts \
 *     [--handler 5000000] [--udp 1000000] [--tcp 200000] [--seed 7]
 *
 * The CI versions are test/fuzz/*.test.ts (fixed seeds, a few seconds each).
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { FUZZ_ZONE_FILES, fuzzHandler, fuzzZones } from './handler-fuzz.js';
import { fuzzTcp, fuzzUdp, newStats } from './socket-fuzz.js';
import { startSitedns } from '../../test/helpers/net.js';

const { values } = parseArgs({
  options: {
    handler: { type: 'string', default: '5000000' },
    udp: { type: 'string', default: '1000000' },
    tcp: { type: 'string', default: '200000' },
    seed: { type: 'string', default: '7' },
  },
});
const seed = Number(values.seed);
const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
const summary: Record<string, unknown> = { seed, loadavgStart: loadavg().map((x) => x.toFixed(2)) };
let failed = false;

const handlerCount = Number(values.handler);
if (handlerCount > 0) {
  const t0 = Date.now();
  const stats = fuzzHandler(fuzzZones(), seed, handlerCount, (n) => log(`handler ${n}`));
  const seconds = (Date.now() - t0) / 1000;
  summary.handler = { ...stats, seconds, perSecond: Math.round(handlerCount / seconds) };
  if (stats.failureCount > 0) failed = true;
}

const udpCount = Number(values.udp);
const tcpCount = Number(values.tcp);
if (udpCount + tcpCount > 0) {
  const dir = mkdtempSync(join(tmpdir(), 'sitedns-fuzz-'));
  for (const f of FUZZ_ZONE_FILES) copyFileSync(f, join(dir, basename(f)));
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0']);
  const stats = newStats();
  let exited = '';
  server.proc.on('exit', (code, signal) => {
    exited = `server exited: code ${code}, signal ${signal}`;
    log(exited);
    log(server.logs.slice(-10).map((l) => JSON.stringify(l)).join('\n'));
  });
  const abort = () => exited !== '';
  try {
    const t0 = Date.now();
    if (udpCount > 0) await fuzzUdp({ port: server.port, seed: seed + 1, packets: udpCount, abort, onProgress: (n) => log(`udp ${n}`) }, stats);
    const t1 = Date.now();
    if (tcpCount > 0) await fuzzTcp({ port: server.port, seed: seed + 2, frames: tcpCount, abort, onProgress: (n) => log(`tcp ${n}`) }, stats);
    const t2 = Date.now();
    summary.sockets = {
      ...stats,
      udpSeconds: (t1 - t0) / 1000,
      tcpSeconds: (t2 - t1) / 1000,
      serverAlive: server.proc.exitCode === null,
      serverExit: exited,
      serverErrorLogs: server.logs.filter((l) => l.level >= 50).length,
    };
    if (stats.failureCount > 0 || server.proc.exitCode !== null) failed = true;
  } finally {
    await server.stop();
  }
}
summary.loadavgEnd = loadavg().map((x) => x.toFixed(2));
console.log(JSON.stringify(summary, null, 2));
process.exit(failed ? 1 : 0);
