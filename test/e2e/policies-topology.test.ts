/** End-to-end (real UDP): ECS from a Europe network gets a Europe site, with the scope set. */
import t from 'tap';
import { decode, ecsOption, query, tempZonesDir } from '../helpers/dns.js';
import { startSitedns, udpQuery } from '../helpers/net.js';

const ZONE = `zone: app.example.com
soa: { mname: ns1.app.example.com, rname: hostmaster.example.com }
nameservers: { ns1.app.example.com: [192.0.2.53] }
sites:
  boston: { addresses: [203.0.113.10, "2001:db8:b::10"] }
  chicago: { addresses: [203.0.113.20] }
  geneva: { addresses: [198.51.100.30, "2001:db8:e::30"] }
groups:
  americas: [boston, chicago]
  europe: [geneva]
pool:
  name: "@"
  policy: least-busy
  topology: { europe: [198.51.100.0/24, "2001:db8:e::/48"], americas: [203.0.113.0/24], default: americas }
`;

t.test('topology over UDP, by ECS and by resolver address', async (t) => {
  const server = await startSitedns(['serve', '--zones', tempZonesDir({ 'app.yaml': ZONE }), '--listen', '127.0.0.1:0']);
  t.teardown(() => server.stop());
  const ask = async (type: string, ecs?: [string, number]) =>
    decode((await udpQuery(server.port, query('app.example.com', type, { edns: ecs ? { options: ecsOption(ecs[0], ecs[1]) } : {} })))!);

  for (let i = 0; i < 5; i++) {
    const eu = await ask('A', ['198.51.100.0', 24]);
    t.same(eu.answers.map((a: any) => a.address), ['198.51.100.30'], 'a Europe client subnet gets Geneva');
    t.same(eu.opt.rdata[0], { ednsCode: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 24, ip: '198.51.100.0' }, 'ECS echoed with scope /24');
  }
  // /64, not /56: dns2 (the test's decoder) misreads an odd number of IPv6 ECS address bytes.
  const eu6 = await ask('AAAA', ['2001:db8:e:4400::', 64]);
  t.same(eu6.answers.map((a: any) => a.address), ['2001:db8:e::30']);
  t.equal(eu6.opt.rdata[0].scopePrefixLength, 48, 'IPv6: scope is the rule\'s /48');

  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const us = await ask('A', ['203.0.113.0', 24]);
    seen.add(us.answers[0].address);
    t.equal(us.opt.rdata[0].scopePrefixLength, 24);
  }
  t.ok([...seen].every((a) => a === '203.0.113.10' || a === '203.0.113.20'), `an Americas subnet gets Americas sites (${[...seen]})`);

  // No ECS: the resolver's address (127.0.0.1, in no rule) -> the default group, no ECS option.
  const plain = await ask('A');
  t.ok(['203.0.113.10', '203.0.113.20'].includes(plain.answers[0].address), 'default group');
  t.same(plain.opt.rdata ?? [], [], 'no ECS in the query, none in the answer');

  // A malformed ECS (address bits beyond the source prefix: 198.51.100.0/20) is FORMERR (RFC 7871 §7.1.2).
  const bad = decode((await udpQuery(server.port, query('app.example.com', 'A', { edns: { options: ecsOption('198.51.100.0', 20) } })))!);
  t.equal(bad.rcode, 1, 'FORMERR');
});
