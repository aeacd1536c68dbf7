/**
 * TCP abuse against a real `sitedns serve`: 1,000 idle connections and a slow-drip client,
 * while UDP queries are still all answered. The connections are held by a separate process
 * (bench/soak/hold-connections.mjs); both processes get a raised fd limit (`ulimit -n`), since
 * 1,000 connections need more than the usual soft limit of 1024. bench/soak/tcp-abuse.ts is the
 * longer version with throughput figures.
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { fdLimits, holdConnections, openCount, startServe, udpLoad } from '../../bench/soak/procs.js';
import { decode, query } from '../helpers/dns.js';
import { tcpQueries } from '../helpers/net.js';

t.test('1,000 idle TCP connections and a slow-drip client; UDP still answered', async (t) => {
  const limits = fdLimits();
  const wanted = 1000;
  // Each side needs one descriptor per connection plus a few dozen of its own.
  const count = Math.min(wanted, limits.hard - 200);
  if (count < wanted) t.comment(`hard fd limit ${limits.hard}: holding ${count} connections instead of ${wanted}`);
  const fds = Math.min(limits.hard, count + 1000);

  // The holder's 20 addresses and the other clients share 127.0.0.0/24: its cap is raised to let them all in.
  const server = await startServe(['--zones', 'zones/', '--listen', '127.0.0.1:0', '--tcp-idle-timeout', '120s', '--tcp-query-timeout', '1s', '--tcp-max-per-network', String(count + 10)], fds);
  t.teardown(() => server.stop());
  const holder = await holdConnections(server.port, count, 20, 'idle-after-query', fds);
  t.teardown(() => holder.stop());
  t.equal(holder.held, count, `${count} connections opened, each answered once, now idle`);

  // The slow-drip client: one byte every 200 ms of a 35-byte frame; the 1 s query deadline ends it.
  const drip = net.connect({ port: server.port, host: '127.0.0.1', localAddress: '127.0.0.250' });
  drip.on('error', () => {});
  await once(drip, 'connect');
  let dripClosed = false;
  let dripAnswered = false;
  drip.on('close', () => (dripClosed = true));
  drip.on('data', () => (dripAnswered = true));
  const frame = Buffer.concat([Buffer.from([0, 33]), query('mail.app.example.com')]);
  const dripping = (async () => {
    for (let i = 0; i < frame.length - 1 && !dripClosed; i++) {
      drip.write(frame.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  const udp = await udpLoad(server.port, 20_000);
  t.equal(udp.answered, udp.sent, `all ${udp.sent} UDP queries answered while the connections are held (${Math.round(udp.sent / udp.seconds)}/s)`);
  t.same(Object.keys(udp.rcodes), ['0'], 'all NOERROR');

  await dripping;
  if (!dripClosed) await Promise.race([once(drip, 'close'), new Promise((r) => setTimeout(r, 10_000))]);
  t.ok(dripClosed, 'the slow-drip client was disconnected');
  t.notOk(dripAnswered, 'before its query was complete');

  t.equal(await openCount(holder), count, `all ${count} idle connections still held (idle timeout 120 s)`);
  const [r] = await tcpQueries(server.port, [query('mail.app.example.com', 'A', { id: 4242 })], 1, '127.0.0.1', 10_000);
  t.equal(decode(r).id, 4242, 'a new TCP client is still served');
  t.equal(server.proc.exitCode, null, 'server alive');
});
