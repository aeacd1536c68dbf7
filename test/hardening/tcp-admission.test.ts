/**
 * The TCP admission policy (src/policy/tcp-admission.ts), socket-free: caps per address and per
 * network (IPv4 /24, IPv6 /56) refuse; a full table closes its longest-idle connection
 * (RFC 7766 §6.2.3). tcp.test.ts shows the same with real sockets.
 */
import t from 'tap';
import { admissionNetworkOf, ConnectionTable } from '../../src/policy/tcp-admission.js';

t.test('client networks are the /24 and the /56', async (t) => {
  const cases: [string, string][] = [
    ['192.0.2.77', '192.0.2.0/24'],
    ['192.0.3.1', '192.0.3.0/24'],
    ['::ffff:192.0.2.9', '192.0.2.0/24'],
    ['2001:db8:0:1ff:1:2:3:4', '2001:db8:0:100::/56'],
    ['2001:db8:0:2ff::1', '2001:db8:0:200::/56'],
    ['::1', '::/56'],
    ['fe80::1%eth0', 'fe80::/56'],
    ['not an address', 'not an address'],
  ];
  for (const [address, network] of cases) t.equal(admissionNetworkOf(address), network, address);
});

t.test('over the per-address or per-network cap a connection is refused', async (t) => {
  const table = new ConnectionTable<string>({ maxConnections: 100, maxPerAddress: 2, maxPerNetwork: 3 });
  t.same(table.admit('a1', '192.0.2.1'), { admitted: true, evict: null });
  t.same(table.admit('a2', '192.0.2.1'), { admitted: true, evict: null });
  t.same(table.admit('a3', '192.0.2.1'), { admitted: false, reason: 'address' }, 'a third from one address');
  t.same(table.admit('b1', '192.0.2.2'), { admitted: true, evict: null }, 'another address of the network');
  t.same(table.admit('c1', '192.0.2.3'), { admitted: false, reason: 'network' }, 'a fourth from the /24');
  t.same(table.admit('d1', '192.0.3.1'), { admitted: true, evict: null }, 'the next /24 has its own allowance');
  table.remove('a1');
  table.remove('a1');
  t.same(table.admit('c1', '192.0.2.3'), { admitted: true, evict: null }, 'a closed connection frees its place');
  t.same(table.admit('c2', '192.0.2.3'), { admitted: false, reason: 'network' }, 'once, however often it is removed');
  t.equal(table.size, 4);

  const six = new ConnectionTable<string>({ maxConnections: 100, maxPerAddress: 10, maxPerNetwork: 2 });
  t.ok(six.admit('x', '2001:db8:0:100::1').admitted);
  t.ok(six.admit('y', '2001:db8:0:1ff::2').admitted, 'another address of the same /56');
  t.same(six.admit('z', '2001:db8:0:1aa::3'), { admitted: false, reason: 'network' }, 'a third from the /56');
  t.ok(six.admit('w', '2001:db8:0:200::1').admitted, 'the next /56');
});

t.test('a full table closes the longest-idle connection for a new one', async (t) => {
  const table = new ConnectionTable<string>({ maxConnections: 3, maxPerAddress: 10, maxPerNetwork: 10 });
  for (const c of ['a', 'b', 'c']) table.admit(c, '192.0.2.1');
  table.touch('a');
  t.same(table.admit('d', '198.51.100.1'), { admitted: true, evict: 'b' }, 'b was idle longest (a spoke since)');
  t.same(table.admit('e', '198.51.100.1'), { admitted: true, evict: 'c' });
  t.same(table.admit('f', '198.51.100.1'), { admitted: true, evict: 'a' });
  t.equal(table.size, 3);
  table.touch('gone');
  t.equal(table.size, 3, 'touching a closed connection adds nothing');
  t.same(table.admit('g', '192.0.2.1'), { admitted: true, evict: 'd' }, 'the evicted ones freed their address allowance');

  const small = new ConnectionTable<string>({ maxConnections: 3, maxPerAddress: 1, maxPerNetwork: 10 });
  for (const [c, a] of [['a', '192.0.2.1'], ['b', '192.0.2.2'], ['c', '192.0.2.3']]) small.admit(c, a);
  t.same(small.admit('d', '192.0.2.3'), { admitted: false, reason: 'address' }, 'a client at its own cap evicts no one');
  t.equal(small.size, 3);

  const none = new ConnectionTable<string>({ maxConnections: 0, maxPerAddress: 1, maxPerNetwork: 1 });
  t.same(none.admit('a', '192.0.2.1'), { admitted: false, reason: 'full' }, 'a table of size 0 admits nothing');
});

t.test('a network refused more than 16 times in a second: its refused connections are held before closing', async (t) => {
  const { REFUSALS_BEFORE_HOLD, REFUSED_HOLD_MS } = await import('../../src/policy/tcp-admission.js');
  let now = 1_000_000;
  const table = new ConnectionTable<string>({ maxConnections: 100, maxPerAddress: 1, maxPerNetwork: 2 }, () => now);
  table.admit('a', '192.0.2.1');
  table.admit('b', '192.0.2.2');
  const verdicts = Array.from({ length: REFUSALS_BEFORE_HOLD + 2 }, (_, i) => table.admit(`x${i}`, '192.0.2.9'));
  t.same(verdicts.slice(0, REFUSALS_BEFORE_HOLD), Array(REFUSALS_BEFORE_HOLD).fill({ admitted: false, reason: 'network' }), 'the first 16 are closed at once');
  t.same(verdicts.slice(REFUSALS_BEFORE_HOLD), Array(2).fill({ admitted: false, reason: 'network', holdMs: REFUSED_HOLD_MS }), 'then held');
  t.same(table.admit('y', '198.51.100.1'), { admitted: true, evict: null }, 'another network is not affected');
  now += 1000;
  t.same(table.admit('z', '192.0.2.9'), { admitted: false, reason: 'network' }, 'a new second: closed at once again');
});
