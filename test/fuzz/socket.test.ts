/**
 * CI fuzz over real sockets: a `sitedns serve` process gets fixed-seed fuzzed packets over UDP
 * and TCP, with valid queries between them that must all be answered, and nothing may answer a
 * QR=1 or short packet. The long run is bench/fuzz/run.ts (docs/security.md has the figures).
 */
import t from 'tap';
import { FUZZ_ZONE_FILES } from '../../bench/fuzz/handler-fuzz.js';
import { fuzzTcp, fuzzUdp, newStats } from '../../bench/fuzz/socket-fuzz.js';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { startSitedns, udpQuery } from '../helpers/net.js';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';
import { copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';

t.test('fuzzed UDP and TCP against a real server', async (t) => {
  const dir = tempZonesDir({});
  for (const f of FUZZ_ZONE_FILES) copyFileSync(f, join(dir, basename(f)));
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0']);
  t.teardown(() => server.stop());

  const stats = newStats();
  await fuzzUdp({ port: server.port, seed: 0x5eed0701, packets: 40_000 }, stats);
  await fuzzTcp({ port: server.port, seed: 0x5eed0702, frames: 16_000 }, stats);
  t.same(stats.failures, [], 'no failures');
  t.equal(stats.repliesToSilent, 0, 'no reply to any QR=1 or short packet');
  t.equal(stats.udpValidAnswered, 5_000, 'every valid UDP query between the broken ones answered');
  t.ok(stats.tcpAnswered > 0 && stats.tcpSilentFrames > 0 && stats.tcpGarbageStreams > 0);
  t.comment(JSON.stringify({ ...stats, failures: undefined }));

  const after = decode((await udpQuery(server.port, query('app.example.com')))!);
  t.equal(after.rcode, 0, 'still answering');
  t.equal(server.proc.exitCode, null, 'still running');
  t.notOk(server.logs.some((l) => /uncaught|unhandled/i.test(JSON.stringify(l))), 'no uncaught error logged');
});

// The UDP threads' blocking sockets (`serve --udp-threads`) read the same garbage through
// their own receive path in C, then the same handler.
const noThreads = udpThreadsUnavailable();
t.test('fuzzed UDP against serve --udp-threads 2', { skip: noThreads !== null && process.env.SITEDNS_REQUIRE_ADDON !== '1' ? noThreads : false }, async (t) => {
  const dir = tempZonesDir({});
  for (const f of FUZZ_ZONE_FILES) copyFileSync(f, join(dir, basename(f)));
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--udp-threads', '2']);
  t.teardown(() => server.stop());

  const stats = newStats();
  await fuzzUdp({ port: server.port, seed: 0x5eed0703, packets: 24_000 }, stats);
  t.same(stats.failures, [], 'no failures');
  t.equal(stats.repliesToSilent, 0, 'no reply to any QR=1 or short packet');
  t.equal(stats.udpValidAnswered, 3_000, 'every valid UDP query between the broken ones answered');
  t.comment(JSON.stringify({ ...stats, failures: undefined }));

  const after = decode((await udpQuery(server.port, query('app.example.com')))!);
  t.equal(after.rcode, 0, 'still answering');
  t.equal(server.proc.exitCode, null, 'still running');
  t.notOk(server.logs.some((l) => /uncaught|unhandled|died/i.test(JSON.stringify(l))), 'no uncaught error logged, no thread died');
});
