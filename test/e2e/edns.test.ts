/**
 * End-to-end: NSID, CH TXT identity and DNS cookies of a real `sitedns serve`, asked by `dig` and
 * `kdig` (independent clients) and by raw UDP for rate limiting.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { decode, query } from '../helpers/dns.js';
import { serveRefusal, startSitedns, udpQuery } from '../helpers/net.js';

const SECRET = 'e5e973e5a6b2a43f48e7dc849e37bfcf';

function tool(name: string, args: string[]): string {
  const r = spawnSync(name, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw r.error;
  return r.stdout;
}
const hasTool = (name: string) => spawnSync(name, ['-v'], { encoding: 'utf8' }).error === undefined;
const dig = (port: number, ...args: string[]) => tool('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', ...args]);
const kdig = (port: number, ...args: string[]) => tool('kdig', ['@127.0.0.1', '-p', String(port), '+retry=0', '+time=3', ...args]);

t.test('dig +nsid and CH TXT: off by default, on with --nsid / --version-bind', { skip: hasTool('dig') ? false : 'dig is not installed' }, async (t) => {
  const plain = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', 'off']);
  t.teardown(() => plain.stop());
  t.notMatch(dig(plain.port, '+nsid', 'app.example.com'), /NSID:/, 'no NSID by default');
  t.match(dig(plain.port, 'CH', 'TXT', 'id.server'), /status: REFUSED/);
  t.match(dig(plain.port, 'CH', 'TXT', 'version.bind'), /status: REFUSED/);

  const named = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', 'off', '--nsid', 'ns-e2e-1', '--version-bind', 'sitedns e2e']);
  t.teardown(() => named.stop());
  const withNsid = dig(named.port, '+nsid', 'app.example.com');
  t.match(withNsid, /status: NOERROR/);
  t.match(withNsid, /NSID: .*\("ns-e2e-1"\)/, 'dig shows the NSID');
  t.equal(dig(named.port, '+short', 'CH', 'TXT', 'id.server').trim(), '"ns-e2e-1"');
  t.equal(dig(named.port, '+short', 'CH', 'TXT', 'hostname.bind').trim(), '"ns-e2e-1"');
  t.equal(dig(named.port, '+short', 'CH', 'TXT', 'version.bind').trim(), '"sitedns e2e"');
});

t.test('--nsid hostname gives the host name', { skip: hasTool('dig') ? false : 'dig is not installed' }, async (t) => {
  const { hostname } = await import('node:os');
  const server = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', 'off', '--nsid', 'hostname']);
  t.teardown(() => server.stop());
  t.equal(dig(server.port, '+short', 'CH', 'TXT', 'hostname.bind').trim(), `"${hostname()}"`);
});

t.test('cookies: dig and kdig learn a server cookie; a second nameserver with the same secret accepts it', { skip: hasTool('kdig') && hasTool('dig') ? false : 'dig/kdig are not installed' }, async (t) => {
  // One by flag, one by environment, one with UDP threads: all answer alike.
  const a = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', 'off', '--cookie-secret', SECRET]);
  t.teardown(() => a.stop());
  const b = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', 'off', '--udp-threads', '1'], { SITEDNS_COOKIE_SECRET: SECRET, SITEDNS_UDP_THREADS: '1' });
  t.teardown(() => b.stop());
  const random = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', 'off']);
  t.teardown(() => random.stop());
  t.ok(random.logs.some((l) => /cookie secret: random for this process/.test(l.msg ?? '')), 'a random secret is logged as such');
  t.notOk(a.logs.some((l) => /cookie secret: random/.test(l.msg ?? '')), 'a given one is not');
  t.notOk(JSON.stringify(a.logs).includes(SECRET), 'the secret itself is never logged');

  const first = dig(a.port, '+cookie', 'app.example.com');
  t.match(first, /status: NOERROR/);
  const learned = /COOKIE: ([0-9a-f]{48}) \(good\)/i.exec(first);
  t.ok(learned, 'dig: a client cookie gets a 16-byte server cookie back');
  const cookie = learned![1].toLowerCase();

  for (const [label, port] of [['the same server', a.port], ['another with the same secret (UDP thread)', b.port]] as const) {
    const again = kdig(port, `+cookie=${cookie}`, 'app.example.com');
    t.match(again, /status: NOERROR/, label);
    t.match(again.toLowerCase(), new RegExp(`cookie: ${cookie}`), `${label}: a valid cookie under half an hour old comes back as it was`);
  }
  const elsewhere = kdig(random.port, `+cookie=${cookie}`, 'app.example.com').toLowerCase();
  const renewed = /cookie: ([0-9a-f]{48})/.exec(elsewhere);
  t.ok(renewed, 'a server with another secret still answers with a cookie');
  t.equal(renewed![1].slice(0, 16), cookie.slice(0, 16), 'for the same client cookie');
  t.not(renewed![1], cookie, 'but a server cookie of its own');

  t.match(dig(a.port, '+nocookie', '+ednsopt=10:0102030405060708090a', 'app.example.com'), /status: FORMERR/, 'a 10-byte COOKIE is FORMERR');
  t.match(dig(b.port, '+nocookie', '+ednsopt=10:0102030405060708090a', 'app.example.com'), /status: FORMERR/, 'on a UDP thread too');
});

t.test('a bad --cookie-secret stops serve with a clear line that shows no secret', async (t) => {
  const r = serveRefusal(['--zones', 'zones/', '--cookie-secret', 'abc']);
  t.equal(r.status, 1);
  t.match(r.output, /--cookie-secret: "\*\*\*" \(secret 1 of 1\) is not 32 hex digits/);
  const typo = `${SECRET.slice(0, 31)}X`;
  const rotated = serveRefusal(['--zones', 'zones/', '--cookie-secret', `${SECRET},${typo}`]);
  t.equal(rotated.status, 1);
  t.match(rotated.output, /\(secret 2 of 2\) is not 32 hex digits/);
  t.notOk(rotated.output.includes(SECRET) || rotated.output.includes(typo), 'neither the valid nor the mistyped secret is printed');
});

t.test('--nsid is at most 128 bytes', async (t) => {
  const r = serveRefusal(['--zones', 'zones/', '--nsid', 'x'.repeat(129)]);
  t.equal(r.status, 1);
  t.match(r.output, /--nsid: "x+" must be 1 to 128 bytes/);
});

t.test('rate limiting spares a client that proves its address with a cookie', async (t) => {
  // Loopback is exempt by default: exempt something else so that 127.0.0.1 is limited.
  const server = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', 'off', '--rrl-rate', '2', '--rrl-slip', '2', '--rrl-exempt', '192.0.2.0/24', '--cookie-secret', SECRET]);
  t.teardown(() => server.stop());
  const clientCookie = Buffer.from('000a00081122334455667788', 'hex');
  const first = (await udpQuery(server.port, query('app.example.com', 'A', { edns: { options: clientCookie } })))!;
  const cookieOption = first.subarray(first.length - 28);
  t.equal(cookieOption.readUInt16BE(0), 10, 'learned a cookie');

  const plain = [];
  for (let i = 0; i < 16; i++) plain.push(await udpQuery(server.port, query('app.example.com', 'A', { id: i, edns: {} }), '127.0.0.1', 300));
  t.ok(plain.some((r) => r === null || decode(r).tc), 'without a cookie the same client is limited');
  const proven = [];
  for (let i = 0; i < 16; i++) proven.push(await udpQuery(server.port, query('app.example.com', 'A', { id: 100 + i, edns: { options: cookieOption } }), '127.0.0.1', 1000));
  t.ok(proven.every((r) => r !== null && !decode(r).tc && decode(r).answers.length > 0), 'with a valid server cookie every query is answered in full');
  const clientOnly = [];
  for (let i = 0; i < 16; i++) clientOnly.push(await udpQuery(server.port, query('app.example.com', 'A', { id: 200 + i, edns: { options: clientCookie } }), '127.0.0.1', 300));
  const slips = clientOnly.filter((r): r is Buffer => r !== null).map(decode).filter((d) => d.answers.length === 0);
  t.ok(slips.length > 0 && slips.every((d) => d.extendedRcode === 23 && !d.tc), 'a client cookie alone slips as BADCOOKIE, not TC=1');
});

t.test('rotating the cookie secret: OLD,NEW then NEW,OLD servers accept each other', async (t) => {
  // docs/security.md "Rotating the secret" (RFC 9018 §5). Acceptance shows as the rate-limit
  // exemption: a limited client with a cookie the server accepts is answered in full.
  const OLD = SECRET;
  const NEW = '0123456789abcdef0123456789abcdef';
  const limited = ['--rrl-rate', '2', '--rrl-slip', '2', '--rrl-exempt', '192.0.2.0/24'];
  const start = (secrets: string) => startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0', '--http', 'off', ...limited, '--cookie-secret', secrets]);
  const [stepOne, stepTwo, newOnly] = [await start(`${OLD},${NEW}`), await start(`${NEW},${OLD}`), await start(NEW)];
  t.teardown(() => Promise.all([stepOne.stop(), stepTwo.stop(), newOnly.stop()]));
  const clientCookie = Buffer.from('000a00088877665544332211', 'hex');
  const cookieFrom = async (port: number) => {
    const reply = (await udpQuery(port, query('app.example.com', 'A', { edns: { options: clientCookie } })))!;
    return reply.subarray(reply.length - 28);
  };
  const answeredInFull = async (port: number, cookie: Buffer, id: number) => {
    const replies = [];
    for (let i = 0; i < 16; i++) replies.push(await udpQuery(port, query('app.example.com', 'A', { id: id + i, edns: { options: cookie } }), '127.0.0.1', 1000));
    return replies.every((r) => r !== null && !decode(r).tc && decode(r).answers.length > 0);
  };
  const oldCookie = await cookieFrom(stepOne.port);
  const newCookie = await cookieFrom(stepTwo.port);
  t.not(oldCookie.toString('hex'), newCookie.toString('hex'), 'the two steps make cookies with different secrets');
  t.ok(await answeredInFull(stepTwo.port, oldCookie, 1000), 'NEW,OLD accepts a cookie made with OLD');
  t.ok(await answeredInFull(stepOne.port, newCookie, 2000), 'OLD,NEW accepts a cookie made with NEW');
  t.notOk(await answeredInFull(newOnly.port, oldCookie, 3000), 'NEW alone no longer accepts OLD: that client is limited until it learns a NEW cookie');
  t.ok(await answeredInFull(newOnly.port, newCookie, 4000), 'NEW alone accepts NEW');
});
