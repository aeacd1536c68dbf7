/**
 * CI fuzz of the socket-free handler: a fixed seed, 200,000 packets (a few seconds). The long run
 * is bench/fuzz/run.ts (docs/security.md has the figures).
 */
import t from 'tap';
import { fuzzHandler, fuzzZones } from '../../bench/fuzz/handler-fuzz.js';
import { MUTATOR_NAMES } from '../../bench/fuzz/packets.js';

t.test('200,000 fuzzed packets through Handler.handle()', async (t) => {
  const stats = fuzzHandler(fuzzZones(), 0x5eed0007, 200_000);
  t.same(stats.failures, [], 'no failures');
  t.equal(stats.failureCount, 0);
  t.equal(stats.packets, 200_000);
  t.equal(stats.validAnswered, 25_000, 'every valid query between the broken ones answered');
  t.ok(stats.silent > 0, 'some packets were QR=1 or short and got no reply');
  for (const name of MUTATOR_NAMES) t.ok(Object.keys(stats.kinds).some((k) => k.includes(name)), `mutator ${name} ran`);
  t.comment(`replies ${stats.replies}, silent ${stats.silent}, rcodes ${JSON.stringify(stats.rcodes)}`);
});
