/** The middleware's parts: the signed marker, URL surgery, the topology default. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { compileText } from '../helpers/dns.js';
import { checkMarker, checkMarkers, signMarker, MAX_MARKERS_CHECKED } from '../../src/affinity/marker.js';
import { buildLocation, parseHost, parseTarget } from '../../src/affinity/url.js';
import { groupByTopology } from '../../src/affinity/topology.js';

const keys = { secrets: [Buffer.from('0123456789abcdef-secret')], zone: 'app.example.com' };
const timing = { maxAgeMs: 60_000, clockSkewMs: 5_000 };
const NOW = 1_800_000_000_000;
const at = Math.floor(NOW / 1000);

t.test('marker: signed, bound to zone and site, expires, tolerates skew', async (t) => {
  const raw = signMarker(keys, { issuedAt: at, to: 'boston' });
  t.match(raw, /^1\.\d+\.boston\.\.\.[A-Za-z0-9_-]{22}$/);
  t.same(checkMarker(keys, timing, raw, 'boston', NOW), { ok: true, marker: { issuedAt: at, to: 'boston' } });
  const overflow = signMarker(keys, { issuedAt: at, to: 'chicago', initial: 'boston', group: 'americas' });
  t.same(checkMarker(keys, timing, overflow, 'chicago', NOW), { ok: true, marker: { issuedAt: at, to: 'chicago', initial: 'boston', group: 'americas' } });

  t.same(checkMarker(keys, timing, raw, 'chicago', NOW), { ok: false, reason: 'for another site' });
  t.same(checkMarker({ ...keys, zone: 'other.example' }, timing, raw, 'boston', NOW), { ok: false, reason: 'bad signature' }, 'another zone with the same secret');
  t.same(checkMarker(keys, timing, raw.replace('boston', 'boston2'), 'boston2', NOW), { ok: false, reason: 'bad signature' }, 'edited site');
  t.same(checkMarker(keys, timing, raw.replace(String(at), String(at + 100)), 'boston', NOW + 100_000), { ok: false, reason: 'bad signature' }, 'edited time');
  const flipped = raw.slice(0, -1) + (raw.endsWith('A') ? 'B' : 'A');
  t.same(checkMarker(keys, timing, flipped, 'boston', NOW), { ok: false, reason: 'bad signature' });
  t.same(checkMarker(keys, timing, raw, 'boston', NOW + 65_000), { ok: true, marker: { issuedAt: at, to: 'boston' } }, '60s + 5s skew');
  t.same(checkMarker(keys, timing, raw, 'boston', NOW + 66_000), { ok: false, reason: 'expired' });
  t.same(checkMarker(keys, timing, raw, 'boston', NOW - 5_000), { ok: true, marker: { issuedAt: at, to: 'boston' } }, 'minted by a clock 5s ahead');
  t.same(checkMarker(keys, timing, raw, 'boston', NOW - 5_001), { ok: false, reason: 'from the future' });
  for (const bad of ['', '1', '2.' + raw.slice(2), raw + 'x', `${raw}.x`, 'x'.repeat(10_000), '1.99999999999999.boston...' + 'A'.repeat(22)]) {
    t.same(checkMarker(keys, timing, bad, 'boston', NOW), { ok: false, reason: 'malformed' }, `malformed ${bad.slice(0, 30)}`);
  }
  // Rotation: the old secret still verifies, the new one signs.
  const rotated = { ...keys, secrets: [Buffer.from('the-new-secret-of-2026'), keys.secrets[0]] };
  t.equal(checkMarker(rotated, timing, raw, 'boston', NOW).ok, true, 'old secret still accepted');
  t.equal(checkMarker(keys, timing, signMarker(rotated, { issuedAt: at, to: 'boston' }), 'boston', NOW).ok, false, 'new signatures need the new secret');
  // Only a bounded number of markers is checked.
  const many = [...Array(MAX_MARKERS_CHECKED).fill('junk'), raw];
  t.same(checkMarkers(keys, timing, many, 'boston', NOW), { ok: false, reason: 'malformed' });
  t.same(checkMarkers(keys, timing, [], 'boston', NOW), { ok: false, reason: 'absent' });
});

t.test('parseTarget keeps path and query bytes and takes out every marker', async (t) => {
  t.same(parseTarget('/a/b', '_affinity'), { path: '/a/b', query: [], markers: [], clean: '/a/b' });
  t.same(parseTarget('/a?x=1&y=%20z+w&&flag', '_affinity'), { path: '/a', query: ['x=1', 'y=%20z+w', '', 'flag'], markers: [], clean: '/a?x=1&y=%20z+w&&flag' }, 'untouched without markers');
  t.same(parseTarget('/a?x=1&_affinity=M1&y=2&_affinity=M2', '_affinity'), { path: '/a', query: ['x=1', 'y=2'], markers: ['M1', 'M2'], clean: '/a?x=1&y=2' });
  t.same(parseTarget('/a?_affinity=M', '_affinity'), { path: '/a', query: [], markers: ['M'], clean: '/a' });
  t.same(parseTarget('/a?%5Faffinity=M%2E', '_affinity')!.markers, ['M.'], 'encoded key and value');
  t.same(parseTarget('/p%20q/?_affinity=M&b=%E2%82%AC', '_affinity')!.clean, '/p%20q/?b=%E2%82%AC');
  t.same(parseTarget('http://host:8080/x?y=1', '_affinity'), { path: '/x', query: ['y=1'], markers: [], clean: '/x?y=1' }, 'absolute-form');
  t.same(parseTarget('http://host', '_affinity')!.path, '/');
  t.equal(parseTarget('*', '_affinity'), undefined);
  t.equal(parseTarget('host:443', '_affinity'), undefined);
  t.same(parseTarget('/a?x=%zz&_affinity=%zz', '_affinity')!.markers, ['%zz'], 'bad percent-encoding is kept raw');
});

t.test('parseHost and buildLocation', async (t) => {
  t.same(parseHost('Boston.App.Example.COM.:8080'), { name: 'boston.app.example.com', port: '8080' });
  t.same(parseHost('app.example.com'), { name: 'app.example.com', port: undefined });
  t.same(parseHost('[::1]:80'), { name: '[::1]', port: '80' });
  t.same(parseHost('a:b:c'), { name: 'a:b:c', port: undefined });
  t.equal(parseHost(''), undefined);
  t.equal(parseHost(undefined), undefined);
  t.equal(buildLocation('http', 'b.test', '80', '/p', ['x=1']), 'http://b.test/p?x=1', 'default port dropped');
  t.equal(buildLocation('https', 'b.test', '443', '/p', []), 'https://b.test/p');
  t.equal(buildLocation('https', 'b.test', '8443', '/p', [], { param: 'm', value: 'V' }), 'https://b.test:8443/p?m=V');
  t.equal(buildLocation('http', 'b.test', undefined, '//evil.test/x', ['a=1'], { param: 'm', value: 'V' }), 'http://b.test//evil.test/x?a=1&m=V', 'absolute Location: the path cannot change the host');
});

t.test('groupByTopology: longest prefix, IPv4-mapped, default', async (t) => {
  const zone = [...compileText(readFileSync('test/fixtures/app.example.com.yaml', 'utf8')).zones.values()][0];
  const pool = zone.pools[0];
  t.equal(groupByTopology(pool, '198.51.100.7')?.id, 'europe');
  t.equal(groupByTopology(pool, '::ffff:198.51.100.7')?.id, 'europe', 'IPv4-mapped IPv6');
  t.equal(groupByTopology(pool, '2001:db8:e:1::5')?.id, 'europe');
  t.equal(groupByTopology(pool, '203.0.113.9')?.id, 'americas');
  t.equal(groupByTopology(pool, '192.0.2.1')?.id, 'americas', 'default');
  t.equal(groupByTopology(pool, 'not an address')?.id, 'americas');
  t.equal(groupByTopology(undefined, '192.0.2.1'), undefined);
  const nested = [...compileText(`zone: n.test
soa: { mname: ns1.n.test, rname: h.n.test }
nameservers: { ns1.n.test: [192.0.2.1] }
sites: { a: { addresses: [192.0.2.10] }, b: { addresses: [192.0.2.11] } }
groups: { wide: [a, b], narrow: [b] }
pool: { name: "@", topology: { wide: [10.0.0.0/8], narrow: [10.1.2.0/23] } }
`).zones.values()][0];
  t.equal(groupByTopology(nested.pools[0], '10.1.3.200')?.id, 'narrow', 'longest prefix wins, odd prefix length');
  t.equal(groupByTopology(nested.pools[0], '10.1.4.1')?.id, 'wide');
  t.equal(groupByTopology(nested.pools[0], '11.0.0.1'), undefined, 'no match, no default');
});
