/**
 * NSID (RFC 5001), server identity in CH TXT (RFC 4892) and DNS Cookies (RFC 7873, RFC 9018) on
 * the socket-free handler, with an injected clock; and the answer step's use of cookies with
 * response rate limiting.
 */
import t from 'tap';
import { ServerCookies, parseCookieSecret } from '../../src/dns/cookies.js';
import { AnswerStep } from '../../src/server/answer-step.js';
import { COOKIE_NONE, COOKIE_PROVEN, COOKIE_UNPROVEN } from '../../src/dns/reply-options.js';
import { Handler, type HandlerOptions } from '../../src/server/handler.js';
import { ResponseRateLimiter } from '../../src/server/rrl.js';
import { Runtime } from '../../src/state/runtime.js';
import { compileText, decode, fixedEnv, query } from '../helpers/dns.js';

const ZONE = `
zone: e.test
soa: { mname: ns1.e.test, rname: hostmaster.e.test }
nameservers: { ns1.e.test: [192.0.2.53] }
records:
  www: { A: [192.0.2.10] }
`;

const CH = 3;
/** RFC 9018 Appendix A's secrets. */
const SECRET_A = 'e5e973e5a6b2a43f48e7dc849e37bfcf';
const SECRET_A4_OLD = 'dd3bdf9344b678b185a6f5cb60fca715';
const SECRET_A4_NEW = '445536bcd2513298075a5d379663c962';

function option(code: number, data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'hex') : data;
  const out = Buffer.alloc(4 + bytes.length);
  out.writeUInt16BE(code, 0);
  out.writeUInt16BE(bytes.length, 2);
  bytes.copy(out, 4);
  return out;
}
const nsidAsk = () => option(3, Buffer.alloc(0));
const cookie = (hex: string) => option(10, hex);

/** The reply's EDNS options by code (read from the OPT, which our writer puts last). */
function replyOptions(raw: Buffer): Map<number, Buffer> | null {
  const found = new Map<number, Buffer>();
  const d = decode(raw);
  if (d.opt === undefined) return null;
  // Walk back from the end: the OPT's RDLENGTH sits 11 bytes before its options start.
  for (let at = raw.length - 11; at >= 12; at--) {
    if (raw[at] === 0 && raw.readUInt16BE(at + 1) === 41 && at + 11 + raw.readUInt16BE(at + 9) === raw.length) {
      for (let pos = at + 11; pos < raw.length; ) {
        const code = raw.readUInt16BE(pos);
        const length = raw.readUInt16BE(pos + 2);
        found.set(code, raw.subarray(pos + 4, pos + 4 + length));
        pos += 4 + length;
      }
      return found;
    }
  }
  throw new Error('OPT not found at the end of the reply');
}

function handlerWith(options: HandlerOptions, now = 1_700_000_000_000) {
  const env = fixedEnv(now);
  const handler = new Handler(new Runtime(compileText(ZONE, 'zones/e.test.yaml')), env, {}, { prebuilt: true, ...options });
  return { handler, env };
}

function ask(handler: Handler, raw: Buffer, clientAddress = '192.0.2.1', transport: 'udp' | 'tcp' = 'udp') {
  const out = handler.handle(raw, { transport, clientAddress });
  if (out === null) throw new Error('no reply');
  return { d: decode(out), raw: out, options: replyOptions(out), proof: handler.lastCookie };
}

t.test('NSID and the CH TXT names are off by default', async (t) => {
  const { handler } = handlerWith({});
  const r = ask(handler, query('www.e.test', 'A', { edns: { options: nsidAsk() } }));
  t.equal(r.d.rcode, 0);
  t.equal(r.options!.has(3), false, 'no NSID option in the reply');
  for (const name of ['id.server', 'hostname.bind', 'version.bind']) {
    t.equal(ask(handler, query(name, 'TXT', { qclass: CH })).d.rcode, 5, `CH TXT ${name}: REFUSED`);
  }
});

t.test('--nsid: the NSID option and CH TXT id.server / hostname.bind', async (t) => {
  const { handler } = handlerWith({ identity: { nsid: 'ns-geneva-1', versionBind: null } });
  const cases: [string, Buffer, string | null][] = [
    ['asked, no other option', query('www.e.test', 'A', { edns: { options: nsidAsk() } }), 'ns-geneva-1'],
    ['asked for a missing name', query('nope.e.test', 'A', { edns: { options: nsidAsk() } }), 'ns-geneva-1'],
    ['asked for a name outside the zones', query('example.org', 'A', { edns: { options: nsidAsk() } }), 'ns-geneva-1'],
    ['not asked', query('www.e.test', 'A', { edns: {} }), null],
  ];
  for (const [what, q, expected] of cases) {
    const r = ask(handler, q);
    t.equal(r.options!.get(3)?.toString('utf8') ?? null, expected, what);
  }
  t.equal(ask(handler, query('www.e.test', 'A')).d.opt, undefined, 'no EDNS, no OPT');

  for (const name of ['id.server', 'hostname.bind', 'ID.SERVER']) {
    const r = ask(handler, query(name, 'TXT', { qclass: CH }));
    t.equal(r.d.rcode, 0, `${name}: NOERROR`);
    t.equal(r.d.aa, true, `${name}: authoritative`);
    t.equal(r.d.answers.length, 1);
    t.equal(r.d.answers[0].class, CH, 'class CH');
    t.equal(r.d.answers[0].ttl, 0);
    t.equal(r.d.answers[0].name.toLowerCase(), name.toLowerCase());
    t.same(r.raw.subarray(r.raw.length - 12).toString('latin1'), '\x0bns-geneva-1', 'the TXT string is the identifier');
  }
  t.equal(ask(handler, query('id.server', 'ANY', { qclass: CH })).d.answers.length, 1, 'CH ANY id.server');
  t.equal(ask(handler, query('id.server', 'A', { qclass: CH })).d.rcode, 5, 'CH A id.server: REFUSED');
  t.equal(ask(handler, query('id.server', 'TXT')).d.rcode, 5, 'IN TXT id.server: not ours, REFUSED');
  t.equal(ask(handler, query('version.bind', 'TXT', { qclass: CH })).d.rcode, 5, 'version.bind stays REFUSED');
  t.equal(ask(handler, query('other.bind', 'TXT', { qclass: CH })).d.rcode, 5);
  const tcp = ask(handler, query('id.server', 'TXT', { qclass: CH, edns: { options: nsidAsk() } }), '192.0.2.1', 'tcp');
  t.equal(tcp.options!.get(3)?.toString(), 'ns-geneva-1', 'over TCP too, with the NSID option');
});

t.test('--version-bind answers CH TXT version.bind', async (t) => {
  const { handler } = handlerWith({ identity: { nsid: null, versionBind: 'sitedns' } });
  const r = ask(handler, query('version.bind', 'TXT', { qclass: CH }));
  t.equal(r.d.rcode, 0);
  t.same(r.raw.subarray(r.raw.length - 8).toString('latin1'), '\x07sitedns');
  t.equal(ask(handler, query('id.server', 'TXT', { qclass: CH })).d.rcode, 5, 'id.server needs --nsid');
});

t.test('COOKIE lengths: 8, or 16 to 40; anything else is FORMERR (RFC 7873 §5.2.2)', async (t) => {
  const { handler } = handlerWith({ cookies: new ServerCookies([SECRET_A]) });
  for (let length = 0; length <= 44; length++) {
    const r = ask(handler, query('www.e.test', 'A', { edns: { options: option(10, Buffer.alloc(length, 7)) } }));
    const ok = length === 8 || (length >= 16 && length <= 40);
    t.equal(r.d.rcode, ok ? 0 : 1, `${length} bytes: ${ok ? 'NOERROR' : 'FORMERR'}`);
    if (!ok) {
      t.ok(r.d.opt, 'the FORMERR carries an OPT');
      t.equal(r.options!.has(10), false, 'and no cookie');
      t.equal(r.proof, COOKIE_NONE);
    }
  }
});

t.test('a client cookie gets a server cookie: RFC 9018 Appendix A, byte for byte', async (t) => {
  // A.1: learning a new server cookie.
  const a1 = handlerWith({ cookies: new ServerCookies([SECRET_A], () => 1559731985_000) }).handler;
  let r = ask(a1, query('www.e.test', 'A', { edns: { options: cookie('2464c4abcf10c957') } }), '198.51.100.100');
  t.equal(r.d.rcode, 0);
  t.equal(r.d.answers.length, 1, 'answered normally');
  t.equal(r.options!.get(10)!.toString('hex'), '2464c4abcf10c957010000005cf79f111f8130c3eee29480', 'A.1');
  t.equal(r.proof, COOKIE_UNPROVEN);

  // A.2: 40 minutes later the cookie is valid but older than half an hour: renewed.
  const a2 = handlerWith({ cookies: new ServerCookies([SECRET_A], () => 1559734385_000) }).handler;
  r = ask(a2, query('www.e.test', 'A', { edns: { options: cookie('2464c4abcf10c957010000005cf79f111f8130c3eee29480') } }), '198.51.100.100');
  t.equal(r.options!.get(10)!.toString('hex'), '2464c4abcf10c957010000005cf7a871d4a564a1442aca77', 'A.2');
  t.equal(r.proof, COOKIE_PROVEN);

  // A.3: another client; its cookie (reserved bytes set, which the hash covers) is 1h51m old.
  const a3 = handlerWith({ cookies: new ServerCookies([SECRET_A], () => 1559734700_000) }).handler;
  r = ask(a3, query('www.e.test', 'A', { edns: { options: cookie('fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5') } }), '203.0.113.203');
  t.equal(r.options!.get(10)!.toString('hex'), 'fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e', 'A.3');
  t.equal(r.proof, COOKIE_UNPROVEN, 'older than an hour: not valid');
  const a3Early = handlerWith({ cookies: new ServerCookies([SECRET_A], () => (0x5cf78f71 + 60) * 1000) }).handler;
  r = ask(a3Early, query('www.e.test', 'A', { edns: { options: cookie('fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5') } }), '203.0.113.203');
  t.equal(r.proof, COOKIE_PROVEN, 'a minute after it was made, with its reserved bytes, it is valid');
  t.equal(r.options!.get(10)!.toString('hex'), 'fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5', 'and echoed as it came');

  // A.4: an IPv6 client after the secret rolled over: the old secret is still accepted.
  const rolled = handlerWith({ cookies: new ServerCookies([SECRET_A4_NEW, SECRET_A4_OLD], () => 1559741961_000) }).handler;
  const a4 = query('www.e.test', 'A', { edns: { options: cookie('22681ab97d52c298010000005cf7c57926556bd0934c72f8') } });
  r = ask(rolled, a4, '2001:db8:220:1:59de:d0f4:8769:82b8');
  t.equal(r.options!.get(10)!.toString('hex'), '22681ab97d52c298010000005cf7c609a6bb79d16625507a', 'A.4: a fresh cookie under the new secret');
  t.equal(r.proof, COOKIE_PROVEN, 'the old secret is accepted');
  const newOnly = handlerWith({ cookies: new ServerCookies([SECRET_A4_NEW], () => 1559741961_000) }).handler;
  r = ask(newOnly, a4, '2001:db8:220:1:59de:d0f4:8769:82b8');
  t.equal(r.proof, COOKIE_UNPROVEN, 'once the old secret is dropped, its cookies are not valid');
  t.equal(r.options!.get(10)!.toString('hex'), '22681ab97d52c298010000005cf7c609a6bb79d16625507a', 'and the client gets the new one');
});

t.test('server cookie validity: age, skew, address, version, length, secret', async (t) => {
  const now = 1_700_000_000;
  const clock = { s: now };
  const cookies = new ServerCookies([SECRET_A], () => clock.s * 1000);
  const { handler } = handlerWith({ cookies });
  const learn = ask(handler, query('www.e.test', 'A', { edns: { options: cookie('0102030405060708') } }), '192.0.2.7');
  const full = learn.options!.get(10)!.toString('hex');
  t.equal(full.length, 48, 'client cookie + a 16-byte server cookie');
  t.equal(full.slice(16, 24), '01000000', 'version 1, reserved 0');
  t.equal(parseInt(full.slice(24, 32), 16), now, 'the clock\'s seconds');
  const again = (address: string, at: number, hex = full) => {
    clock.s = at;
    return ask(handler, query('www.e.test', 'A', { edns: { options: cookie(hex) } }), address);
  };
  const cases: [string, string, number, string, number][] = [
    ['at once', '192.0.2.7', now, full, COOKIE_PROVEN],
    ['29 minutes later', '192.0.2.7', now + 29 * 60, full, COOKIE_PROVEN],
    ['an hour later, the last second', '192.0.2.7', now + 3600, full, COOKIE_PROVEN],
    ['an hour and a second later', '192.0.2.7', now + 3601, full, COOKIE_UNPROVEN],
    ['five minutes before it was made (clock skew)', '192.0.2.7', now - 300, full, COOKIE_PROVEN],
    ['five minutes and a second before', '192.0.2.7', now - 301, full, COOKIE_UNPROVEN],
    ['from another address', '192.0.2.8', now, full, COOKIE_UNPROVEN],
    ['from the same address mapped into IPv6', '::ffff:192.0.2.7', now, full, COOKIE_PROVEN],
    ['another version', '192.0.2.7', now, full.slice(0, 16) + '02' + full.slice(18), COOKIE_UNPROVEN],
    ['one hash bit flipped', '192.0.2.7', now, full.slice(0, 47) + ((parseInt(full[47], 16) ^ 1).toString(16)), COOKIE_UNPROVEN],
    ['a server cookie of 8 bytes (not ours)', '192.0.2.7', now, full.slice(0, 32), COOKIE_UNPROVEN],
    ['a server cookie of 32 bytes (not ours)', '192.0.2.7', now, full + full.slice(16), COOKIE_UNPROVEN],
  ];
  for (const [what, address, at, hex, proof] of cases) {
    const r = again(address, at, hex);
    t.equal(r.proof, proof, what);
    t.equal(r.d.rcode, 0, `${what}: answered normally`);
    t.equal(r.options!.get(10)!.subarray(0, 8).toString('hex'), '0102030405060708', `${what}: the client cookie is echoed`);
  }
  const echoed = again('192.0.2.7', now + 29 * 60).options!.get(10)!.toString('hex');
  t.equal(echoed, full, 'valid and under half an hour old: the same cookie back');
  const renewed = again('192.0.2.7', now + 31 * 60).options!.get(10)!.toString('hex');
  t.not(renewed, full, 'over half an hour old: renewed');
  t.equal(parseInt(renewed.slice(24, 32), 16), now + 31 * 60);
  t.equal(again('192.0.2.7', now + 32 * 60, renewed).proof, COOKIE_PROVEN, 'the renewed cookie is valid');

  const other = handlerWith({ cookies: new ServerCookies([SECRET_A4_NEW], () => now * 1000) }).handler;
  t.equal(ask(other, query('www.e.test', 'A', { edns: { options: cookie(full) } }), '192.0.2.7').proof, COOKIE_UNPROVEN, 'another secret: not valid');
  const shared = handlerWith({ cookies: new ServerCookies([SECRET_A], () => now * 1000) }).handler;
  t.equal(ask(shared, query('www.e.test', 'A', { edns: { options: cookie(full) } }), '192.0.2.7').proof, COOKIE_PROVEN, 'another nameserver with the same secret accepts it');
});

t.test('cookies on every kind of reply; BADVERS carries none; TCP and NSID together', async (t) => {
  const { handler } = handlerWith({ cookies: new ServerCookies([SECRET_A]), identity: { nsid: 'n1', versionBind: null } });
  const opts = Buffer.concat([nsidAsk(), cookie('0102030405060708')]);
  for (const [name, type, qclass, rcode] of [['www.e.test', 'A', 1, 0], ['nope.e.test', 'A', 1, 3], ['example.org', 'A', 1, 5], ['e.test', 'AXFR', 1, 5], ['id.server', 'TXT', CH, 0]] as const) {
    const r = ask(handler, query(name, type, { qclass, edns: { options: opts } }));
    t.equal(r.d.rcode, rcode, `${name} ${type}: rcode ${rcode}`);
    t.equal(r.options!.get(10)?.length, 24, `${name} ${type}: a cookie`);
    t.equal(r.options!.get(3)?.toString(), 'n1', `${name} ${type}: the NSID`);
  }
  const badvers = ask(handler, query('www.e.test', 'A', { edns: { version: 1, options: opts } }));
  t.equal(badvers.d.extendedRcode, 16);
  t.same([...badvers.options!.keys()], [], 'BADVERS: no options');
  const tcp = ask(handler, query('www.e.test', 'A', { edns: { options: cookie('0102030405060708') } }), '192.0.2.1', 'tcp');
  t.equal(tcp.options!.get(10)?.length, 24, 'over TCP');
  const withEcs = ask(handler, query('www.e.test', 'A', { edns: { options: Buffer.concat([option(8, '00011800c00002'), cookie('0102030405060708')]) } }));
  t.same([...withEcs.options!.keys()], [8, 10], 'ECS echo, then the cookie');
  const noCookies = handlerWith({}).handler;
  const ignored = ask(noCookies, query('www.e.test', 'A', { edns: { options: cookie('0102030405060708') } }));
  t.equal(ignored.options!.has(10), false, 'a handler without cookies ignores them');
  t.equal(ignored.proof, COOKIE_NONE);
});

t.test('secrets: 32 hex digits', async (t) => {
  t.equal(parseCookieSecret(SECRET_A).length, 16);
  for (const bad of ['', 'e5e973e5a6b2a43f48e7dc849e37bfc', 'e5e973e5a6b2a43f48e7dc849e37bfcfa', 'x5e973e5a6b2a43f48e7dc849e37bfcf']) {
    t.throws(() => parseCookieSecret(bad), { code: 'ECOOKIE_SECRET' }, JSON.stringify(bad));
  }
  t.throws(() => new ServerCookies([]), { code: 'ECOOKIE_SECRET' });
});

t.test('rate limiting: a valid server cookie is exempt; a client cookie alone slips as BADCOOKIE', async (t) => {
  const clock = { ms: 1_700_000_000_000 };
  const { handler } = handlerWith({ cookies: new ServerCookies([SECRET_A], () => clock.ms) });
  const rrl = new ResponseRateLimiter({ ratePerSecond: 2, windowSeconds: 1, slip: 2, exempt: [] }, () => clock.ms);
  const step = new AnswerStep(handler, rrl);
  const ctx = { transport: 'udp' as const, clientAddress: '198.51.100.9' };
  const out = Buffer.alloc(1232);
  const send = (q: Buffer) => {
    const n = step.answer(q, q.length, ctx, out);
    return n < 0 ? null : decode(Buffer.from(out.subarray(0, n)));
  };
  const learned = replyOptions(handler.handle(query('www.e.test', 'A', { edns: { options: cookie('0102030405060708') } }), ctx)!)!.get(10)!;
  const proven = query('www.e.test', 'A', { edns: { options: option(10, learned) } });
  const clientOnly = query('www.e.test', 'A', { edns: { options: cookie('0102030405060708') } });
  const plain = query('www.e.test', 'A', { edns: {} });

  const plainReplies = Array.from({ length: 20 }, () => send(plain));
  t.ok(plainReplies.some((r) => r === null), 'without a cookie, the flood is limited');
  const slipped = plainReplies.filter((r) => r !== null && r.tc);
  t.ok(slipped.length > 0, 'and slips as TC=1');
  const provenReplies = Array.from({ length: 50 }, () => send(proven));
  t.ok(provenReplies.every((r) => r !== null && !r.tc && r.answers.length === 1), 'every query with a valid server cookie is answered in full');

  const clientOnlyReplies = Array.from({ length: 20 }, () => send(clientOnly));
  t.ok(clientOnlyReplies.some((r) => r === null), 'a client cookie alone proves nothing: limited');
  const badCookies = clientOnlyReplies.filter((r): r is NonNullable<typeof r> => r !== null && r.extendedRcode === 23);
  t.ok(badCookies.length > 0, 'its slips are BADCOOKIE');
  for (const r of badCookies) {
    t.equal(r.tc, false, 'BADCOOKIE is not truncated');
    t.same(r.counts, [1, 0, 0, 1], 'question and OPT only');
    const fresh = replyOptions(r.raw)!.get(10)!;
    t.equal(fresh.length, 24, 'with a fresh server cookie');
    const retry = query('www.e.test', 'A', { edns: { options: option(10, fresh) } });
    const answered = send(retry);
    t.ok(answered !== null && answered.answers.length === 1 && answered.rcode === 0, 'the client retrying with it is answered');
    break;
  }
});

t.test('a resolver that shares a /24 with a flooder is answered once it sends its cookie', async (t) => {
  const clock = { ms: 1_700_000_000_000 };
  const { handler } = handlerWith({ cookies: new ServerCookies([SECRET_A], () => clock.ms) });
  const step = new AnswerStep(handler, new ResponseRateLimiter({ ratePerSecond: 5, windowSeconds: 15, slip: 0, exempt: [] }, () => clock.ms));
  const out = Buffer.alloc(1232);
  const flooder = { transport: 'udp' as const, clientAddress: '198.51.100.66' };
  const resolver = { transport: 'udp' as const, clientAddress: '198.51.100.20' };
  const plain = query('www.e.test', 'A', { edns: {} });
  let flooderAnswered = 0;
  for (let i = 0; i < 500; i++) if (step.answer(plain, plain.length, flooder, out) > 0) flooderAnswered++;
  t.ok(flooderAnswered <= 5, `the flooder's network is limited (${flooderAnswered} of 500 answered)`);
  t.equal(step.answer(plain, plain.length, resolver, out), -1, 'the resolver, without a cookie, shares its fate');
  const first = handler.handle(query('www.e.test', 'A', { edns: { options: cookie('a1a2a3a4a5a6a7a8') } }), resolver)!;
  const withCookie = query('www.e.test', 'A', { edns: { options: option(10, replyOptions(first)!.get(10)!) } });
  let answered = 0;
  for (let i = 0; i < 100; i++) {
    step.answer(plain, plain.length, flooder, out);
    const n = step.answer(withCookie, withCookie.length, resolver, out);
    if (n > 0 && decode(Buffer.from(out.subarray(0, n))).answers.length === 1) answered++;
  }
  t.equal(answered, 100, 'with its cookie, every one of its queries is answered while the flood goes on');
  const stolen = step.answer(withCookie, withCookie.length, flooder, out);
  t.equal(stolen, -1, 'the same cookie sent from the flooder\'s address proves nothing');
});
