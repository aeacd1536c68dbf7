/** The end-to-end serve tests on the batched UDP path, forced; see serve-dgram.test.ts. */
import t from 'tap';
import { batchedUnavailable } from '../../src/server/udp-batched.js';

const why = batchedUnavailable();
if (why !== null) {
  if (process.env.SITEDNS_REQUIRE_ADDON === '1') t.fail(`SITEDNS_REQUIRE_ADDON=1 but ${why}`);
  else t.skip(why);
} else {
  process.env.SITEDNS_UDP_PATH = 'batched';
  await import('../e2e/serve.test.js');
}
