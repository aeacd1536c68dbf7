/** Graceful stop in the Redis layout: a nameserver following Redis answers what is in flight, closes Redis, exits 0. */
import t from 'tap';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { startSitedns } from '../helpers/net.js';

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function redisClients(port: number): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  socket.write('CLIENT LIST\r\n');
  const [chunk] = await once(socket, 'data');
  socket.destroy();
  return chunk.toString();
}

const countClients = (list: string) => (list.match(/\bid=\d+/g) ?? []).length;

t.test('SIGTERM in the Redis layout: in-flight TCP answered, Redis closed, exit 0', async (t) => {
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  t.teardown(() => {
    redis.kill('SIGTERM');
  });
  for (let i = 0; i < 100; i++) {
    try {
      await redisClients(redisPort);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const sample = readFileSync(new URL('../../zones/app.example.com.yaml', import.meta.url), 'utf8').replace(/^\s+probe: .*\n/gm, '');
  const dir = tempZonesDir({ 'app.example.com.yaml': sample });
  const server = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--redis', `redis://127.0.0.1:${redisPort}`, '--state-file', 'off', '--startup-limit', '500ms']);
  t.teardown(() => server.stop());
  const clientsBefore = countClients(await redisClients(redisPort));
  t.ok(clientsBefore >= 2, `sitedns holds Redis connections (${clientsBefore} clients with ours)`);

  // Two queries written on an open connection, and SIGTERM right behind them.
  const socket = net.connect({ port: server.port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c) => chunks.push(c));
  const closed = once(socket, 'close');
  const frames = [query('boston.app.example.com', 'A', { id: 7 }), query('geneva.app.example.com', 'A', { id: 8 })].map((q) => Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]));
  const exited = once(server.proc, 'exit');
  socket.write(Buffer.concat(frames));
  server.proc.kill('SIGTERM');
  await closed;
  const data = Buffer.concat(chunks);
  const ids: number[] = [];
  for (let i = 0; i + 2 <= data.length; i += 2 + data.readUInt16BE(i)) ids.push(decode(data.subarray(i + 2, i + 2 + data.readUInt16BE(i))).id);
  t.same(ids, [7, 8], 'both answered');
  const [code] = await exited;
  t.equal(code, 0, 'exit 0');
  t.ok(server.logs.some((l) => l.msg === 'stopped'), 'stopped cleanly');
  t.notOk(server.logs.some((l) => /took too long/.test(l.msg ?? '')), 'not by the stop timeout');
  let left = 0;
  for (let i = 0; i < 100; i++) {
    left = countClients(await redisClients(redisPort));
    if (left === 1) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(left, 1, 'no sitedns connection is left in Redis: ' + (await redisClients(redisPort)));
});
