/** All-down transitions: one metric increment and one callback per transition, never per query. */
import t from 'tap';
import { allDownEventsTotal } from '../../src/metrics/definitions.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { compileText, query } from '../helpers/dns.js';
import { snap } from '../helpers/policy.js';

const zones = compileText(`zone: t.test
soa: { mname: ns1.t.test, rname: h.t.test }
nameservers: { ns1.t.test: [192.0.2.53] }
sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20] }
pool: { name: "@", all_down: servfail }
`);

async function eventsFor(name: string): Promise<number> {
  const metric = await allDownEventsTotal.get();
  return metric.values.find((v) => v.labels.name === name)?.value ?? 0;
}

t.test('the handler reports transitions of a name into and out of all-down', async (t) => {
  const runtime = new Runtime(zones);
  const changes: [string, boolean][] = [];
  const handler = new Handler(runtime, undefined, { onAllDown: (name, down) => changes.push([name.name, down]) });
  const before = await eventsFor('t.test');
  const ask = (n: number) => {
    for (let i = 0; i < n; i++) handler.handle(query('t.test', 'A'), { transport: 'udp', clientAddress: '192.0.2.1' });
  };
  ask(3);
  runtime.publishState(snap({ a: { up: false }, b: { up: false } }));
  ask(5);
  t.equal(handler.handle(query('t.test', 'A'), { transport: 'udp', clientAddress: '192.0.2.1' })![3] & 0xf, 2, 'all_down: servfail');
  runtime.publishState(snap({ a: { up: false } }));
  ask(2);
  runtime.publishState(snap({ a: { up: false }, b: { up: false } }));
  ask(2);
  t.same(changes, [['t.test', true], ['t.test', false], ['t.test', true]], 'one callback per transition');
  t.equal((await eventsFor('t.test')) - before, 2, 'two entries into all-down counted');
});

t.test('a Site Name back on the same site after an all-down spell is reported (shared selections)', async (t) => {
  // The prepared selection hands out one shared Selection per (site, reason): the answer before
  // and after the spell is the same object, yet both transitions must be seen, for A and AAAA.
  const siteZones = compileText(`zone: s.test
soa: { mname: ns1.s.test, rname: h.s.test }
nameservers: { ns1.s.test: [192.0.2.53] }
sites:
  a: { addresses: [192.0.2.10, "2001:db8::10"] }
  b: { addresses: [192.0.2.20] }
groups: { g: [a, b] }
`);
  const runtime = new Runtime(siteZones);
  const changes: [string, boolean][] = [];
  const handler = new Handler(runtime, undefined, { onAllDown: (name, down) => changes.push([name.name, down]) });
  const ask = (type: 'A' | 'AAAA') => handler.handle(query('a.s.test', type), { transport: 'udp', clientAddress: '192.0.2.1' });
  ask('A');
  runtime.publishState(snap({ a: { up: false }, b: { up: false } }, 's.test'));
  ask('AAAA'); // the spell is seen through the AAAA answers only
  runtime.publishState(snap({}, 's.test'));
  ask('A');
  ask('AAAA');
  t.same(changes, [['a.s.test', true], ['a.s.test', false]]);
});
