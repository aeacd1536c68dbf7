/**
 * The batched UDP path in-process and end to end: same answers as node:dgram byte for byte,
 * the chosen path in the log, and the native counters in the metrics.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { registry } from '../../src/metrics/definitions.js';
import { listenUdp, localAddresses } from '../../src/server/udp.js';
import { batchedUnavailable, listenBatchedUdp } from '../../src/server/udp-batched.js';
import { compileText, decode, makeHandler, query } from '../helpers/dns.js';
import { CLI, startSitedns, udpQuery } from '../helpers/net.js';
import { spawn } from 'node:child_process';
import os from 'node:os';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';
import { followJsonLines } from '../helpers/json-lines.js';

const ZONE = `zone: b.test
soa: { mname: ns1.b.test, rname: h.b.test }
nameservers: { ns1.b.test: [192.0.2.1] }
sites:
  one: { addresses: [203.0.113.1, "2001:db8::1"] }
  two: { addresses: [203.0.113.2] }
pool: { name: "@", policy: first }
records:
  www: { CNAME: b.test. }
  txt: { TXT: ["hello"] }
`;

const why = batchedUnavailable();
if (why !== null) {
  if (process.env.SITEDNS_REQUIRE_ADDON === '1') t.fail(`SITEDNS_REQUIRE_ADDON=1 but ${why}`);
  else t.skip(why);
} else {
  run();
}


/** Sends all queries from one socket at once and collects replies by ID. */
async function burst(port: number, queries: Buffer[], host = '127.0.0.1'): Promise<Map<number, Buffer>> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const replies = new Map<number, Buffer>();
  socket.on('message', (m) => replies.set(m.readUInt16BE(0), m));
  socket.bind(0, host);
  await once(socket, 'listening');
  for (const q of queries) socket.send(q, port, host);
  const start = Date.now();
  while (replies.size < queries.length && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 5));
  socket.close();
  return replies;
}

function run(): void {
  t.test('batched and dgram answer byte for byte alike, in bursts larger than a batch', async (t) => {
    const { handler } = makeHandler(compileText(ZONE));
    const batched = await listenBatchedUdp(handler, '127.0.0.1', 0, { batch: 8 });
    t.teardown(() => batched.close());
    const plain = await listenUdp(handler, '127.0.0.1', 0);
    t.teardown(() => plain.close());
    t.equal(batched.path, 'batched');
    const names: [string, string, object?][] = [
      ['b.test', 'A'], ['B.TeSt', 'AAAA'], ['one.b.test', 'A', { edns: {} }], ['www.b.test', 'A'],
      ['txt.b.test', 'TXT', { edns: { udpSize: 4096, do: true } }], ['nope.b.test', 'A'], ['example.org', 'A'],
      ['b.test', 'SOA'], ['b.test', 'NS', { edns: { version: 1 } }], ['b.test', 'A', { opcode: 2 }],
    ];
    const queries: Buffer[] = [];
    for (let i = 0; i < 60; i++) {
      const [n, ty, o] = names[i % names.length];
      queries.push(query(n, ty, { ...(o ?? {}), id: 1000 + i }));
    }
    const a = await burst(batched.port, queries);
    const b = await burst(plain.port, queries);
    t.equal(a.size, queries.length, 'every query answered on the batched path');
    for (const [id, reply] of b) t.same(a.get(id), reply, `id ${id} identical`);
    t.equal(decode(a.get(1001)!).answers[0].name, 'B.TeSt', 'question case kept');
    const st = batched.stats();
    t.equal(st.received, 60);
    t.equal(st.sent, 60);
    t.ok(st.batches < 60, `batched (${st.batches} JS calls for 60 datagrams)`);
  });

  t.test('no reply for QR=1 and short packets; a query longer than a slot is answered', async (t) => {
    const { handler } = makeHandler(compileText(ZONE));
    const batched = await listenBatchedUdp(handler, '127.0.0.1', 0, { slot: 1232 });
    t.teardown(() => batched.close());
    const response = query('b.test');
    response.writeUInt16BE(0x8000, 2);
    t.equal(await udpQuery(batched.port, response, '127.0.0.1', 200), null, 'QR=1: no reply');
    t.equal(await udpQuery(batched.port, Buffer.from([1, 2, 3]), '127.0.0.1', 200), null, 'short: no reply');
    // EDNS Padding (RFC 7830, option 12) makes a valid query longer than the 1,232-byte slot.
    const padding = Buffer.alloc(1300);
    padding.writeUInt16BE(12, 0);
    padding.writeUInt16BE(1296, 2);
    const long = decode((await udpQuery(batched.port, query('b.test', 'A', { id: 77, edns: { options: padding } })))!);
    t.same([long.id, long.rcode, long.answers.length], [77, 0, 1], 'a 1,3xx-byte query: answered');
    t.equal(batched.stats().large, 1, 'counted as large');
    const ok = decode((await udpQuery(batched.port, query('b.test')))!);
    t.equal(ok.rcode, 0);
    const text = await registry.metrics();
    t.match(text, /sitedns_udp_batch_dropped_total\{reason="oversize"\} 0/);
    t.match(text, /sitedns_udp_batch_errors_total\{kind="send"\} 0/);
    t.match(text, /sitedns_udp_batch_events_total\{event="large"\} [1-9]/, 'long queries exported as large');
    t.match(text, /sitedns_udp_batch_events_total\{event="no_pktinfo"\} 0/);
  });

  t.test('node:dgram on a wildcard address: one socket per local address, or a one-line refusal', async (t) => {
    const { handler } = makeHandler(compileText(ZONE));
    const lo = { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' } as const;
    const v4only = { lo: [lo] };
    const eth0 = [
      { address: '192.0.2.2', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.0.2.2/24' },
      { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    ] as const;
    t.same(localAddresses(6, { lo: [], eth0: [...eth0] }), ['fe80::1%eth0'], 'a link-local address is bound with its interface');
    t.same(localAddresses(4, { lo: [lo], eth0: [...eth0] }), ['127.0.0.1', '192.0.2.2'], 'loopback included');
    await t.rejects(listenUdp(handler, '::', 0, { interfaces: v4only }), { code: 'EUDP_WILDCARD', message: /^--listen \[::\]:0: this host has no IPv6 address, and without the batched UDP addon a wildcard is served by one UDP socket per local address$/ }, 'no address of the family: refused, saying why');
    const listener = await listenUdp(handler, '0.0.0.0', 0, { interfaces: v4only });
    t.teardown(() => listener.close());
    t.same(listener.boundAddresses, ['127.0.0.1']);
    t.equal(listener.address, '0.0.0.0');
    t.equal(decode((await udpQuery(listener.port, query('b.test')))!).rcode, 0, 'answered on the address it bound');
    // An address taken by another socket on an explicit port: refused, naming the address.
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind({ port: 0, address: '127.0.0.1', exclusive: true }, resolve));
    t.teardown(() => taken.close());
    const err = await listenUdp(handler, '0.0.0.0', taken.address().port, { interfaces: v4only }).then(() => null, (e) => e);
    t.equal(err?.code, 'EADDRINUSE');
    t.match(err?.message, /127\.0\.0\.1 could not be bound/);
    t.notMatch(err?.message, /\n/, 'one line');
  });

  t.test('IPv6 listener on the batched path', async (t) => {
    const { handler } = makeHandler(compileText(ZONE));
    let listener;
    try {
      listener = await listenBatchedUdp(handler, '::1', 0);
    } catch (error) {
      return t.skip(`no IPv6 loopback: ${(error as Error).message}`);
    }
    t.teardown(() => listener.close());
    const reply = decode((await udpQuery(listener.port, query('b.test', 'AAAA', { edns: {} }), '::1'))!);
    t.equal(reply.answers[0].address, '2001:db8::1');
  });

  for (const path of ['batched', 'dgram']) {
    t.test(`sitedns serve --udp-path ${path} logs the path it uses`, async (t) => {
      const server = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0'], { SITEDNS_UDP_PATH: path });
      t.teardown(() => server.stop());
      const line = await server.waitForLog((l) => l.msg === 'listening on UDP and TCP');
      t.equal(line.udpPath, path);
      t.equal(decode((await udpQuery(server.port, query('app.example.com')))!).rcode, 0);
    });
  }

  t.test('serve with no UDP flag answers on one UDP thread per core', async (t) => {
    const noThreads = udpThreadsUnavailable();
    if (noThreads !== null) return t.skip(noThreads);
    const port = await new Promise<number>((resolve) => {
      const probe = dgram.createSocket('udp4');
      probe.bind(0, '127.0.0.1', () => {
        const p = probe.address().port;
        probe.close(() => resolve(p));
      });
    });
    const env = { ...process.env };
    delete env.SITEDNS_UDP_THREADS;
    delete env.SITEDNS_UDP_PATH;
    const proc = spawn(process.execPath, [CLI, 'serve', '--zones', 'zones/', '--listen', `127.0.0.1:${port}`, '--http', 'off'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => {
      proc.kill('SIGTERM');
    });
    const logs = followJsonLines(proc, 60_000);
    const listening = await logs.waitFor((l) => l.msg === 'listening on UDP and TCP');
    t.match(listening, { udpPath: 'threads', udpThreads: os.availableParallelism(), port }, 'the default: one thread per core');
    t.notOk(logs.lines.some((l) => /main thread's event loop/.test(l.msg ?? '')), 'no fallback where the addon loads');
    for (let i = 0; i < 10; i++) {
      const reply = await udpQuery(port, query('boston.app.example.com', 'A', { id: i }), '127.0.0.1', 3000);
      t.ok(reply !== null && decode(reply).rcode === 0, `query ${i} answered`);
    }
  });
}
