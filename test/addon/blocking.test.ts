/**
 * The batched UDP addon's blocking API (serve --udp-threads): openBlocking/receive/send/
 * waitAny driven directly, on real loopback sockets. receive() blocks the calling thread, so the
 * tests on this thread send their datagrams FIRST (they queue in the socket buffer), then call
 * receive()/send(), and only then let the event loop collect the replies; the serving loop of
 * udp-thread.ts is reproduced in a worker thread at the end (mailbox read after each wake-up,
 * teardown with and without close()).
 * Skipped where the addon is not built, unless SITEDNS_REQUIRE_ADDON=1 (CI sets it).
 */
import t from 'tap';
import dgram from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { MessageChannel, Worker } from 'node:worker_threads';
import { addonFile, loadAddon, LAYOUT, sharedBufferBytes, type UdpBatchAddon } from '../../src/server/udp-batched.js';
import { MAX_SPIN_MICROS } from '../../src/server/udp-threads.js';

const { META_WORDS, M_IN_LEN, M_OUT_LEN, M_PORT, M_FAMILY, M_ADDR, M_LOCAL, MAX_DATAGRAM } = LAYOUT;
const ADDON_FILE = addonFile();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type BlockingOptions = { host?: string; port?: number; batch?: number; slot?: number; receiveTimeoutMs?: number; sendTimeoutMs?: number; faultSendEagain?: number; reusePort?: number; spinMicros?: number };

/** A blocking addon socket plus views of its shared buffer. */
function openBlocking(addon: UdpBatchAddon, opts: BlockingOptions = {}) {
  const batch = opts.batch ?? 8;
  const slot = opts.slot ?? 2048;
  const buffer = new ArrayBuffer(sharedBufferBytes(batch, slot));
  const meta = new Int32Array(buffer, 0, batch * META_WORDS);
  const u8 = new Uint8Array(buffer);
  const inBase = batch * META_WORDS * 4;
  const outBase = inBase + batch * slot;
  const { handle, port } = addon.openBlocking({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, batch, slot, receiveTimeoutMs: opts.receiveTimeoutMs ?? 100, sendTimeoutMs: opts.sendTimeoutMs, faultSendEagain: opts.faultSendEagain, reusePort: opts.reusePort, spinMicros: opts.spinMicros }, buffer);
  return {
    handle,
    port,
    batch,
    slot,
    buffer,
    meta,
    u8,
    inLen: (i: number) => meta[i * META_WORDS + M_IN_LEN],
    /** Datagram i whole: its slot, then (longer than a slot) its part of the `over` area. */
    input: (i: number) => {
      const len = meta[i * META_WORDS + M_IN_LEN];
      const over = inBase + 2 * batch * slot + i * (MAX_DATAGRAM - slot);
      return Buffer.concat([u8.subarray(inBase + i * slot, inBase + i * slot + Math.min(len, slot)), u8.subarray(over, over + Math.max(0, len - slot))]);
    },
    local: (i: number) => Array.from(u8.subarray((i * META_WORDS + M_LOCAL) * 4, (i * META_WORDS + M_LOCAL) * 4 + 4)).join('.'),
    source: (i: number) => {
      const m = i * META_WORDS;
      const fam = meta[m + M_FAMILY];
      const a = u8.subarray((m + M_ADDR) * 4, (m + M_ADDR) * 4 + (fam === 4 ? 4 : 16));
      return { family: fam, port: meta[m + M_PORT], addr: Array.from(a).join('.') };
    },
    /** Writes `bytes` as the reply of slot i. */
    reply(i: number, bytes: Buffer) {
      u8.set(bytes, outBase + i * slot);
      meta[i * META_WORDS + M_OUT_LEN] = bytes.length;
    },
    /** Echoes every accepted datagram of slots [0, n) with its first byte incremented. */
    echo(n: number) {
      for (let i = 0; i < n; i++) {
        const m = i * META_WORDS;
        const len = meta[m + M_IN_LEN];
        if (len === 0) continue;
        u8.copyWithin(outBase + i * slot, inBase + i * slot, inBase + i * slot + len);
        u8[outBase + i * slot] = (u8[outBase + i * slot] + 1) & 0xff;
        meta[m + M_OUT_LEN] = len;
      }
    },
    close: () => addon.close(handle),
  };
}

/** A client socket that collects replies. */
async function client(family: 4 | 6 = 4) {
  const host = family === 4 ? '127.0.0.1' : '::1';
  const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  socket.bind(0, host);
  await once(socket, 'listening');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  return {
    socket,
    replies,
    port: socket.address().port,
    send: (data: Buffer, port: number) => new Promise<void>((resolve, reject) => socket.send(data, port, host, (e) => (e ? reject(e) : resolve()))),
    async waitFor(n: number, ms = 3000) {
      const start = Date.now();
      while (replies.length < n && Date.now() - start < ms) await sleep(5);
      return replies;
    },
    close: () => socket.close(),
  };
}

/**
 * Waits until `handle` has a datagram queued (without blocking the event loop for long), then a
 * little longer so that every datagram sent before is queued too (loopback delivers within the
 * sender's syscall; the pause only guards against a deferred softirq on a loaded machine).
 */
async function queued(addon: UdpBatchAddon, handle: object, ms = 3000): Promise<boolean> {
  const start = Date.now();
  while (addon.waitAny([handle], 0, 0) < 0) {
    if (Date.now() - start > ms) return false;
    await sleep(2);
  }
  await sleep(10);
  return true;
}

/** The error code of binding `port` WITHOUT SO_REUSEPORT/SO_REUSEADDR, or null if it binds. */
async function exclusiveBind(port: number, host = '127.0.0.1'): Promise<string | null> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: host, exclusive: true }, () => resolve());
    });
    return null;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  } finally {
    socket.close();
  }
}

/**
 * The serving loop of udp-thread.ts, reduced to an echo: a worker thread that waits in receive(),
 * looks at its mailbox after every wake-up (a timeout included) and answers the batch.
 * workerData.mode: 'close' closes the handle before ending, 'abandon' ends without close(),
 * 'forever' never looks at the mailbox (ended by terminate()).
 * wakeups[0] counts receive() calls that timed out (so the idle wake-up is observable).
 */
const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const addon = require(workerData.addonFile);
const { batch, slot, mode, mailbox } = workerData;
const wakeups = new Int32Array(workerData.wakeups);
const META = ${META_WORDS};
const buffer = new ArrayBuffer(${sharedBufferBytes(8, 2048)});
const meta = new Int32Array(buffer, 0, batch * META);
const u8 = new Uint8Array(buffer);
const inBase = batch * META * 4, outBase = inBase + batch * slot;
const { handle, port } = addon.openBlocking({ host: '127.0.0.1', port: 0, batch, slot, receiveTimeoutMs: workerData.receiveTimeoutMs }, buffer);
mailbox.postMessage({ type: 'ready', port });
let stopping = false;
let last = 0;
while (!stopping) {
  const n = addon.receive(handle);
  last = n;
  if (mode !== 'forever') {
    for (let m = receiveMessageOnPort(mailbox); m !== undefined; m = receiveMessageOnPort(mailbox)) if (m.message === 'stop') stopping = true;
  }
  if (n < 0 || stopping) break;
  if (n === 0) { Atomics.add(wakeups, 0, 1); continue; }
  for (let i = 0; i < n; i++) {
    const len = meta[i * META + ${M_IN_LEN}];
    if (len === 0) continue;
    u8.copyWithin(outBase + i * slot, inBase + i * slot, inBase + i * slot + len);
    u8[outBase + i * slot] = (u8[outBase + i * slot] + 1) & 0xff;
    meta[i * META + ${M_OUT_LEN}] = len;
  }
  addon.send(handle, n);
}
const stats = addon.stats(handle);
if (mode === 'close') {
  addon.close(handle);
  addon.close(handle);
}
mailbox.postMessage({ type: 'done', stats, last, afterClose: mode === 'close' ? addon.receive(handle) : null });
mailbox.close();
`;

function startWorker(mode: 'close' | 'abandon' | 'forever', receiveTimeoutMs = 50) {
  const { port1, port2 } = new MessageChannel();
  const wakeups = new SharedArrayBuffer(4);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { addonFile: ADDON_FILE, batch: 8, slot: 2048, mode, mailbox: port2, wakeups, receiveTimeoutMs },
    transferList: [port2],
  });
  const messages: any[] = [];
  port1.on('message', (m) => messages.push(m));
  const exited = once(worker, 'exit').then(([code]) => code as number);
  const errors: Error[] = [];
  worker.on('error', (e) => errors.push(e));
  const waitMessage = async (type: string, ms = 5000) => {
    const start = Date.now();
    while (!messages.some((m) => m.type === type) && Date.now() - start < ms && errors.length === 0) await sleep(5);
    return messages.find((m) => m.type === type);
  };
  return { worker, port1, messages, errors, exited, waitMessage, wakeups: new Int32Array(wakeups) };
}

function run(addon: UdpBatchAddon): void {
  t.test('echo round trip over IPv4, with the sender in the meta words', async (t) => {
    const s = openBlocking(addon);
    t.teardown(s.close);
    const c = await client();
    t.teardown(c.close);
    await c.send(Buffer.from('hello'), s.port);
    t.ok(await queued(addon, s.handle), 'datagram queued');
    const n = addon.receive(s.handle);
    t.equal(n, 1, 'one slot filled');
    t.equal(s.inLen(0), 5);
    t.equal(s.input(0).toString(), 'hello');
    t.same(s.source(0), { family: 4, port: c.port, addr: '127.0.0.1' }, 'family, port and address of the sender');
    t.equal(s.meta[M_OUT_LEN], 0, 'the reply length starts at 0');
    s.echo(n);
    addon.send(s.handle, n);
    const replies = await c.waitFor(1);
    t.same(replies.map(String), ['iello']);
    const st = addon.stats(s.handle);
    t.equal(st.received, 1);
    t.equal(st.sent, 1);
    t.equal(st.batches, 1);
    t.equal(st.recvErrors + st.sendErrors + st.dropBadReply + st.dropSendQueue, 0, 'no error counted');
  });

  t.test('echo round trip over IPv6 on ::1, 16-byte source address', async (t) => {
    let s: ReturnType<typeof openBlocking>;
    try {
      s = openBlocking(addon, { host: '::1' });
    } catch (error) {
      t.skip(`no IPv6 loopback here: ${(error as Error).message}`, () => {});
      return;
    }
    t.teardown(s.close);
    const c = await client(6);
    t.teardown(c.close);
    await c.send(Buffer.from('abc'), s.port);
    t.ok(await queued(addon, s.handle));
    const n = addon.receive(s.handle);
    t.equal(n, 1);
    t.same(s.source(0), { family: 6, port: c.port, addr: '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1' });
    s.echo(n);
    addon.send(s.handle, n);
    const replies = await c.waitFor(1);
    t.same(replies.map(String), ['bbc']);
  });

  t.test('several datagrams per receive(), never more than a batch', async (t) => {
    const s = openBlocking(addon, { batch: 4 });
    t.teardown(s.close);
    const c = await client();
    t.teardown(c.close);
    const N = 10;
    for (let i = 0; i < N; i++) await c.send(Buffer.from([0x10, i]), s.port);
    t.ok(await queued(addon, s.handle));
    const counts: number[] = [];
    const payloads: number[] = [];
    for (let total = 0; total < N; ) {
      const n = addon.receive(s.handle);
      if (n <= 0) break;
      counts.push(n);
      total += n;
      for (let i = 0; i < n; i++) {
        payloads.push(s.input(i)[1]);
        t.equal(s.source(i).port, c.port);
      }
      s.echo(n);
      addon.send(s.handle, n);
    }
    t.same(counts, [4, 4, 2], 'MSG_WAITFORONE takes what is queued, up to the batch');
    t.same(payloads, [...Array(N).keys()], 'in order, each once');
    const replies = await c.waitFor(N);
    t.equal(replies.length, N);
    t.ok(replies.every((r) => r[0] === 0x11), 'every reply patched');
    const st = addon.stats(s.handle);
    t.equal(st.received, N);
    t.equal(st.sent, N);
    t.equal(st.batches, 3);
  });

  t.test('an idle socket: receive() returns 0 after about receiveTimeoutMs', async (t) => {
    const timeout = 100;
    const s = openBlocking(addon, { receiveTimeoutMs: timeout });
    t.teardown(s.close);
    const start = performance.now();
    const n = addon.receive(s.handle);
    const elapsed = performance.now() - start;
    t.equal(n, 0);
    t.ok(elapsed >= timeout * 0.5, `waited ${elapsed.toFixed(1)} ms (>= ${timeout / 2})`);
    t.ok(elapsed < timeout * 10, `waited ${elapsed.toFixed(1)} ms (< ${timeout * 10})`);
    addon.send(s.handle, 8); // nothing was received: nothing to send, no error
    const st = addon.stats(s.handle);
    t.equal(st.received, 0);
    t.equal(st.sent, 0);
    t.equal(st.recvErrors, 0, 'a timeout is not an error');
  });

  t.test('spinMicros: an idle socket never spins; a thread that is behind spins; a spin that finds nothing sleeps', async (t) => {
    const s = openBlocking(addon, { spinMicros: 1000, receiveTimeoutMs: 20, batch: 16 });
    t.teardown(s.close);
    const c = await client();
    t.teardown(c.close);
    for (let i = 0; i < 3; i++) t.equal(addon.receive(s.handle), 0, 'idle: the receive timeout');
    let st = addon.stats(s.handle);
    t.equal(st.spinHits + st.spinMisses, 0, 'idle waits are long: it slept at once');
    // A full batch queued before each receive(): the thread is behind (16 datagrams per receive,
    // at least 8 needed) and every wait is short, so once the averages (EWMA over ~16 receives)
    // pass 75 % short waits, after about 22 of them, a receive polls before it sleeps. Datagrams
    // already queued are no saving and count as neither hit nor miss; an empty socket shows the
    // difference: a miss (polled, then slept) once the thread spins, nothing before.
    const rounds = async (from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        for (let k = 0; k < 16; k++) await c.send(Buffer.from([0x20, i, k]), s.port);
        t.ok(await queued(addon, s.handle), `round ${i} queued`);
        t.equal(addon.receive(s.handle), 16);
        s.echo(16);
        addon.send(s.handle, 16);
      }
    };
    await rounds(0, 10);
    t.equal(addon.receive(s.handle), 0, 'empty after 10 full batches');
    st = addon.stats(s.handle);
    t.equal(st.spinHits + st.spinMisses, 0, 'not spinning yet: it slept at once');
    await rounds(10, 40);
    t.equal((await c.waitFor(50 * 16)).length, 50 * 16, 'every datagram answered');
    st = addon.stats(s.handle);
    t.same([st.spinHits, st.spinMisses], [0, 0], 'queued datagrams are neither hits nor misses');
    // Nothing queued now: it polls for 1 ms, then sleeps until the receive timeout.
    const start = performance.now();
    t.equal(addon.receive(s.handle), 0);
    const elapsed = performance.now() - start;
    t.ok(elapsed >= 10, `slept after the spin (${elapsed.toFixed(1)} ms)`);
    st = addon.stats(s.handle);
    t.equal(st.spinMisses, 1, 'a spin that found nothing is a miss');
    t.equal(st.recvErrors, 0);
  });

  t.test('spinMicros: datagrams that arrive while spinning are received and answered (a sender thread)', async (t) => {
    const s = openBlocking(addon, { spinMicros: 200, receiveTimeoutMs: 50, batch: 16 });
    t.teardown(s.close);
    // First the thread is made to spin, as in the test above: full batches, short waits.
    const c = await client();
    t.teardown(c.close);
    for (let i = 0; i < 30; i++) {
      for (let k = 0; k < 16; k++) await c.send(Buffer.from([0x20, i, k]), s.port);
      t.ok(await queued(addon, s.handle));
      s.echo(addon.receive(s.handle));
      addon.send(s.handle, 16);
    }
    const primed = addon.stats(s.handle); // spinning now (see the test above)
    const N = 3000;
    // The client runs on its own thread, so datagrams arrive while this thread sits in receive()
    // (whether it still spins then depends on how far behind it stays). Like dnsperf it keeps
    // queries outstanding and sends one more per reply (a blind flood would overflow the buffer).
    const sender = new Worker(
      `const dgram = require('node:dgram'); const { workerData } = require('node:worker_threads');
       const s = dgram.createSocket('udp4');
       let sent = 0, replies = 0;
       const next = () => { if (sent < workerData.n) { s.send(Buffer.from([0x30, sent & 0xff, sent >> 8]), workerData.port, '127.0.0.1'); sent++; } };
       s.on('message', () => { if (++replies === workerData.n) s.close(); else next(); });
       s.bind(0, '127.0.0.1', () => { for (let k = 0; k < 64; k++) next(); });`,
      { eval: true, workerData: { port: s.port, n: N } },
    );
    const exited = once(sender, 'exit');
    let received = 0;
    for (let idle = 0; received < N && idle < 20; ) {
      const n = addon.receive(s.handle);
      if (n <= 0) {
        idle++;
        await sleep(1); // let the event loop see the sender's exit, if any
        continue;
      }
      received += n;
      s.echo(n);
      addon.send(s.handle, n);
    }
    await exited;
    const st = addon.stats(s.handle);
    t.equal(st.received - primed.received, N, 'every datagram received');
    t.equal(st.sent - primed.sent, N, 'and answered');
    t.ok(st.spinHits + st.spinMisses > primed.spinHits + primed.spinMisses, `the first waits polled (hits ${st.spinHits - primed.spinHits}, misses ${st.spinMisses - primed.spinMisses})`);
    t.equal(st.recvErrors, 0);
  });

  t.test('long datagrams arrive whole (slot + over part, counted as large); empty ones are dropped and never answered', async (t) => {
    const s = openBlocking(addon, { slot: 512 });
    t.teardown(s.close);
    const c = await client();
    t.teardown(c.close);
    const long = Buffer.from(Array.from({ length: 60_000 }, (_, k) => k % 251));
    await c.send(Buffer.alloc(600, 1), s.port);
    await c.send(Buffer.alloc(0), s.port);
    await c.send(Buffer.alloc(512, 2), s.port); // exactly a slot
    await c.send(long, s.port);
    t.ok(await queued(addon, s.handle));
    const n = addon.receive(s.handle);
    t.equal(n, 4, 'the count includes the dropped slot');
    t.same([0, 1, 2, 3].map(s.inLen), [600, 0, 512, 60_000], 'M_IN_LEN 0 marks a dropped datagram; long ones keep their length');
    t.ok(s.input(0).equals(Buffer.alloc(600, 1)), '600 bytes intact');
    t.ok(s.input(3).equals(long), '60,000 bytes intact');
    t.equal(s.input(2)[511], 2);
    // Replies written for every slot, the dropped one included: it must not go out.
    for (let i = 0; i < 4; i++) s.reply(i, Buffer.from([0x40 + i]));
    addon.send(s.handle, n);
    const replies = await c.waitFor(3);
    await sleep(50);
    t.same(replies.map((r) => r[0]).sort(), [0x40, 0x42, 0x43], 'every datagram but the empty one answered');
    const st = addon.stats(s.handle);
    t.equal(st.received, 4);
    t.equal(st.large, 2);
    t.equal(st.dropOversize, 0);
    t.equal(st.dropEmpty, 1);
    t.equal(st.sent, 3);
    t.equal(st.batches, 1);
  });

  t.test('a blocking wildcard socket replies from the address asked', async (t) => {
    const s = openBlocking(addon, { host: '0.0.0.0' });
    t.teardown(s.close);
    // Bound to 127.0.0.1, asking 127.0.0.2: left to itself the kernel would reply from 127.0.0.1.
    const socket = dgram.createSocket('udp4');
    t.teardown(() => socket.close());
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const sources: string[] = [];
    socket.on('message', (_m, rinfo) => sources.push(rinfo.address));
    socket.send(Buffer.from('q'), s.port, '127.0.0.2');
    t.ok(await queued(addon, s.handle));
    const n = addon.receive(s.handle);
    t.equal(n, 1);
    t.equal(s.local(0), '127.0.0.2', 'meta holds the address asked');
    s.echo(n);
    addon.send(s.handle, n);
    const start = Date.now();
    while (sources.length < 1 && Date.now() - start < 3000) await sleep(5);
    t.same(sources, ['127.0.0.2'], 'the reply came from 127.0.0.2');
  });

  t.test('reply lengths out of 1..slot are counted (dropBadReply) and not sent', async (t) => {
    const s = openBlocking(addon, { slot: 2048 });
    t.teardown(s.close);
    const c = await client();
    t.teardown(c.close);
    for (let i = 0; i < 4; i++) await c.send(Buffer.from([i]), s.port);
    t.ok(await queued(addon, s.handle));
    const n = addon.receive(s.handle);
    t.equal(n, 4);
    s.echo(n);
    s.meta[0 * META_WORDS + M_OUT_LEN] = -1;
    s.meta[1 * META_WORDS + M_OUT_LEN] = 2049;
    s.meta[2 * META_WORDS + M_OUT_LEN] = 0x7fffffff;
    s.meta[3 * META_WORDS + M_OUT_LEN] = 2048; // exactly a slot: valid
    addon.send(s.handle, n);
    const replies = await c.waitFor(1);
    await sleep(50);
    t.equal(replies.length, 1, 'only the valid reply went out');
    t.equal(replies[0].length, 2048);
    t.equal(replies[0][0], 4);
    const st = addon.stats(s.handle);
    t.equal(st.dropBadReply, 3);
    t.equal(st.sent, 1);
  });

  t.test('send(): count cut to what the last receive() filled; a batch is sent once', async (t) => {
    const s = openBlocking(addon, { batch: 8 });
    t.teardown(s.close);
    const c = await client();
    t.teardown(c.close);
    // A full first batch: every slot then holds a real sender address (the client's), so a reply
    // from a slot beyond a later, smaller batch WOULD reach the client if send() did not cut.
    for (let i = 0; i < 8; i++) await c.send(Buffer.from([0x30 + i]), s.port);
    t.ok(await queued(addon, s.handle));
    t.equal(addon.receive(s.handle), 8);
    s.echo(8);
    addon.send(s.handle, 8);
    t.equal((await c.waitFor(8)).length, 8, 'first batch answered');

    await c.send(Buffer.from('a'), s.port);
    await c.send(Buffer.from('b'), s.port);
    t.ok(await queued(addon, s.handle));
    const n = addon.receive(s.handle);
    t.equal(n, 2);
    s.echo(n);
    // Slots 2..7 still look like answered datagrams from the first batch; made explicit here.
    for (let i = 2; i < 8; i++) {
      s.meta[i * META_WORDS + M_IN_LEN] = 1;
      s.reply(i, Buffer.from('stale'));
    }
    addon.send(s.handle, 1000);
    const replies = await c.waitFor(10);
    await sleep(50);
    t.same(replies.slice(8).map(String).sort(), ['b', 'c'], 'the two received datagrams were answered');
    t.equal(replies.length, 10, 'nothing past the received slots');
    t.equal(addon.stats(s.handle).sent, 10);
    t.equal(addon.stats(s.handle).sendErrors, 0);
    addon.send(s.handle, 2);
    addon.send(s.handle, 2);
    await sleep(50);
    t.equal(replies.length, 10, 'a second send() of the same batch sends nothing');
    t.equal(addon.stats(s.handle).sent, 10);

    // Replies left from a batch that was never sent do not go out after a receive() timed out.
    await c.send(Buffer.from('x'), s.port);
    t.ok(await queued(addon, s.handle));
    t.equal(addon.receive(s.handle), 1);
    s.echo(1);
    t.equal(addon.receive(s.handle), 0, 'timed out');
    addon.send(s.handle, 1);
    await sleep(50);
    t.equal(replies.length, 10, 'nothing sent for a receive() that filled nothing');
    t.equal(addon.stats(s.handle).sent, 10);
    t.equal(addon.stats(s.handle).dropBadReply, 0);
  });

  t.test('faultSendEagain: a full send buffer drops the rest of the batch, counted', async (t) => {
    const s = openBlocking(addon, { faultSendEagain: 1 });
    t.teardown(s.close);
    const c = await client();
    t.teardown(c.close);
    for (let i = 0; i < 3; i++) await c.send(Buffer.from([i]), s.port);
    t.ok(await queued(addon, s.handle));
    const n = addon.receive(s.handle);
    t.equal(n, 3);
    s.echo(n);
    addon.send(s.handle, n);
    await sleep(50);
    t.equal(c.replies.length, 0, 'nothing sent');
    let st = addon.stats(s.handle);
    t.equal(st.sendEagain, 1);
    t.equal(st.dropSendQueue, 3, 'the whole batch dropped');
    t.equal(st.sent, 0);
    t.equal(st.sendErrors, 0);
    // The fault is used up: the next batch goes out.
    await c.send(Buffer.from([9]), s.port);
    t.ok(await queued(addon, s.handle));
    t.equal(addon.receive(s.handle), 1);
    s.echo(1);
    addon.send(s.handle, 1);
    const replies = await c.waitFor(1);
    t.same(replies.map((r) => r[0]), [10]);
    st = addon.stats(s.handle);
    t.equal(st.sendEagain, 1);
    t.equal(st.dropSendQueue, 3);
    t.equal(st.sent, 1);
  });

  t.test('waitAny(): the socket with data, the scan from `start`, -1 on timeout', async (t) => {
    const a = openBlocking(addon);
    t.teardown(a.close);
    const b = openBlocking(addon);
    t.teardown(b.close);
    const handles = [a.handle, b.handle];
    const c = await client();
    t.teardown(c.close);

    let start = performance.now();
    t.equal(addon.waitAny(handles, 100, 0), -1, 'nothing queued: -1');
    const elapsed = performance.now() - start;
    t.ok(elapsed >= 50 && elapsed < 1000, `after about timeoutMs (${elapsed.toFixed(1)} ms)`);
    start = performance.now();
    t.equal(addon.waitAny(handles, 0, 0), -1, 'timeoutMs 0: a poll');
    t.ok(performance.now() - start < 100);

    await c.send(Buffer.from('to b'), b.port);
    t.ok(await queued(addon, b.handle));
    t.equal(addon.waitAny(handles, 1000, 0), 1, 'b has data');
    t.equal(addon.waitAny(handles, 1000, 1), 1);
    t.equal(addon.waitAny([b.handle], 1000, 0), 0, 'a single handle');

    await c.send(Buffer.from('to a'), a.port);
    t.ok(await queued(addon, a.handle));
    t.equal(addon.waitAny(handles, 1000, 0), 0, 'both have data: the scan starts at 0');
    t.equal(addon.waitAny(handles, 1000, 1), 1, 'both have data: the scan starts at 1');
    t.equal(addon.waitAny(handles, 1000, 2), 0, 'start wraps around');
    t.equal(addon.waitAny(handles, 1000, 3), 1);

    t.equal(addon.receive(a.handle), 1, 'receive() on the handle returned');
    t.equal(a.input(0).toString(), 'to a');
    t.equal(addon.waitAny(handles, 1000, 0), 1, 'only b left');
    t.equal(addon.receive(b.handle), 1);
    t.equal(b.input(0).toString(), 'to b');
    t.equal(addon.waitAny(handles, 30, 1), -1, 'all drained: -1');

    // A closed handle is ignored (its fd is gone), the others still count.
    a.close();
    await c.send(Buffer.from('b again'), b.port);
    t.ok(await queued(addon, b.handle));
    t.equal(addon.waitAny(handles, 1000, 0), 1);
    t.equal(addon.waitAny([a.handle], 20, 0), -1, 'only a closed handle: -1 after the timeout');
  });

  t.test('waitAny(): a `start` near 2^32 still scans every handle', async (t) => {
    const socks = [openBlocking(addon), openBlocking(addon), openBlocking(addon)];
    for (const s of socks) t.teardown(s.close);
    const c = await client();
    t.teardown(c.close);
    await c.send(Buffer.from('x'), socks[2].port);
    t.ok(await queued(addon, socks[2].handle));
    const handles = socks.map((s) => s.handle);
    t.equal(addon.waitAny(handles, 1000, 0xfffffffe), 2, 'start 2^32 - 2');
    // start is reduced modulo count first: (start + k) in uint32 would wrap and skip index 2.
    t.equal(addon.waitAny(handles, 1000, 0xffffffff), 2, 'start 2^32 - 1 (a JavaScript -1 converts to it)');
    t.equal(addon.waitAny(handles, 1000, -1), 2, 'start -1');
  });

  t.test('close(): receive() returns -1, close twice is harmless, stats still readable', async (t) => {
    const s = openBlocking(addon);
    const c = await client();
    t.teardown(c.close);
    await c.send(Buffer.from('q'), s.port);
    t.ok(await queued(addon, s.handle));
    t.equal(addon.receive(s.handle), 1);
    s.echo(1);
    s.close();
    s.close();
    t.equal(addon.receive(s.handle), -1, 'closed: -1');
    t.equal(addon.receive(s.handle), -1, 'and again');
    addon.send(s.handle, 1); // closed: a no-op, no throw
    await sleep(30);
    t.equal(c.replies.length, 0, 'nothing sent after close');
    const st = addon.stats(s.handle);
    t.equal(st.received, 1);
    t.equal(st.sent, 0);
    t.equal(await exclusiveBind(s.port), null, 'the fd is closed: the port binds without SO_REUSEPORT');
  });

  t.test('a detached buffer: receive() returns -1 (counted) instead of touching freed memory', async (t) => {
    const s = openBlocking(addon);
    t.teardown(s.close);
    structuredClone(s.buffer, { transfer: [s.buffer] });
    t.equal(addon.receive(s.handle), -1);
    t.equal(addon.stats(s.handle).bufferErrors, 1);
  });

  t.test('argument validation', async (t) => {
    const buffer = new ArrayBuffer(sharedBufferBytes(64, 2048));
    t.throws(() => addon.openBlocking({ host: '127.0.0.1', port: 0, receiveTimeoutMs: 0 }, buffer), { name: 'RangeError', code: 'ERANGE' }, 'receiveTimeoutMs 0');
    t.throws(() => addon.openBlocking({ host: '127.0.0.1', port: 0, sendTimeoutMs: 0 }, buffer), { name: 'RangeError', code: 'ERANGE' }, 'sendTimeoutMs 0 (SO_SNDTIMEO 0 would wait forever)');
    t.throws(() => addon.openBlocking({ host: '127.0.0.1', port: 0, batch: 64, slot: 2048 }, new ArrayBuffer(1000)), { code: 'ERANGE' }, 'buffer too small');
    t.throws(() => addon.openBlocking({ host: 'localhost', port: 0 }, buffer), { code: 'EINVAL' }, 'numeric host only');
    t.throws(() => (addon.openBlocking as any)({ host: '127.0.0.1', port: 0 }), { name: 'TypeError', code: 'EINVAL' }, 'no buffer');
    t.throws(() => addon.openBlocking({ host: '127.0.0.1', port: 70000 }, buffer), { code: 'ERANGE' });
    // serve --udp-spin checks MAX_SPIN_MICROS before it starts threads: the addon's limit is the same.
    t.throws(() => addon.openBlocking({ host: '127.0.0.1', port: 0, spinMicros: MAX_SPIN_MICROS + 1 }, buffer), { name: 'RangeError', code: 'ERANGE' }, 'spinMicros above 1000');
    t.throws(() => addon.open({ host: '127.0.0.1', port: 0, batch: 8, slot: 2048, spinMicros: 50 } as never, new ArrayBuffer(sharedBufferBytes(8, 2048)), () => {}), { name: 'RangeError', code: 'ERANGE' }, 'spinMicros on an event-loop socket');
    addon.close(addon.openBlocking({ host: '127.0.0.1', port: 0, spinMicros: MAX_SPIN_MICROS }, buffer).handle);

    // A non-blocking (event-loop) handle is refused by the blocking calls.
    const nb = addon.open({ host: '127.0.0.1', port: 0, batch: 8, slot: 2048 }, new ArrayBuffer(sharedBufferBytes(8, 2048)), () => {});
    t.teardown(() => addon.close(nb.handle));
    t.throws(() => addon.receive(nb.handle), { name: 'TypeError', code: 'EINVAL' }, 'receive(non-blocking handle)');
    t.throws(() => addon.send(nb.handle, 1), { name: 'TypeError', code: 'EINVAL' }, 'send(non-blocking handle)');
    t.throws(() => addon.waitAny([nb.handle], 0, 0), { name: 'TypeError', code: 'EINVAL' }, 'waitAny(non-blocking handle)');

    const s = openBlocking(addon);
    t.teardown(s.close);
    t.throws(() => addon.waitAny([], 0, 0), { name: 'TypeError', code: 'EINVAL' }, 'waitAny with an empty array');
    t.throws(() => addon.waitAny(Array(65).fill(s.handle), 0, 0), { name: 'TypeError', code: 'EINVAL' }, 'more than 64 handles');
    t.equal(addon.waitAny(Array(64).fill(s.handle), 0, 0), -1, '64 handles are fine');
    t.throws(() => addon.waitAny([s.handle, {}], 0, 0), { name: 'TypeError', code: 'EINVAL' }, 'not a handle in the array');
    t.throws(() => (addon.waitAny as any)(s.handle, 0, 0), { name: 'TypeError', code: 'EINVAL' }, 'not an array');
    t.throws(() => (addon.waitAny as any)([s.handle], 'soon', 0), { name: 'TypeError', code: 'EINVAL' }, 'timeoutMs not a number');
    t.throws(() => (addon.waitAny as any)([s.handle], 0), { name: 'TypeError', code: 'EINVAL' }, 'start missing');
    t.throws(() => addon.receive({}), { name: 'TypeError', code: 'EINVAL' }, 'receive({})');
    t.throws(() => (addon.receive as any)(), { name: 'TypeError', code: 'EINVAL' }, 'receive()');
    t.throws(() => (addon.send as any)(s.handle), { name: 'TypeError', code: 'EINVAL' }, 'send without a count');
    t.throws(() => (addon.send as any)(s.handle, 'all'), { name: 'TypeError', code: 'EINVAL' }, 'send with a non-number count');
    t.same(Object.keys(addon.stats(s.handle)).sort(), Object.keys(addon.stats(nb.handle)).sort(), 'stats() on a blocking handle');
  });

  t.test('a worker thread serves in its own blocking loop and stops on its mailbox', async (t) => {
    const w = startWorker('close', 50);
    t.teardown(() => w.worker.terminate());
    const ready = await w.waitMessage('ready');
    t.ok(ready, 'the thread opened its socket');
    if (!ready) return;
    const port: number = ready.port;
    t.equal(await exclusiveBind(port), 'EADDRINUSE', 'while it serves, the port is taken');

    const c = await client();
    t.teardown(c.close);
    const N = 20;
    for (let i = 0; i < N; i++) await c.send(Buffer.from([0x20, i]), port);
    const replies = await c.waitFor(N);
    t.equal(replies.length, N, 'every query answered by the thread');
    t.same(replies.map((r) => r[1]).sort((x, y) => x - y), [...Array(N).keys()]);
    t.ok(replies.every((r) => r[0] === 0x21));

    // Idle: the loop keeps waking up every receiveTimeoutMs (so it would see its mailbox).
    const idleStart = Date.now();
    while (Atomics.load(w.wakeups, 0) < 2 && Date.now() - idleStart < 5000) await sleep(10);
    t.ok(Atomics.load(w.wakeups, 0) >= 2, 'receive() timed out while idle, the loop went on');

    const stopAt = Date.now();
    w.port1.postMessage('stop');
    const done = await w.waitMessage('done');
    const code = await w.exited;
    t.equal(code, 0, 'the thread ended by itself');
    t.ok(Date.now() - stopAt < 5000, 'stop seen within a few receive timeouts');
    t.same(w.errors, []);
    t.equal(done?.stats.received, N);
    t.equal(done?.stats.sent, N);
    t.equal(done?.afterClose, -1, 'receive() after close() in the thread: -1');
    w.port1.close();
    t.equal(await exclusiveBind(port), null, 'the fd is closed: the port binds without SO_REUSEPORT');
  });

  t.test('a worker thread that ends without close(), or is terminated in receive(): fd closed', async (t) => {
    for (const mode of ['abandon', 'forever'] as const) {
      const w = startWorker(mode, 50);
      const ready = await w.waitMessage('ready');
      t.ok(ready, `${mode}: ready`);
      if (!ready) {
        await w.worker.terminate();
        continue;
      }
      const c = await client();
      await c.send(Buffer.from('z'), ready.port);
      t.equal((await c.waitFor(1)).length, 1, `${mode}: answered`);
      c.close();
      if (mode === 'abandon') {
        w.port1.postMessage('stop');
        t.equal(await w.exited, 0, 'abandon: the thread ended by itself');
        t.equal((await w.waitMessage('done'))?.stats.sent, 1);
      } else {
        await w.worker.terminate(); // lands when receive() returns to JavaScript
        await w.exited;
      }
      w.port1.close();
      t.same(w.errors, [], `${mode}: no error`);
      t.equal(await exclusiveBind(ready.port), null, `${mode}: the environment teardown closed the fd`);
    }
  });

  t.test('a process whose worker thread held a blocking socket exits by itself', async (t) => {
    // Everything as a separate process: the test is that it exits (status 0) without help.
    const script = `
      const { Worker, MessageChannel } = require('node:worker_threads');
      const dgram = require('node:dgram');
      const { port1, port2 } = new MessageChannel();
      const w = new Worker(${JSON.stringify(WORKER_SOURCE)}, { eval: true, transferList: [port2],
        workerData: { addonFile: ${JSON.stringify(ADDON_FILE)}, batch: 8, slot: 2048, mode: process.argv[1], mailbox: port2, wakeups: new SharedArrayBuffer(4), receiveTimeoutMs: 50 } });
      port1.on('message', (m) => {
        if (m.type === 'ready') {
          const c = dgram.createSocket('udp4');
          c.on('message', () => { c.close(); port1.postMessage('stop'); });
          c.send('q', m.port, '127.0.0.1');
        } else if (m.type === 'done') {
          console.log(JSON.stringify({ sent: m.stats.sent }));
          port1.close();
        }
      });
    `;
    for (const mode of ['close', 'abandon']) {
      const r = spawnSync(process.execPath, ['-e', script, mode], { encoding: 'utf8', timeout: 10_000 });
      t.equal(r.signal, null, `${mode}: not killed (by the 10 s timeout or a crash)`);
      t.equal(r.status, 0, `${mode}: exit status 0 ${r.stderr}`);
      t.same(JSON.parse(r.stdout.trim() || '{}'), { sent: 1 }, `${mode}: the query was answered`);
    }
  });
}

// Last: the first subtest starts synchronously, so every constant above must be initialized.
const loaded = loadAddon();
if (typeof loaded === 'string') {
  if (process.env.SITEDNS_REQUIRE_ADDON === '1') t.fail(`SITEDNS_REQUIRE_ADDON=1 but ${loaded}`);
  else t.skip(loaded, () => {});
} else {
  run(loaded);
}
