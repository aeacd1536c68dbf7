/**
 * The end-to-end serve and ops tests with UDP answered by threads (`serve --udp-threads 2`),
 * forced through SITEDNS_UDP_THREADS; see serve-dgram.test.ts and serve-batched.test.ts. The ops
 * suite covers what must reach the threads: file-watch and SIGHUP reloads, drains, explain.
 */
import t from 'tap';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';

const why = udpThreadsUnavailable();
if (why !== null) {
  if (process.env.SITEDNS_REQUIRE_ADDON === '1') t.fail(`SITEDNS_REQUIRE_ADDON=1 but ${why}`);
  else t.skip(why);
} else {
  process.env.SITEDNS_UDP_THREADS = '2';
  await import('../e2e/serve.test.js');
  await import('../e2e/ops.test.js');
}
