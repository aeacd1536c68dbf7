/**
 * The compiled model's per-name costs (docs/benchmarks.md "Scale"): at 100,000 names every
 * object per name shows in RSS, so the model keeps none it does not need.
 */
import t from 'tap';
import { QTYPE } from '../../src/dns/constants.js';
import { rrsetOf } from '../../src/model/resolve.js';
import { lookup } from '../../src/server/lookup.js';
import { compileText } from '../helpers/dns.js';

const zones = compileText(`zone: m.test
soa: { mname: ns1.m.test, rname: h.m.test }
nameservers: { ns1.m.test: [192.0.2.1] }
sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.11] }
pool: { name: www, sites: [a, b] }
records:
  mail: { MX: ["10 mx1.m.test."], TXT: "v=spf1 -all", A: [192.0.2.25] }
  alias: { CNAME: www.m.test. }
`);
const zone = zones.zones.get('m.test')!;

t.test('the lookup memo of a name is created on its first lookup only', async (t) => {
  const mail = zone.nodes.get('mail.m.test')!;
  t.equal(mail.results, undefined, 'no memo after compile');
  t.equal(lookup(zones, 'mail.m.test', QTYPE.A).kind, 'answer');
  t.equal(mail.results?.size, 1, 'memo after the first lookup');
  t.equal(lookup(zones, 'mail.m.test', QTYPE.A), lookup(zones, 'mail.m.test', QTYPE.A), 'memoized');
  t.ok(Object.isSealed(mail), 'nodes are sealed: the memo is the only field set later');
});

t.test('RRsets are an array in zone-file order; names without any share one empty array', async (t) => {
  const mail = zone.nodes.get('mail.m.test')!;
  t.same(mail.rrsets.map((s) => s.type), [QTYPE.A, QTYPE.MX, QTYPE.TXT], 'zone-file type order (STATIC_TYPES)');
  t.equal(rrsetOf(mail, QTYPE.MX)?.records.length, 1);
  t.equal(rrsetOf(mail, QTYPE.AAAA), undefined);
  const pool = zone.nodes.get('www.m.test')!;
  const alias = zone.nodes.get('alias.m.test')!;
  t.equal(pool.rrsets.length, 0);
  t.equal(alias.rrsets, pool.rrsets, 'one shared empty array');
  t.ok(alias.cname, 'the CNAME is kept apart');
  t.ok(Object.isFrozen(pool.rrsets));
});

t.test('fixed RDATA parts are slices of a shared buffer, not an ArrayBuffer each', async (t) => {
  const mx = rrsetOf(zone.nodes.get('mail.m.test')!, QTYPE.MX)!.records[0].rdata[0] as Buffer;
  t.ok(Buffer.isBuffer(mx));
  t.same([...mx], [0, 10], 'preference 10');
  t.ok(mx.buffer.byteLength > mx.length, 'a slice of a larger (pooled) ArrayBuffer');
});
