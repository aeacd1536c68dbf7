/** End-to-end: a real `sitedns serve` process, real UDP and TCP sockets. */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { decode, query } from '../helpers/dns.js';
import { startSitedns, tcpQueries, udpQuery } from '../helpers/net.js';

t.test('serve answers over UDP and TCP on one port', async (t) => {
  const server = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0']);
  t.teardown(() => server.stop());

  const udp = decode((await udpQuery(server.port, query('app.example.com', 'A', { edns: {} })))!);
  t.equal(udp.rcode, 0);
  t.ok(udp.aa);
  t.equal(udp.answers[0].ttl, 0);
  t.ok(udp.opt, 'OPT over UDP');

  const names = ['boston.app.example.com', 'chicago.app.example.com', 'geneva.app.example.com', 'nope.app.example.com', 'example.org'];
  const replies = await tcpQueries(server.port, names.map((n, i) => query(n, 'A', { id: 100 + i })));
  t.same(replies.map((r) => decode(r).id), [100, 101, 102, 103, 104], 'pipelined queries answered in order');
  t.same(replies.map((r) => decode(r).rcode), [0, 0, 0, 3, 5]);
  t.equal(decode(replies[0]).answers[0].address, '203.0.113.10');

  // Malformed packets: no crash, no reply to QR=1, and the next query is answered.
  const garbage = [Buffer.alloc(0), Buffer.from([1, 2, 3]), Buffer.alloc(12, 0xff), Buffer.from('deadbeef8180000100000000000003617070', 'hex'), Buffer.alloc(600, 0x3f)];
  for (const g of garbage) await udpQuery(server.port, g, '127.0.0.1', 200);
  const response = query('app.example.com');
  response.writeUInt16BE(0x8000, 2);
  t.equal(await udpQuery(server.port, response, '127.0.0.1', 300), null, 'no reply to QR=1');
  const after = decode((await udpQuery(server.port, query('app.example.com')))!);
  t.equal(after.rcode, 0, 'still answering after malformed input');
  t.equal(server.proc.exitCode, null, 'still running');
});

t.test('truncated over UDP, whole over TCP', async (t) => {
  const { tempZonesDir } = await import('../helpers/dns.js');
  const txt = Array.from({ length: 50 }, (_, i) => `"record-${i}-${'z'.repeat(30)}"`).join(', ');
  const dir = tempZonesDir({
    'big.yaml': `zone: big.test\nsoa: { mname: ns1.big.test, rname: h.big.test }\nnameservers: { ns1.big.test: [192.0.2.1] }\nrecords:\n  many: { TXT: [${txt}] }\n`,
  });
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0']);
  t.teardown(() => server.stop());
  const udp = decode((await udpQuery(server.port, query('many.big.test', 'TXT', { edns: { udpSize: 1232 } })))!);
  t.ok(udp.tc, 'TC=1 over UDP');
  t.ok(udp.raw.length <= 1232);
  t.ok(udp.opt, 'truncated reply keeps the OPT');
  const [tcp] = await tcpQueries(server.port, [query('many.big.test', 'TXT', { edns: { udpSize: 1232 } })]);
  const d = decode(tcp);
  t.notOk(d.tc);
  t.equal(d.answers.length, 50);
});

t.test('TCP: idle connections are closed; a client that never reads is cut off', async (t) => {
  const server = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0'], { SITEDNS_TCP_IDLE_TIMEOUT: '300ms' });
  t.teardown(() => server.stop());
  const idle = net.connect({ port: server.port, host: '127.0.0.1' });
  await once(idle, 'connect');
  const start = Date.now();
  await once(idle, 'close');
  t.ok(Date.now() - start < 8000, 'an idle connection is closed by the server');
  // A client that floods queries and never reads: the server stops reading, then disconnects.
  const flood = net.connect({ port: server.port, host: '127.0.0.1' });
  await once(flood, 'connect');
  flood.pause();
  const q = query('app.example.com', 'TXT');
  const frame = Buffer.alloc(2 + q.length);
  frame.writeUInt16BE(q.length, 0);
  q.copy(frame, 2);
  const burst = Buffer.concat(Array(2000).fill(frame));
  let closed = false;
  flood.on('close', () => (closed = true));
  flood.on('error', () => {});
  for (let i = 0; i < 200 && !closed; i++) {
    flood.write(burst);
    await new Promise((r) => setTimeout(r, 5));
  }
  const still = decode((await udpQuery(server.port, query('app.example.com')))!);
  t.equal(still.rcode, 0, 'UDP still answered while a TCP client misbehaves');
  flood.destroy();
  t.equal(server.proc.exitCode, null);
});

t.test('IPv6 listener', async (t) => {
  let server;
  try {
    server = await startSitedns(['serve', '--zones', 'zones/', '--listen', '[::1]:0']);
  } catch (error) {
    t.skip(`no IPv6 loopback here: ${(error as Error).message.split('\n')[0]}`);
    return;
  }
  t.teardown(() => server!.stop());
  const r = decode((await udpQuery(server.port, query('app.example.com', 'AAAA'), '::1'))!);
  t.equal(r.answers[0].address, '2001:db8:b::10');
});

t.test('SIGTERM exits 0', async (t) => {
  const server = await startSitedns(['serve', '--zones', 'zones/', '--listen', '127.0.0.1:0']);
  t.equal(await server.stop('SIGTERM'), 0);
});
