/**
 * TCP abuse (src/server/tcp.ts, RFC 7766): connection caps, the first-query / per-query deadline
 * that a slow-drip client cannot stretch, the idle timeout, the in-flight cap and backpressure.
 * In-process listener with the real handler, on loopback sockets (no timed assertions: every
 * wait is for an event, with generous upper bounds only to fail instead of hanging).
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { fuzzZones } from '../../bench/fuzz/handler-fuzz.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { listenTcp, type TcpOptions } from '../../src/server/tcp.js';
import { decode, query } from '../helpers/dns.js';
import { transportEventsTotal } from '../../src/metrics/definitions.js';

async function tcpEventCount(event: string): Promise<number> {
  return (await transportEventsTotal.get()).values.filter((v) => v.labels.transport === 'tcp' && v.labels.event === event).reduce((n, v) => n + v.value, 0);
}

const handler = new Handler(new Runtime(fuzzZones()));

async function listener(t: any, options: TcpOptions) {
  const events: string[] = [];
  const l = await listenTcp(handler, '127.0.0.1', 0, { ...options, onEvent: (e) => events.push(e) });
  t.teardown(() => l.close(0));
  return { l, events };
}

function frame(q: Buffer): Buffer {
  const f = Buffer.alloc(2 + q.length);
  f.writeUInt16BE(q.length, 0);
  q.copy(f, 2);
  return f;
}

async function connect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

/** Resolves true when the server closes the socket, false if it is still open after `ms`. */
function closedWithin(s: net.Socket, ms: number): Promise<boolean> {
  if (s.destroyed || s.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    s.once('close', () => (clearTimeout(timer), resolve(true)));
    s.once('end', () => (clearTimeout(timer), resolve(true)));
  });
}

/** Reads `n` framed replies. */
function replies(s: net.Socket, n: number, ms = 10_000): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let pending = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${out.length} of ${n} replies`)), ms);
    const onData = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        out.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (out.length >= n) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(out);
      }
    };
    s.on('data', onData);
    s.once('close', () => out.length < n && (clearTimeout(timer), reject(new Error(`closed after ${out.length} of ${n} replies`))));
  });
}

t.test('per-client and total connection caps', async (t) => {
  const rejectsBefore = await tcpEventCount('reject');
  const { l, events } = await listener(t, { maxConnections: 6, maxConnectionsPerClient: 3, idleTimeoutMs: 30_000, firstQueryTimeoutMs: 30_000 });
  const a = await Promise.all([1, 2, 3, 4, 5].map(() => connect(l.port, '127.0.0.1')));
  const closed = await Promise.all(a.map((s) => closedWithin(s, 300)));
  t.equal(closed.filter(Boolean).length, 2, 'two over the per-client cap of 3 are closed');
  const b = await Promise.all([1, 2, 3].map(() => connect(l.port, '127.0.0.2')));
  t.same(await Promise.all(b.map((s) => closedWithin(s, 300))), [false, false, false], 'another client address has its own allowance');
  const c = await connect(l.port, '127.0.0.3');
  t.notOk(await closedWithin(c, 300), 'over the total cap of 6: admitted');
  const closedBefore = await Promise.all([...a, ...b].map((s) => closedWithin(s, 2000)));
  t.equal(closedBefore.filter(Boolean).length, 3, 'in place of the longest-idle connection');
  t.equal(l.connections(), 6);
  t.ok(events.filter((e) => e === 'reject').length >= 2, 'rejections are reported');
  t.equal((await tcpEventCount('reject')) - rejectsBefore, events.filter((e) => e === 'reject').length, 'and counted in sitedns_transport_events_total');
  const open = [...a, ...b].filter((s) => !s.destroyed && !s.readableEnded);
  const [r] = await (async () => {
    const s = open[0];
    s.write(frame(query('mail.app.example.com', 'A', { id: 7 })));
    return replies(s, 1);
  })();
  t.equal(decode(r).id, 7, 'connections within the caps are served');
  for (const s of [...a, ...b, c]) s.destroy();
});

t.test('a full listener closes its longest-idle connection to admit a new client (RFC 7766 §6.2.3)', async (t) => {
  const evictsBefore = await tcpEventCount('evict');
  const { l, events } = await listener(t, { maxConnections: 4, maxConnectionsPerClient: 10, idleTimeoutMs: 30_000, firstQueryTimeoutMs: 30_000 });
  const idle: net.Socket[] = [];
  for (let i = 0; i < 4; i++) idle.push(await connect(l.port, `127.0.1.${i + 1}`));
  // The oldest one asks a query: the second oldest is now the one idle longest.
  idle[0].write(frame(query('mail.app.example.com', 'A', { id: 1 })));
  await replies(idle[0], 1);
  const newcomer = await connect(l.port, '127.0.2.1');
  t.ok(await closedWithin(idle[1], 2000), 'the connection idle longest is closed');
  newcomer.write(frame(query('mail.app.example.com', 'A', { id: 2 })));
  const [r] = await replies(newcomer, 1);
  t.equal(decode(r).id, 2, 'the new client is served');
  t.same(await Promise.all([idle[0], idle[2], idle[3]].map((s) => closedWithin(s, 200))), [false, false, false], 'the others stay open');
  t.equal(l.connections(), 4);
  t.same(events.filter((e) => e === 'evict' || e === 'reject'), ['evict'], 'one eviction, no rejection');
  t.equal((await tcpEventCount('evict')) - evictsBefore, 1, 'counted in sitedns_transport_events_total');
  for (const s of [...idle, newcomer]) s.destroy();
});

t.test('per-network cap: one /24 holds at most its share, other networks get in', async (t) => {
  const { l, events } = await listener(t, { maxConnections: 100, maxConnectionsPerClient: 2, maxConnectionsPerNetwork: 3, idleTimeoutMs: 30_000, firstQueryTimeoutMs: 30_000 });
  const first = [await connect(l.port, '127.0.3.1'), await connect(l.port, '127.0.3.1'), await connect(l.port, '127.0.3.2')];
  t.same(await Promise.all(first.map((s) => closedWithin(s, 300))), [false, false, false], 'three from 127.0.3.0/24, two per address');
  const fourth = await connect(l.port, '127.0.3.3');
  t.ok(await closedWithin(fourth, 2000), 'a fourth from the /24, from a fresh address: refused');
  const other = await connect(l.port, '127.0.4.1');
  t.notOk(await closedWithin(other, 300), 'another /24 is admitted');
  t.equal(events.filter((e) => e === 'reject').length, 1);
  t.equal(l.connections(), 4);
  for (const s of [...first, fourth, other]) s.destroy();
});

t.test('a client that connects and sends nothing is closed at the first-query deadline', async (t) => {
  const { l, events } = await listener(t, { firstQueryTimeoutMs: 300, idleTimeoutMs: 60_000 });
  const s = await connect(l.port);
  t.ok(await closedWithin(s, 10_000), 'closed although the idle timeout is a minute');
  t.ok(events.includes('timeout'));
});

t.test('a slow-drip client cannot stretch the deadline one byte at a time', async (t) => {
  const { l } = await listener(t, { firstQueryTimeoutMs: 400, idleTimeoutMs: 60_000 });
  for (const warmUp of [false, true]) {
    const s = await connect(l.port);
    if (warmUp) {
      // After a first answered query, the next query gets the same deadline from its first byte.
      s.write(frame(query('mail.app.example.com')));
      await replies(s, 1);
    }
    const bytes = frame(query('mail.app.example.com', 'A', { id: 99 }));
    let got = 0;
    s.on('data', () => got++);
    let i = 0;
    let closed = false;
    s.once('close', () => (closed = true));
    while (!closed && i < bytes.length - 1) {
      s.write(bytes.subarray(i, i + 1));
      i++;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.ok(await closedWithin(s, 10_000), `closed before the dripped query was complete (${warmUp ? 'second' : 'first'} query)`);
    t.ok(i < bytes.length - 1, `after ${i} of ${bytes.length} bytes`);
    t.equal(got, 0, 'and never answered');
  }
});

t.test('a steady pipelining client whose writes end mid-frame is not cut off', async (t) => {
  // A 2 s deadline, 30 writes 150 ms apart (4.5 s in all): each write completes a frame and ends
  // inside the next. (Generous margins: a loaded CI machine may delay a write by a second.)
  const { l } = await listener(t, { firstQueryTimeoutMs: 2000, idleTimeoutMs: 60_000 });
  const s = await connect(l.port);
  const all = Buffer.concat(Array.from({ length: 40 }, (_, i) => frame(query('mail.app.example.com', 'A', { id: i }))));
  const got = replies(s, 40, 60_000);
  const step = Math.ceil(all.length / 30);
  for (let i = 0; i < all.length; i += step) {
    s.write(all.subarray(i, i + step));
    await new Promise((r) => setTimeout(r, 150));
  }
  const r = await got;
  t.same(r.map((x) => decode(x).id), Array.from({ length: 40 }, (_, i) => i), 'every query answered, in order');
  s.destroy();
});

t.test('the idle timeout closes a connection between queries', async (t) => {
  const { l } = await listener(t, { firstQueryTimeoutMs: 60_000, idleTimeoutMs: 300 });
  const s = await connect(l.port);
  s.write(frame(query('mail.app.example.com')));
  await replies(s, 1);
  t.ok(await closedWithin(s, 10_000));
});

t.test('a client that does not read: reading pauses at the in-flight cap, nothing is lost, memory stays bounded', async (t) => {
  const { l, events } = await listener(t, { maxQueriesInFlight: 16, idleTimeoutMs: 30_000, firstQueryTimeoutMs: 30_000 });
  const s = await connect(l.port);
  s.pause();
  // 20,000 queries for a ~700-byte answer: ~14 MB of responses, more than the kernel's socket
  // buffers hold, so without backpressure they would pile up in the server's memory.
  const n = 20_000;
  const q = Buffer.concat(Array.from({ length: n }, (_, i) => frame(query('many.fuzz.test', 'A', { id: i }))));
  s.write(q);
  await new Promise((r) => setTimeout(r, 500));
  t.equal(l.connections(), 1, 'still connected while not reading');
  t.notOk(events.includes('overflow'), 'not cut off for pipelining');
  const got = replies(s, n, 30_000);
  s.resume();
  const r = await got;
  t.equal(r.length, n, 'every query answered once the client reads');
  t.ok(r.every((x, i) => decode(x).id === i), 'in order');
  s.destroy();
});

t.test('a client that never reads is closed by the idle timeout', async (t) => {
  const { l } = await listener(t, { maxQueriesInFlight: 8, idleTimeoutMs: 500, firstQueryTimeoutMs: 30_000 });
  const s = await connect(l.port);
  s.pause();
  const q = Buffer.concat(Array.from({ length: 5000 }, () => frame(query('many.fuzz.test', 'A'))));
  s.write(q);
  s.on('close', () => {});
  // The client's own receive buffer never drains, so the server sees no progress and gives up.
  await new Promise((resolve) => {
    const poll = setInterval(() => {
      if (l.connections() === 0) {
        clearInterval(poll);
        resolve(null);
      }
    }, 50);
  });
  t.equal(l.connections(), 0);
  s.destroy();
});

t.test('a /24 retrying past its cap: after 16 refusals in a second, refused connections are held, then closed', async (t) => {
  const { l, events } = await listener(t, { maxConnections: 100, maxConnectionsPerClient: 2, maxConnectionsPerNetwork: 2, idleTimeoutMs: 30_000, firstQueryTimeoutMs: 30_000 });
  const kept = [await connect(l.port, '127.0.6.1'), await connect(l.port, '127.0.6.2')];
  const refused: net.Socket[] = [];
  for (let i = 0; i < 16; i++) refused.push(await connect(l.port, `127.0.6.${10 + i}`));
  t.same(await Promise.all(refused.map((s) => closedWithin(s, 2000))), Array(16).fill(true), 'the first 16 refused are closed at once');
  const heldSocket = await connect(l.port, '127.0.6.40');
  t.notOk(await closedWithin(heldSocket, 1000), 'the 17th is held open');
  t.ok(await closedWithin(heldSocket, 8000), 'and closed after the hold');
  t.equal(events.filter((e) => e === 'reject').length, 17);
  const other = await connect(l.port, '127.0.7.1');
  t.notOk(await closedWithin(other, 300), 'another /24 is admitted meanwhile');
  for (const s of [...kept, other]) s.destroy();
});

t.test('refused connections held open: at most as many as the connection table holds', async (t) => {
  const { l } = await listener(t, { maxConnections: 4, maxConnectionsPerClient: 2, maxConnectionsPerNetwork: 2, idleTimeoutMs: 30_000, firstQueryTimeoutMs: 30_000 });
  const kept = [await connect(l.port, '127.0.8.1'), await connect(l.port, '127.0.8.2')];
  for (let i = 0; i < 16; i++) (await connect(l.port, `127.0.8.${10 + i}`)).destroy();
  const late: net.Socket[] = [];
  for (let i = 0; i < 6; i++) late.push(await connect(l.port, `127.0.8.${40 + i}`));
  const closed = await Promise.all(late.map((s) => closedWithin(s, 1000)));
  t.same(closed, [false, false, false, false, true, true], 'four held (the table holds four), the rest closed at once');
  for (const s of [...kept, ...late]) s.destroy();
});
