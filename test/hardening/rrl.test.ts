/** Response rate limiting (src/server/rrl.ts): table tests on an injected clock, then a real server. */
import t from 'tap';
import { ResponseRateLimiter, type RrlOptions } from '../../src/server/rrl.js';
import { RATE_CLASS_NONE, RATE_KIND, rateClassKind, responseRateClass } from '../../src/dns/rate-class.js';
import { slipResponse } from '../../src/dns/response.js';
import { fuzzZones } from '../../bench/fuzz/handler-fuzz.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { startNameserver } from '../../src/server/nameserver.js';
import { ReloadController } from '../../src/zones/reload.js';
import { prebuildTableInSlices } from '../../src/server/fast-path.js';
import { ZoneStore } from '../../src/zones/zone-store.js';
import { rateLimitedTotal } from '../../src/metrics/definitions.js';
import { createLogger } from '../../src/util/logger.js';
import { decode, query } from '../helpers/dns.js';
import { udpQuery } from '../helpers/net.js';

const handler = new Handler(new Runtime(fuzzZones()));
const reply = (name: string, type = 'A', opts = {}) => handler.handle(query(name, type, opts), { transport: 'udp', clientAddress: '192.0.2.1' })!;
const ANSWER = reply('mail.app.example.com');

function limiter(options: Partial<RrlOptions> = {}) {
  let now = 1_000_000;
  const rrl = new ResponseRateLimiter({ ratePerSecond: 5, windowSeconds: 3, slip: 2, ...options }, () => now);
  return { rrl, advance: (ms: number) => (now += ms) };
}
const run = (rrl: ResponseRateLimiter, n: number, address = '198.51.100.7', bytes = ANSWER) => Array.from({ length: n }, () => rrl.check(address, bytes));

t.test('the rate, then drop and slip in turn', async (t) => {
  const { rrl } = limiter();
  t.same(run(rrl, 5), ['send', 'send', 'send', 'send', 'send'], 'the first rate-per-second responses are sent');
  t.same(run(rrl, 6), ['drop', 'slip', 'drop', 'slip', 'drop', 'slip'], 'then every 2nd limited response slips');
});

t.test('slip 0 drops all, slip 1 truncates all', async (t) => {
  const a = limiter({ slip: 0 });
  t.same(run(a.rrl, 8).slice(5), ['drop', 'drop', 'drop']);
  const b = limiter({ slip: 1 });
  t.same(run(b.rrl, 8).slice(5), ['slip', 'slip', 'slip']);
  const c = limiter({ slip: 3 });
  t.same(run(c.rrl, 11).slice(5), ['drop', 'drop', 'slip', 'drop', 'drop', 'slip']);
});

t.test('tokens come back at the rate', async (t) => {
  const { rrl, advance } = limiter();
  run(rrl, 5);
  t.equal(rrl.check('198.51.100.7', ANSWER), 'drop');
  advance(200); // one token at 5/s; the drop above spent one, so this pays it back
  t.equal(rrl.check('198.51.100.7', ANSWER), 'slip', 'still in debt after 200 ms');
  advance(400);
  t.equal(rrl.check('198.51.100.7', ANSWER), 'send', 'answered again once a token is earned');
  advance(10_000);
  t.same(run(rrl, 6), ['send', 'send', 'send', 'send', 'send', 'drop'], 'a quiet network gets a full bucket, never more');
});

t.test('a flood runs up at most `window` seconds of debt', async (t) => {
  const { rrl, advance } = limiter({ ratePerSecond: 5, windowSeconds: 3 });
  for (let s = 0; s < 60; s++) {
    run(rrl, 100);
    advance(1000);
  }
  advance(2000);
  t.not(rrl.check('198.51.100.7', ANSWER), 'send', 'still limited 2 s after the flood');
  advance(3500);
  t.equal(rrl.check('198.51.100.7', ANSWER), 'send', 'answered once the window has passed, not minutes later');
});

t.test('accounts per /24 and /56', async (t) => {
  const { rrl } = limiter();
  run(rrl, 5, '198.51.100.7');
  t.equal(rrl.check('198.51.100.250', ANSWER), 'drop', 'same /24 shares the account');
  t.equal(rrl.check('198.51.101.7', ANSWER), 'send', 'the next /24 has its own');
  run(rrl, 5, '2001:db8:0:100::1');
  t.equal(rrl.check('2001:db8:0:1ff:ffff::9', ANSWER), 'drop', 'same /56 shares the account');
  t.equal(rrl.check('2001:db8:0:200::1', ANSWER), 'send', 'the next /56 has its own');
  const wide = limiter({ ipv4PrefixLength: 16 });
  run(wide.rrl, 5, '198.51.100.7');
  t.equal(wide.rrl.check('198.51.3.3', ANSWER), 'drop', 'prefix length is configurable');
});

t.test('loopback is exempt by default; exemptions are configurable', async (t) => {
  const { rrl } = limiter();
  t.same(new Set(run(rrl, 50, '127.0.0.1')), new Set(['send']));
  t.same(new Set(run(rrl, 50, '::1')), new Set(['send']));
  const none = limiter({ exempt: [] });
  t.ok(run(none.rrl, 10, '127.0.0.1').includes('drop'), 'loopback limited when not exempt');
  const lab = limiter({ exempt: ['203.0.113.0/24', '2001:db8:e::/48'] });
  t.same(new Set(run(lab.rrl, 50, '203.0.113.9')), new Set(['send']));
  t.same(new Set(run(lab.rrl, 50, '2001:db8:e:1::1')), new Set(['send']));
  t.ok(run(lab.rrl, 10, '127.0.0.1').includes('drop'));
  t.throws(() => new ResponseRateLimiter({ exempt: ['nonsense'] }), /not a network/);
});

t.test('rate 0 turns it off', async (t) => {
  const { rrl } = limiter({ ratePerSecond: 0 });
  t.notOk(rrl.enabled);
  t.same(new Set(run(rrl, 100)), new Set(['send']));
});

t.test('what counts as identical', async (t) => {
  const cls = (b: Buffer) => responseRateClass(b);
  t.equal(cls(reply('mail.app.example.com')), cls(reply('MAIL.app.EXAMPLE.com')), 'letter case does not make a new account');
  t.not(cls(reply('mail.app.example.com')), cls(reply('mail.app.example.com', 'AAAA')), 'another type is another response');
  t.not(cls(reply('mail.app.example.com')), cls(reply('app.example.com')), 'another name is another response');
  t.equal(cls(reply('x1.app.example.com')), cls(reply('x2.nope.app.example.com', 'AAAA')), 'NXDOMAIN: one account per zone (random names)');
  t.equal(rateClassKind(cls(reply('x1.app.example.com'))), RATE_KIND.nxdomain);
  t.equal(rateClassKind(cls(reply('mail.app.example.com'))), RATE_KIND.answer);
  t.equal(rateClassKind(cls(reply('a.legacy.app.example.com'))), RATE_KIND.referral);
  t.equal(cls(Buffer.from([1, 2, 0x84])), RATE_CLASS_NONE, 'not a response we built');
  t.not(cls(reply('x1.app.example.com')), cls(reply('x1.fuzz.test')), 'NXDOMAIN of another zone');
  t.equal(cls(reply('a.legacy.app.example.com')), cls(reply('b.c.legacy.app.example.com')), 'referrals: one account per delegation');
  t.equal(cls(reply('example.org')), cls(reply('example.net', 'TXT')), 'REFUSED: one account per network');
  t.equal(cls(reply('mail.app.example.com', 'A', { edns: { udpSize: 1232 } })), cls(reply('mail.app.example.com')), 'EDNS does not matter');
  t.equal(rateClassKind(cls(reply('nodata.example', 'A'))), RATE_KIND.error);
  t.not(cls(reply('nodata.example', 'A')), cls(query('mail.app.example.com', 'A')), 'REFUSED and FORMERR are two classes');
  const badvers = cls(reply('mail.app.example.com', 'A', { edns: { version: 1 } }));
  t.equal(rateClassKind(badvers), RATE_KIND.error, 'BADVERS is an error, by its extended RCODE');
  t.equal(badvers, cls(reply('x.app.example.com', 'TXT', { edns: { version: 2 } })), 'BADVERS: one account, whatever the question');
  t.not(badvers, cls(reply('mail.app.example.com', 'A', { edns: { version: 0 } })), 'not the answer of the same question');
  const answer = reply('mail.app.example.com');
  const slot = Buffer.alloc(2048, 0xee);
  answer.copy(slot);
  t.equal(responseRateClass(slot, answer.length), cls(answer), 'a reply in a larger slot: only its length counts');
  const { rrl } = limiter();
  for (let i = 0; i < 5; i++) rrl.check('198.51.100.7', reply(`r${i}.app.example.com`));
  t.equal(rrl.check('198.51.100.7', reply('other.app.example.com')), 'drop', 'random-name NXDOMAIN flood is limited');
  t.equal(rrl.check('198.51.100.7', ANSWER), 'send', 'while real answers are not');
});

t.test('checkBytes (batched path) shares the accounts of check (address text)', async (t) => {
  const { rrl } = limiter();
  const bytes = Uint8Array.from([0, 0, 198, 51, 100, 9]);
  run(rrl, 4, '198.51.100.7');
  t.equal(rrl.checkBytes(4, bytes, 2, ANSWER, ANSWER.length), 'send', 'the 5th response of the /24');
  t.equal(rrl.checkBytes(4, bytes, 2, ANSWER, ANSWER.length), 'drop', 'then limited, whichever path counted');
  t.equal(rrl.checkBytes(4, Uint8Array.from([127, 0, 0, 1]), 0, ANSWER, ANSWER.length), 'send', 'loopback exempt');
  const v6 = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  const fromText = run(rrl, 5, '2001:db8:0:100::1');
  t.same(fromText, ['send', 'send', 'send', 'send', 'send']);
  t.equal(rrl.checkBytes(6, v6, 0, ANSWER, ANSWER.length), 'drop', 'IPv6 by bytes: the same /56 account');
  const lab = limiter({ exempt: ['198.51.100.0/25'] });
  t.same(new Set(Array.from({ length: 20 }, () => lab.rrl.checkBytes(4, bytes, 2, ANSWER, ANSWER.length))), new Set(['send']), 'configured IPv4 exemption');
  t.equal(lab.rrl.check('198.51.100.200', ANSWER), 'send');
  t.ok(run(lab.rrl, 10, '198.51.100.200').includes('drop'), 'outside the /25: limited');
  // The /24's account is spent: a mapped address of it is limited at once (its own account
  // would send).
  t.not(lab.rrl.check('::ffff:198.51.100.201', ANSWER), 'send', 'a mapped address counts as its IPv4 network');
  const loop6 = new Uint8Array(16);
  loop6[15] = 1;
  t.same(new Set(Array.from({ length: 20 }, () => rrl.checkBytes(6, loop6, 0, ANSWER, ANSWER.length))), new Set(['send']), '::1 exempt by bytes');
  const lab6 = limiter({ exempt: ['2001:db8:0:100::/55'] });
  t.same(new Set(Array.from({ length: 20 }, () => lab6.rrl.checkBytes(6, v6, 0, ANSWER, ANSWER.length))), new Set(['send']), 'configured IPv6 exemption, by bytes');
  const outside = Uint8Array.from(v6);
  outside[6] = 2; // 2001:db8:0:200::1, outside the /55
  t.ok(Array.from({ length: 10 }, () => lab6.rrl.checkBytes(6, outside, 0, ANSWER, ANSWER.length)).includes('drop'), 'outside it: limited');
});

t.test('a full table forgets idle accounts first', async (t) => {
  const { rrl, advance } = limiter({ maxEntries: 100 });
  for (let i = 0; i < 100; i++) rrl.check(`10.0.${i}.1`, ANSWER);
  t.equal(rrl.size, 100);
  advance(5000);
  run(rrl, 10, '198.51.100.7');
  t.equal(rrl.size, 1, 'refilled accounts were forgotten');
  for (let i = 0; i < 300; i++) run(rrl, 6, `10.1.${i}.1`);
  t.ok(rrl.size <= 100, `never more than the cap (${rrl.size})`);
  t.ok(rrl.evictedLimited > 0, 'limited accounts evicted under pressure are counted');
});

t.test('slip response: header, question and OPT only, TC=1', async (t) => {
  for (const [name, type, opts] of [
    ['many.fuzz.test', 'A', { edns: { udpSize: 4096 } }],
    ['many.fuzz.test', 'A', {}],
    ['x.app.example.com', 'A', { edns: { udpSize: 1232, options: Buffer.from('00080008000220002001' + '0db8', 'hex') } }],
    ['example.org', 'A', { edns: {} }],
  ] as const) {
    const full = reply(name, type, opts);
    const slip = decode(slipResponse(full));
    const d = decode(full);
    t.ok(slip.tc, `${name}: TC=1`);
    t.equal(slip.id, d.id);
    t.equal(slip.rcode, d.rcode);
    t.same(slip.questions, d.questions);
    t.equal(slip.answers.length + slip.authorities.length + slip.additionals.length, 0, 'no records');
    t.equal(!!slip.opt, !!d.opt, 'OPT kept when the query had EDNS');
    t.ok(slip.raw.length <= full.length);
  }
});

for (const udpPath of ['dgram', 'batched', 'threads'] as const) t.test(`a real UDP listener (${udpPath} path) limits, slips and counts`, async (t) => {
  if (udpPath !== 'dgram') {
    const why = (await import('../../src/server/udp-batched.js')).batchedUnavailable();
    if (why !== null) return t.skip(`batched UDP path unavailable: ${why}`);
  }
  // The threads compile the texts this load kept (as serve-app's store keeps them for threads).
  const reloads = new ReloadController({ zoneStore: new ZoneStore('zones/', { keepValidated: udpPath === 'threads' }), prebuild: prebuildTableInSlices }, createLogger('error'));
  t.teardown(() => reloads.zoneStore.close());
  await reloads.start();
  const ns = await startNameserver({
    runtime: reloads.runtime,
    listen: ['127.0.0.1:0'],
    logger: createLogger('error'),
    rrl: { ratePerSecond: 1, windowSeconds: 5, slip: 2, exempt: ['192.0.2.0/24'] },
    ...(udpPath === 'threads' ? { udpThreads: { threads: 1, logLevel: 'error', zonesPath: 'zones/', zoneTexts: () => reloads.zoneTexts() } } : { udpPath }),
  });
  t.teardown(() => ns.stop());
  // Every path counts in its own registry: the UDP threads in theirs (summed into /metrics).
  const limitedCount = async () => {
    if (ns.threads === undefined) return (await rateLimitedTotal.get()).values.reduce((n, v) => n + v.value, 0);
    const registries = await ns.threads.metrics();
    return registries.flat().filter((m) => m.name === 'sitedns_rate_limited_total').flatMap((m) => m.values).reduce((n, v) => n + v.value, 0);
  };
  const before = await limitedCount();
  const port = ns.udp[0].port;
  const results = [];
  for (let i = 0; i < 30; i++) results.push(await udpQuery(port, query('mail.app.example.com', 'A', { id: i }), '127.0.0.1', 300));
  const full = results.filter((r) => r !== null && !decode(r).tc).length;
  const truncated = results.filter((r) => r !== null && decode(r).tc);
  const dropped = results.filter((r) => r === null).length;
  t.ok(full >= 1 && full < 30, `some answered in full (${full})`);
  t.ok(truncated.length >= 1, `some slipped with TC=1 (${truncated.length})`);
  t.ok(dropped >= 1, `some dropped (${dropped})`);
  t.equal(truncated[0] && decode(truncated[0]).answers.length, 0, 'a slipped reply holds no answer');
  const after = await limitedCount();
  t.equal(after - before, truncated.length + dropped, 'each limited response counted in sitedns_rate_limited_total');
  const tcp = await (await import('../helpers/net.js')).tcpQueries(port, [query('mail.app.example.com')]);
  t.equal(decode(tcp[0]).answers.length, 1, 'TCP is never rate limited');
});

t.test('responseRateClass never throws and stays a small integer on any bytes', async (t) => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
  const base = reply('x1.app.example.com'); // an NXDOMAIN with an SOA: compression pointers to follow
  let bad = 0;
  for (let i = 0; i < 20_000; i++) {
    const bytes = i % 2 === 0 ? Buffer.from(base) : Buffer.from(Array.from({ length: Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256)));
    for (let k = 0; k < 4; k++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
    const c = responseRateClass(bytes, Math.floor(rnd() * (bytes.length + 1)));
    if (!Number.isInteger(c) || c < 0 || c >= 2 ** 30) bad++;
  }
  t.equal(bad, 0);
});
