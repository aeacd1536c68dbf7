/**
 * Operations end to end: a real `sitedns serve`, real UDP/TCP queries, the admin listener over
 * HTTP, zone edits on disk, and SIGTERM with TCP queries in flight.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { startSitedns, tcpQueries, udpQuery, type Started } from '../helpers/net.js';
import { metric, parseMetrics } from '../helpers/metrics.js';

const SAMPLE = readFileSync(new URL('../../zones/app.example.com.yaml', import.meta.url), 'utf8');
/** The sample without probes: every site counts as up, so the server is ready at once. */
const NO_PROBES = SAMPLE.replace(/^\s+probe: .*\n/gm, '');

const zone = (address: string) => `zone: r.test
soa: { mname: ns1.r.test, rname: h.r.test }
nameservers: { ns1.r.test: [192.0.2.1] }
sites:
  one: { addresses: [${address}] }
records:
  www: { A: [192.0.2.80] }
`;

async function start(t: Test, files: Record<string, string>, extra: string[] = []): Promise<{ server: Started; admin: string; dir: string }> {
  const dir = tempZonesDir(files);
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', ...extra], { SITEDNS_WATCH_DEBOUNCE: '100ms' });
  t.teardown(() => server.stop());
  const line = await server.waitForLog((l) => l.msg === 'admin listening');
  return { server, admin: `http://127.0.0.1:${line.port}`, dir };
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await probe();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

const aRecords = async (port: number, name: string) => {
  const reply = await udpQuery(port, query(name));
  return reply === null ? [] : decode(reply).answers.map((a: any) => a.address);
};

t.test('metrics scraped over HTTP count the real queries', async (t) => {
  const { server, admin } = await start(t, { 'app.example.com.yaml': NO_PROBES });
  for (let i = 0; i < 3; i++) t.ok(await udpQuery(server.port, query('boston.app.example.com', 'A', { id: i })));
  await udpQuery(server.port, query('example.org', 'A'));
  await tcpQueries(server.port, [query('geneva.app.example.com', 'A'), query('nope.app.example.com', 'A'), query('app.example.com', 'AAAA')]);

  const res = await fetch(`${admin}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /text\/plain/);
  const m = parseMetrics(await res.text());
  t.equal(metric(m, 'sitedns_queries_total', { zone: 'app.example.com', qtype: 'A', rcode: 'NOERROR', transport: 'udp' }), 3);
  t.equal(metric(m, 'sitedns_queries_total', { zone: '(none)', rcode: 'REFUSED', transport: 'udp' }), 1);
  t.equal(metric(m, 'sitedns_queries_total', { zone: 'app.example.com', qtype: 'A', rcode: 'NXDOMAIN', transport: 'tcp' }), 1);
  t.equal(metric(m, 'sitedns_queries_total', { zone: 'app.example.com', qtype: 'AAAA', rcode: 'NOERROR', transport: 'tcp' }), 1);
  t.equal(metric(m, 'sitedns_queries_total'), 7);
  t.ok(metric(m, 'sitedns_answer_seconds_count') <= 7, 'latency is measured on a sample of the queries');
  t.ok(m.has('sitedns_answer_seconds_bucket{le="+Inf",transport="udp"}') || m.has('sitedns_answer_seconds_bucket{le="+Inf",transport="tcp"}') || metric(m, 'sitedns_answer_seconds_count') === 0);
  t.equal(metric(m, 'sitedns_site_answers_total', { name: 'boston.app.example.com', site: 'boston' }), 3);
  t.equal(metric(m, 'sitedns_site_answers_total', { name: 'app.example.com', site: 'boston' }), 1, 'the only site with IPv6');
  t.equal(metric(m, 'sitedns_site_up', { site: 'geneva' }), 1);
  t.equal(metric(m, 'sitedns_config_problems'), 0);
  t.ok(metric(m, 'sitedns_config_generation') > 0);
  t.equal(metric(m, 'sitedns_ready'), 1);
  t.equal((await fetch(`${admin}/healthz`)).status, 200);
  t.equal((await fetch(`${admin}/readyz`)).status, 200);
});

t.test('explain agrees with the actual answer', async (t) => {
  const { server, admin } = await start(t, { 'app.example.com.yaml': NO_PROBES });
  for (const [name, type] of [
    ['boston.app.example.com', 'A'],
    ['geneva.app.example.com', 'A'],
    ['boston.app.example.com', 'AAAA'],
    ['mail.app.example.com', 'A'],
    ['nope.app.example.com', 'A'],
  ]) {
    const actual = decode((await udpQuery(server.port, query(name, type)))!);
    const e: any = await (await fetch(`${admin}/v1/explain?name=${name}&type=${type}&client=127.0.0.1`)).json();
    t.equal(e.rcode, ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN'][actual.rcode], `${name} ${type} rcode`);
    t.same(e.answer.map((r: any) => r.data), actual.answers.map((a: any) => a.address), `${name} ${type}: ${e.why}`);
  }
  // The Pool Name breaks ties at random: explain says so, and names one of the sites answered.
  const e: any = await (await fetch(`${admin}/v1/explain?name=app.example.com`)).json();
  t.equal(e.usedRandom, true);
  t.same(e.candidates.map((c: any) => c.site), ['boston', 'chicago', 'geneva']);
  const answered = new Set<string>();
  for (let i = 0; i < 30; i++) for (const a of await aRecords(server.port, 'app.example.com')) answered.add(a);
  t.ok(answered.has(e.answer[0].data), `explain's ${e.answer[0].data} is among the answers ${[...answered]}`);
});

t.test('a zone edit takes effect without restart; a broken edit keeps the old zone and is reported', async (t) => {
  const { server, admin, dir } = await start(t, { 'r.yaml': zone('192.0.2.10') });
  t.same(await aRecords(server.port, 'one.r.test'), ['192.0.2.10']);

  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.11'));
  await until(() => aRecords(server.port, 'one.r.test'), (a) => a[0] === '192.0.2.11', 'the edit is served');
  await server.waitForLog((l) => l.msg === 'zones reloaded' && l.trigger === 'watch');

  writeFileSync(join(dir, 'r.yaml'), zone('192.0.2.12').replace('www: { A: [192.0.2.80] }', 'www: { A: [192.0.2.999] }'));
  const reported = await server.waitForLog((l) => l.level === 'error' && /r\.yaml:\d+: records\.www\.A/.test(l.msg));
  t.match(reported.msg, /^.*r\.yaml:7: records\.www\.A(\[0\])?: .+/, 'file:line: path: message');
  t.same(await aRecords(server.port, 'one.r.test'), ['192.0.2.11'], 'the last good zone keeps serving');
  const m = parseMetrics(await (await fetch(`${admin}/metrics`)).text());
  t.equal(metric(m, 'sitedns_config_reload_errors_total'), 1);
  t.equal(metric(m, 'sitedns_config_problems'), 1);
  t.equal(metric(m, 'sitedns_config_reloads_total', { trigger: 'watch', result: 'problems' }), 1);

  // SIGHUP reloads too; the same problem is not reported twice.
  server.proc.kill('SIGHUP');
  await server.waitForLog((l) => l.trigger === 'sighup');
  t.equal(server.logs.filter((l) => l.level === 'error').length, 1);
  t.equal(server.proc.exitCode, null);
});

t.test('SIGTERM with TCP queries in flight answers them and exits 0', async (t) => {
  const { server } = await start(t, { 'app.example.com.yaml': NO_PROBES });
  const socket = net.connect({ port: server.port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const frame = (q: Buffer) => Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
  const replies: Buffer[] = [];
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      replies.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
      pending = pending.subarray(2 + pending.readUInt16BE(0));
    }
  });
  const closed = once(socket, 'close');
  const first = frame(query('boston.app.example.com', 'A', { id: 1 }));
  const second = frame(query('geneva.app.example.com', 'A', { id: 2 }));
  // One whole query and half of the next are on the wire when the stop begins.
  socket.write(Buffer.concat([first, second.subarray(0, 9)]));
  await until(async () => replies.length, (n) => n === 1, 'the first reply');
  const exited = once(server.proc, 'exit');
  server.proc.kill('SIGTERM');
  await server.waitForLog((l) => l.msg === 'stopping');
  socket.write(second.subarray(9));
  await closed;
  t.same(replies.map((r) => decode(r).id), [1, 2], 'both answered');
  t.equal(decode(replies[1]).answers[0].address, '198.51.100.30');
  const [code] = await exited;
  t.equal(code, 0, 'exit 0');
  t.ok(server.logs.some((l) => l.msg === 'stopped'));
});
