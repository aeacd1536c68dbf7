/** Topology: longest prefix, default group, ECS vs resolver address, fallback, scope (RFC 7871). */
import t from 'tap';
import { addressBytes, commonPrefixBits, matchTopology } from '../../src/policy/topology.js';
import { selectAnswer } from '../../src/policy/select.js';
import type { ClientInfo } from '../../src/policy/types.js';
import { answerOf, env, nameOf, RESOLVER, snap, zoneOf } from '../helpers/policy.js';

const zone = zoneOf(`sites:
  boston: { addresses: [203.0.113.10, "2001:db8:b::10"] }
  chicago: { addresses: [203.0.113.20] }
  geneva: { addresses: [198.51.100.30, "2001:db8:e::30"] }
  zurich: { addresses: [198.51.100.40] }
groups:
  americas: [boston, chicago]
  europe: [geneva]
  swiss: [zurich]
pool:
  name: "@"
  policy: first
  topology:
    europe: [198.51.100.0/24, "2001:db8:e::/48", 10.0.0.0/8]
    americas: [203.0.113.0/24, 10.1.0.0/16]
    swiss: [10.1.2.0/24]
    default: americas
`);
const pool = nameOf(zone, '@');

function client(address: string, ecs?: [string, number]): ClientInfo {
  if (!ecs) return { address, ecs: null };
  const bytes = addressBytes(ecs[0])!;
  const full = Buffer.alloc(bytes.length);
  Buffer.from(bytes).copy(full);
  return { address, ecs: { family: bytes.length === 4 ? 1 : 2, sourcePrefix: ecs[1], address: full } };
}

t.test('client network -> group and scope', async (t) => {
  const cases: [ClientInfo, string | undefined, number | undefined, string][] = [
    [client('198.51.100.7'), 'europe', undefined, 'resolver address, no ECS: no scope'],
    [client('192.0.2.1', ['198.51.100.0', 24]), 'europe', 24, 'ECS wins over the resolver address'],
    [client('198.51.100.7', ['203.0.113.0', 24]), 'americas', 24, 'ECS from the Americas via a European resolver'],
    [client('192.0.2.1', ['192.0.2.0', 24]), 'americas', 6, 'no rule: default group, for 192.0.0.0/6 (a /5 would include Europe\'s 198.51.100.0/24)'],
    [client('192.0.2.1', ['2001:db8:e:1::', 56]), 'europe', 48, 'IPv6 ECS'],
    [client('2001:db8:e::1'), 'europe', undefined, 'IPv6 resolver'],
    [client('::ffff:198.51.100.7'), 'europe', undefined, 'IPv4-mapped resolver address'],
    [client('192.0.2.1', ['10.9.0.0', 16]), 'europe', 13, '10/8 is Europe, but 10.1/16 is not: scope excludes it (10.9 and 10.1 share 12 bits)'],
    [client('192.0.2.1', ['10.1.9.0', 24]), 'americas', 21, 'longest prefix: 10.1/16 beats 10/8; 10.1.2/24 (swiss) shares 20 bits, excluded by 21'],
    [client('192.0.2.1', ['10.1.2.0', 24]), 'swiss', 24, 'the most specific rule'],
    [client('192.0.2.1', ['10.1.0.0', 16]), 'americas', 23, 'a more specific rule inside the client network: scope beyond the source prefix'],
    [client('198.51.100.7', ['0.0.0.0', 0]), 'europe', 0, 'ECS /0: the resolver address decides, scope 0 (RFC 7871 §7.1.2)'],
  ];
  for (const [c, group, scope, why] of cases) {
    const m = matchTopology(pool.pool!, c);
    t.same([m.group?.id, m.scope], [group, scope], why);
  }
  t.equal(commonPrefixBits(Uint8Array.from([10, 1, 0, 0]), Uint8Array.from([10, 1, 2, 0]), 24), 22);
  t.equal(commonPrefixBits(Uint8Array.from([10, 1, 2, 0]), Uint8Array.from([10, 1, 2, 0]), 24), 24);
});

t.test('Pool Name answers from the group; falls back to the whole pool; Group Names ignore topology', async (t) => {
  const europeEcs = client('192.0.2.1', ['198.51.100.0', 24]);
  const s1 = selectAnswer(pool, 4, snap({}), europeEcs, env());
  t.same([answerOf(s1), s1.scope], ['geneva', 24]);
  const s2 = selectAnswer(pool, 4, snap({ geneva: { up: false } }), europeEcs, env());
  t.same([answerOf(s2), s2.scope], ['boston', 24], 'europe down: the whole pool (first in pool order), scope kept');
  const s3 = selectAnswer(pool, 6, snap({}), client('192.0.2.1', ['10.1.2.0', 24]), env());
  t.same([answerOf(s3), s3.scope], ['boston', 24], 'swiss has no IPv6 site: whole pool for AAAA');
  const s4 = selectAnswer(pool, 4, snap({ boston: { up: false }, chicago: { up: false }, geneva: { up: false }, zurich: { up: false } }), europeEcs, env());
  t.same([s4.allDown, s4.scope], [true, 24], 'all down keeps the scope');
  const group = selectAnswer(nameOf(zone, 'americas'), 4, snap({}), europeEcs, env());
  t.same([answerOf(group), group.scope], ['boston', undefined], 'Group Name: no topology, no scope');
  const noEcs = selectAnswer(pool, 4, snap({}), RESOLVER, env());
  t.same([answerOf(noEcs), noEcs.scope], ['boston', undefined], 'resolver in no rule: default group');
});

t.test('a pool without a default group: unmatched clients get the whole pool', async (t) => {
  const z = zoneOf(`sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.20] }
groups:
  gb: [b]
pool: { name: "@", policy: first, topology: { gb: [198.51.100.0/24] } }
`);
  const p = nameOf(z, '@');
  t.equal(answerOf(selectAnswer(p, 4, snap({}), client('198.51.100.9'), env())), 'b');
  t.equal(answerOf(selectAnswer(p, 4, snap({}), client('203.0.113.9'), env())), 'a');
});

t.test('address parsing', async (t) => {
  t.same([...addressBytes('198.51.100.7')!], [198, 51, 100, 7]);
  t.equal(addressBytes('198.51.100.256'), undefined, 'an octet over 255 is not an address');
  t.same([...addressBytes('::ffff:10.1.2.3')!], [10, 1, 2, 3], 'IPv4-mapped');
  t.equal(addressBytes('2001:db8::1')!.length, 16);
  t.equal(addressBytes('not an address'), undefined);
  // A resolver address that does not parse: the default group.
  t.equal(matchTopology(pool.pool!, { address: 'bogus', ecs: null }).group?.id, 'americas');
});

t.test('dotted quads read by hand agree with ipaddr.js', async (t) => {
  for (const text of ['0.0.0.0', '255.255.255.255', '10.1.2.3', '1.2.3.4.5', '1..2.3', '256.1.1.1', '1.2.3.4 ', '1.2.3.1000', '.1.2.3', '1.2.3.']) {
    const ours = addressBytes(text);
    const ipaddr = (await import('ipaddr.js')).default;
    const theirs = ipaddr.IPv4.isValidFourPartDecimal(text) ? [...ipaddr.IPv4.parse(text).toByteArray()] : undefined;
    t.same(ours === undefined ? undefined : [...ours], theirs, JSON.stringify(text));
  }
});
