/**
 * A store outage is one outage in the log: a notice that reaches the follower while the store is
 * not connected (the subscriber connection delivering what it had read after the command
 * connection closed) is heard, but does not end the outage, so the outage is not logged twice.
 */
import t from 'tap';
import { StateFollower } from '../../src/state/follower.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { Runtime } from '../../src/state/runtime.js';
import type { Notice } from '../../src/state/types.js';
import { compileText } from '../helpers/dns.js';
import { memoryLogger } from '../helpers/metrics.js';

const zoneText = 'zone: z.test\nsoa: { mname: ns1.z.test, rname: h.z.test }\nnameservers: { ns1.z.test: [192.0.2.1] }\nsites:\n  a: { addresses: [192.0.2.10] }\n';
const NEVER = 1_000_000_000;

/** The in-memory store with a connection that can be cut and restored; notices still flow while cut. */
class CuttableStore extends MemoryStateStore {
  private up = true;
  private onConnection: ((connected: boolean) => void) | undefined;
  override subscribe(onNotice: (n: Notice) => void, onConnection?: (c: boolean) => void) {
    this.onConnection = onConnection;
    return super.subscribe(onNotice, onConnection);
  }
  override connected(): boolean {
    return this.up;
  }
  cut(): void {
    this.up = false;
    this.onConnection?.(false);
  }
  restore(): void {
    this.up = true;
    this.onConnection?.(true);
  }
}

t.test('a notice heard during an outage does not end it: one outage, one log line each way', async (t) => {
  const store = new CuttableStore();
  const { logger, lines } = memoryLogger('info');
  const follower = new StateFollower({ store, runtime: new Runtime(compileText(zoneText)), logger, staleAfterMs: 60_000, resyncMs: NEVER, tickMs: NEVER });
  t.teardown(() => follower.stop());
  t.equal(await follower.start(100), 'store');
  const said = (prefix: string) => lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(prefix)).length;

  store.cut();
  t.equal(follower.connected, false, 'cut: the store is down');
  await store.writeView('p1', 'z.test/a', { up: true, checkedAt: Date.now(), since: Date.now(), reason: 'HTTP 200' });
  t.equal(follower.connected, false, 'a notice heard while cut leaves it down');
  t.equal(await follower.resync(), false, 'a re-read while cut fails');
  store.cut();
  t.equal(said('state store unreachable'), 1, 'the outage is logged once');
  t.equal(said('state store reachable again'), 0, 'and not ended by the notice');

  store.restore();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(follower.connected, true, 'restored: the store is up');
  t.equal(said('state store reachable again'), 1, 'the end of the outage is logged once');
});
