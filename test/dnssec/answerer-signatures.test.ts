/**
 * `serve --udp-threads 2` with a signed zone, driven in-process through the built modules (as
 * test/perf/udp-threads.test.ts): real threads on real SO_REUSEPORT sockets, queries from fresh
 * source ports so that both threads answer. The threads adopt the signatures their primary serves
 * (dnssec/signature-bytes.ts): every thread answers the primary's RRSIG bytes, at start and after
 * a reload the loader thread signed. ECDSA signatures are randomized, so a thread that signed its
 * own copy would answer other bytes. Skipped where the batched addon is not built, unless
 * SITEDNS_REQUIRE_ADDON=1.
 */
import t, { type Test } from 'tap';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeUdpPort, udpQuery } from '../helpers/net.js';
import { query, tempZonesDir } from '../helpers/dns.js';
import { memoryLogger } from '../helpers/metrics.js';
import { makeKeySet, parseMessage, parseRrsig, RRSIG } from '../helpers/dnssec.js';

const dist = (path: string) => new URL(`../../dist/${path}`, import.meta.url).href;
const threadsModule = (await import(dist('server/udp-threads.js'))) as typeof import('../../src/server/udp-threads.js');
const storeModule = (await import(dist('zones/zone-store.js'))) as typeof import('../../src/zones/zone-store.js');
const reloadModule = (await import(dist('zones/reload.js'))) as typeof import('../../src/zones/reload.js');
const { prebuildTableInSlices } = (await import(dist('server/fast-path.js'))) as typeof import('../../src/server/fast-path.js');
const snapshotModule = (await import(dist('state/snapshot.js'))) as typeof import('../../src/state/snapshot.js');
const signaturesModule = (await import(dist('model/signatures.js'))) as typeof import('../../src/model/signatures.js');

const TEXT = readFileSync(new URL('../fixtures/signed.example.net.yaml', import.meta.url), 'utf8');

async function run(t: Test): Promise<void> {
  const dir = tempZonesDir({ 'signed.yaml': TEXT });
  const keys = makeKeySet('example.net');
  const { logger, lines } = memoryLogger('debug');
  const reloads = new reloadModule.ReloadController({ zoneStore: new storeModule.ZoneStore(dir, { keepValidated: true, keys: { keysFor: () => keys, now: Date.now } }), prebuild: prebuildTableInSlices }, logger);
  t.teardown(() => reloads.close());
  await reloads.start();
  const pool = await threadsModule.startUdpThreads({
    threads: 2,
    zonesPath: dir,
    zoneTexts: () => reloads.zoneTexts(),
    listen: [{ host: '127.0.0.1', port: await freeUdpPort() }],
    logger,
    logLevel: 'info',
    currentState: () => snapshotModule.makeSnapshot(new Map(), true),
    receiveTimeoutMs: 50,
    steer: false, // the kernel's distribution: queries from fresh source ports reach both threads
  });
  t.teardown(() => pool.close());
  const port = pool.listeners[0].port;

  /** The primary's RRSIG signature over mx.example.net A, as hex. */
  const primarySignature = () => {
    const zone = reloads.runtime.zones.zones.get('example.net')!;
    return (zone.signatures!.rrsigs.get(signaturesModule.rrsetKey('mx.example.net', 1))!.records[0].rdata[2] as Buffer).toString('hex');
  };
  /** The RRSIG signatures the threads answer for mx.example.net A from 24 fresh source ports (both threads answer some). */
  const answered = async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const reply = await udpQuery(port, query('mx.example.net', 'A', { edns: { do: true } }));
      for (const rr of parseMessage(reply!).answer) if (rr.type === RRSIG) seen.add(parseRrsig(rr.rdata).signature.toString('hex'));
    }
    return [...seen];
  };
  const bothAnswered = async () => (await pool.metrics()).map((r) => (r.find((m) => m.name === 'sitedns_queries_total')?.values ?? []).reduce((sum, v) => sum + Number(v.value), 0));

  t.same(await answered(), [primarySignature()], "every thread answers the primary's RRSIG bytes");
  const counts = await bothAnswered();
  t.ok(counts.length === 2 && counts.every((n) => n > 0), `both threads answered (${counts.join(', ')})`);
  const before = primarySignature();
  appendFileSync(join(dir, 'signed.yaml'), '# edited\n');
  const outcome = await reloads.reload('sighup');
  t.same(outcome.problems, []);
  t.match(lines.findLast((l) => l.msg === 'zones reloaded'), { signing: { here: 0, adopted: 1 } }, 'the primary adopted what the loader thread signed');
  t.not(primarySignature(), before, 'signed again');
  t.equal((await pool.reload()).ok, true, 'every thread reloaded');
  t.same(await answered(), [primarySignature()], 'after the reload too, every thread answers the loader thread\'s RRSIG bytes');
}

const unavailable = threadsModule.udpThreadsUnavailable();
if (unavailable !== null && process.env.SITEDNS_REQUIRE_ADDON !== '1') {
  t.skip(`UDP threads cannot run here: ${unavailable}`);
} else {
  t.test('UDP threads answer the RRSIG bytes their primary serves', (t) => run(t));
}
