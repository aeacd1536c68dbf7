/**
 * The batched UDP addon driven directly with a trivial echo callback: the C side's
 * filtering, bounds, backpressure and lifetime rules, independent of the DNS handler.
 * Skipped where the addon is not built, unless SITEDNS_REQUIRE_ADDON=1 (CI sets it).
 */
import t from 'tap';
import dgram from 'node:dgram';
import os from 'node:os';
import ipaddr from 'ipaddr.js';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { loadAddon, LAYOUT, sharedBufferBytes, type UdpBatchAddon } from '../../src/server/udp-batched.js';

const loaded = loadAddon();
if (typeof loaded === 'string') {
  if (process.env.SITEDNS_REQUIRE_ADDON === '1') t.fail(`SITEDNS_REQUIRE_ADDON=1 but ${loaded}`);
  else t.skip(loaded);
} else {
  run(loaded);
}

const { META_WORDS, M_IN_LEN, M_OUT_LEN, M_PORT, M_FAMILY, M_ADDR, M_LOCAL, M_IFINDEX, MAX_DATAGRAM } = LAYOUT;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Echo {
  port: number;
  handle: object;
  calls: number[];
  seen: { family: number; port: number; addr: string; len: number }[];
  close(): void;
}

/**
 * Opens an addon socket whose callback echoes each datagram with its first byte incremented
 * (so a reply is distinguishable from the query), or runs `custom` instead.
 */
function openEcho(addon: UdpBatchAddon, opts: { host?: string; port?: number; batch?: number; slot?: number; sendTimeoutMs?: number; sendRetries?: number; faultSendEagain?: number; reusePort?: number } = {}, custom?: (n: number, meta: Int32Array, u8: Uint8Array) => void): Echo & { buffer: ArrayBuffer } {
  const batch = opts.batch ?? 8;
  const slot = opts.slot ?? 2048;
  const buffer = new ArrayBuffer(sharedBufferBytes(batch, slot));
  const meta = new Int32Array(buffer, 0, batch * META_WORDS);
  const u8 = new Uint8Array(buffer);
  const inBase = batch * META_WORDS * 4;
  const outBase = inBase + batch * slot;
  const calls: number[] = [];
  const seen: Echo['seen'] = [];
  const onBatch = (n: number) => {
    calls.push(n);
    if (custom) return custom(n, meta, u8);
    for (let i = 0; i < n; i++) {
      const m = i * META_WORDS;
      const len = meta[m + M_IN_LEN];
      if (len === 0) continue;
      const fam = meta[m + M_FAMILY];
      const a = u8.subarray((m + M_ADDR) * 4, (m + M_ADDR) * 4 + (fam === 4 ? 4 : 16));
      seen.push({ family: fam, port: meta[m + M_PORT], addr: Array.from(a).join('.'), len });
      u8.copyWithin(outBase + i * slot, inBase + i * slot, inBase + i * slot + len);
      u8[outBase + i * slot] = (u8[outBase + i * slot] + 1) & 0xff;
      meta[m + M_OUT_LEN] = len;
    }
  };
  const { handle, port } = addon.open({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, batch, slot, sendTimeoutMs: opts.sendTimeoutMs, sendRetries: opts.sendRetries, faultSendEagain: opts.faultSendEagain, reusePort: opts.reusePort }, buffer, onBatch);
  return { port, handle, calls, seen, buffer, close: () => addon.close(handle) };
}

/** A client socket that collects replies. */
async function client(family: 4 | 6 = 4) {
  const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  socket.bind(0, family === 4 ? '127.0.0.1' : '::1');
  await once(socket, 'listening');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  return {
    socket,
    replies,
    port: socket.address().port,
    send: (data: Buffer, port: number) => new Promise<void>((resolve, reject) => socket.send(data, port, family === 4 ? '127.0.0.1' : '::1', (e) => (e ? reject(e) : resolve()))),
    async waitFor(n: number, ms = 3000) {
      const start = Date.now();
      while (replies.length < n && Date.now() - start < ms) await sleep(5);
      return replies;
    },
    close: () => socket.close(),
  };
}

function run(addon: UdpBatchAddon): void {
  t.test('layout constants match the TypeScript mirror', async (t) => {
    const c = addon.constants();
    for (const [k, v] of Object.entries(LAYOUT)) t.equal(c[k as keyof typeof c], v, k);
  });

  t.test('echo: many datagrams, batched, each answered to its own source', async (t) => {
    const echo = openEcho(addon, { batch: 8 });
    t.teardown(echo.close);
    const c = await client();
    t.teardown(c.close);
    const N = 200;
    for (let i = 0; i < N; i++) c.socket.send(Buffer.from([0x10, i & 0xff, i >> 8, 0x55]), echo.port, '127.0.0.1');
    const replies = await c.waitFor(N);
    t.equal(replies.length, N, 'every datagram answered');
    t.ok(replies.every((r) => r.length === 4 && r[0] === 0x11 && r[3] === 0x55), 'echoed with the patch');
    t.ok(Math.max(...echo.calls) <= 8, 'never more than a batch per call');
    t.ok(echo.seen.every((s) => s.family === 4 && s.port === c.port && s.addr === '127.0.0.1' && s.len === 4), 'source address and port kept per datagram');
    const st = addon.stats(echo.handle);
    t.equal(st.received, N);
    t.equal(st.sent, N);
    t.equal(st.batches, echo.calls.length);
  });

  t.test('IPv6: binds ::1 and keeps the 16-byte source', async (t) => {
    let echo;
    try {
      echo = openEcho(addon, { host: '::1' });
    } catch (error) {
      t.skip(`no IPv6 loopback here: ${(error as Error).message}`);
      return;
    }
    t.teardown(echo.close);
    const c = await client(6);
    t.teardown(c.close);
    await c.send(Buffer.from('abc'), echo.port);
    const [reply] = await c.waitFor(1);
    t.equal(reply.toString(), 'bbc');
    t.equal(echo.seen[0].family, 6);
    t.equal(echo.seen[0].addr, '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1');
    t.equal(echo.seen[0].port, c.port);
  });

  t.test('SO_REUSEPORT: a second socket binds the same port (one per UDP thread)', async (t) => {
    const a = openEcho(addon);
    t.teardown(a.close);
    const b = openEcho(addon, { port: a.port });
    t.teardown(b.close);
    t.equal(b.port, a.port);
    t.throws(() => openEcho(addon, { port: a.port, reusePort: 0 }), { code: 'EADDRINUSE' }, 'without it: EADDRINUSE, like dgram');
  });

  t.test('a datagram longer than a slot reaches JavaScript whole (slot, then its over part); empty ones are dropped in C', async (t) => {
    const batch = 4;
    const slot = 512;
    const inBase = batch * META_WORDS * 4;
    const overBase = inBase + 2 * batch * slot;
    const got: Buffer[] = [];
    // Replies with the datagram's length and a checksum of all its bytes, read from both areas.
    const echo = openEcho(addon, { batch, slot }, (n, meta, u8) => {
      for (let i = 0; i < n; i++) {
        const len = meta[i * META_WORDS + M_IN_LEN];
        if (len === 0) continue;
        const head = u8.subarray(inBase + i * slot, inBase + i * slot + Math.min(len, slot));
        const tail = u8.subarray(overBase + i * (MAX_DATAGRAM - slot), overBase + i * (MAX_DATAGRAM - slot) + Math.max(0, len - slot));
        const whole = Buffer.concat([head, tail]);
        got.push(whole);
        const out = Buffer.from(u8.buffer, inBase + batch * slot + i * slot, 8);
        out.writeUInt32BE(len, 0);
        out.writeUInt32BE(whole.reduce((sum, b, k) => (sum + b * (k + 1)) >>> 0, 0), 4);
        meta[i * META_WORDS + M_OUT_LEN] = 8;
      }
    });
    t.teardown(echo.close);
    const c = await client();
    t.teardown(c.close);
    const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, k) => (k * 7 + n) & 0xff));
    const sizes = [513, 2049, 65_000, MAX_DATAGRAM - 28 /* the largest over IPv4 */, 512];
    for (const n of sizes) await c.send(pattern(n), echo.port);
    await c.send(Buffer.alloc(0), echo.port);
    const replies = await c.waitFor(sizes.length);
    await sleep(50);
    t.same(replies.map((r) => r.readUInt32BE(0)).sort((a, b) => a - b), [...sizes].sort((a, b) => a - b), 'every datagram answered, whatever its length');
    for (const n of sizes) t.ok(got.some((g) => g.equals(pattern(n))), `${n} bytes reached JavaScript intact`);
    const st = addon.stats(echo.handle);
    t.equal(st.large, 4, 'datagrams longer than a slot counted as large');
    t.equal(st.dropOversize, 0, 'none truncated');
    t.equal(st.dropEmpty, 1);
  });

  /** The first IPv6 address of this host that is neither loopback nor link-local, or null. */
  const globalV6 = () => Object.values(os.networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv6' && !a.internal && !/^fe[89ab]/i.test(a.address))?.address ?? null;

  for (const [family, wildcard, asked, from] of [
    [4, '0.0.0.0', '127.0.0.2', '127.0.0.1'],
    [6, '::', globalV6(), '::1'],
  ] as const) {
    t.test(`a wildcard socket (${wildcard}) replies from the address asked (${asked}), not the one the kernel would pick`, async (t) => {
      if (asked === null) return t.skip('no IPv6 address besides ::1 and link-local ones here');
      let echo;
      try {
        echo = openEcho(addon, { host: wildcard });
      } catch (error) {
        return t.skip(`cannot bind ${wildcard}: ${(error as Error).message}`);
      }
      t.teardown(echo.close);
      const locals: { local: string; ifindex: number }[] = [];
      const meta = new Int32Array(echo.buffer, 0, 8 * META_WORDS);
      const u8 = new Uint8Array(echo.buffer);
      // The client is bound to `from`: a kernel choosing the source for it would pick `from`.
      const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
      t.teardown(() => socket.close());
      socket.bind(0, from);
      await once(socket, 'listening');
      const sources: string[] = [];
      socket.on('message', (_m, rinfo) => sources.push(rinfo.address));
      const before = echo.seen.length;
      socket.send(Buffer.from('q'), echo.port, asked);
      const start = Date.now();
      while (sources.length < 1 && Date.now() - start < 3000) await sleep(5);
      const m = 0; // the one datagram was in slot 0
      locals.push({ local: Array.from(u8.subarray((m + M_LOCAL) * 4, (m + M_LOCAL) * 4 + (family === 4 ? 4 : 16))).join('.'), ifindex: meta[m + M_IFINDEX] });
      t.equal(echo.seen.length - before, 1, 'the query reached JavaScript');
      t.same(sources, [asked], `the reply came from ${asked}`);
      t.equal(locals[0].local, ipaddr.parse(asked).toByteArray().join('.'), 'meta holds the address asked');
      t.ok(locals[0].ifindex > 0, `meta holds the interface it came in on (${locals[0].ifindex})`);
      t.equal(addon.stats(echo.handle).noPktinfo, 0);
    });
  }

  t.test('a socket bound to one address reports that address as the local one', async (t) => {
    const echo = openEcho(addon, { host: '127.0.0.1' });
    t.teardown(echo.close);
    const c = await client();
    t.teardown(c.close);
    await c.send(Buffer.from('x'), echo.port);
    await c.waitFor(1);
    const u8 = new Uint8Array(echo.buffer);
    t.same(Array.from(u8.subarray(M_LOCAL * 4, M_LOCAL * 4 + 4)), [127, 0, 0, 1]);
    t.equal(new Int32Array(echo.buffer)[M_IFINDEX], 0, 'no interface: no control messages on this socket');
  });

  t.test('a datagram from source port 0 is dropped in C (raw socket; root only)', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root for a raw socket');
    const echo = openEcho(addon);
    t.teardown(echo.close);
    // UDP header with source port 0 and no checksum (allowed for IPv4), sent via a raw socket.
    const py = `import socket,struct,sys\np=int(sys.argv[1]);d=b'port0'\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_UDP)\ns.sendto(struct.pack('!HHHH',0,p,8+len(d),0)+d,('127.0.0.1',0))\n`;
    const r = spawnSync('python3', ['-c', py, String(echo.port)], { encoding: 'utf8' });
    if (r.status !== 0) return t.skip(`raw socket unavailable: ${r.error?.message ?? r.stderr}`);
    const start = Date.now();
    while (addon.stats(echo.handle).received < 1 && Date.now() - start < 3000) await sleep(5);
    t.equal(addon.stats(echo.handle).dropPort0, 1, 'counted');
    t.same(echo.seen, [], 'JavaScript never saw it');
  });

  t.test('reply lengths from JavaScript are validated before they reach sendmmsg', async (t) => {
    const bad = [-1, 2049, 0x7fffffff, -0x80000000];
    let k = 0;
    const echo = openEcho(addon, { slot: 2048 }, (n, meta) => {
      for (let i = 0; i < n; i++) meta[i * META_WORDS + M_OUT_LEN] = bad[k++ % bad.length];
    });
    t.teardown(echo.close);
    const c = await client();
    t.teardown(c.close);
    for (let i = 0; i < bad.length; i++) await c.send(Buffer.from('x'), echo.port);
    const start = Date.now();
    while (addon.stats(echo.handle).dropBadReply < bad.length && Date.now() - start < 3000) await sleep(5);
    t.equal(addon.stats(echo.handle).dropBadReply, bad.length);
    t.equal(addon.stats(echo.handle).sent, 0);
    t.equal(c.replies.length, 0);
  });

  t.test('full send queue: EAGAIN is retried on writable', async (t) => {
    // A long timeout: only the writable retries are exercised, however loaded the machine is.
    const echo = openEcho(addon, { faultSendEagain: 3, sendTimeoutMs: 60_000 });
    t.teardown(echo.close);
    const c = await client();
    t.teardown(c.close);
    for (let i = 0; i < 5; i++) await c.send(Buffer.from([i]), echo.port);
    const replies = await c.waitFor(5);
    t.equal(replies.length, 5, 'all replies sent after the retries');
    const st = addon.stats(echo.handle);
    t.equal(st.sendEagain, 3);
    t.equal(st.dropSendQueue, 0);
  });

  for (const [how, opts] of [
    ['writable retries without progress', { sendTimeoutMs: 60_000, sendRetries: 8 }],
    ['the timeout (after one last attempt)', { sendTimeoutMs: 20, sendRetries: 1e9 }],
  ] as const) {
    t.test(`full send queue that persists, by ${how}: dropped and counted, then reading resumes`, async (t) => {
      const echo = openEcho(addon, { faultSendEagain: 2e9, ...opts });
      t.teardown(echo.close);
      const c = await client();
      t.teardown(c.close);
      await c.send(Buffer.from('a'), echo.port);
      const start = Date.now();
      while (addon.stats(echo.handle).dropSendQueue < 1 && Date.now() - start < 5000) await sleep(5);
      t.equal(addon.stats(echo.handle).dropSendQueue, 1, 'the queued reply was dropped');
      await c.send(Buffer.from('b'), echo.port);
      const start2 = Date.now();
      while (addon.stats(echo.handle).received < 2 && Date.now() - start2 < 5000) await sleep(5);
      t.equal(addon.stats(echo.handle).received, 2, 'reading resumed after the drop');
      t.equal(c.replies.length, 0);
    });
  }

  t.test('a throwing callback is counted; the socket keeps serving', async (t) => {
    let throwNext = true;
    const echo = openEcho(addon, {}, (n, meta, u8) => {
      if (throwNext) {
        throwNext = false;
        for (let i = 0; i < n; i++) meta[i * META_WORDS + M_OUT_LEN] = 1; // must NOT be sent
        throw new Error('boom');
      }
      const batch = 8;
      for (let i = 0; i < n; i++) {
        u8[batch * META_WORDS * 4 + batch * 2048 + i * 2048] = 0x42;
        meta[i * META_WORDS + M_OUT_LEN] = 1;
      }
    });
    t.teardown(echo.close);
    const c = await client();
    t.teardown(c.close);
    await c.send(Buffer.from('a'), echo.port);
    const start = Date.now();
    while (addon.stats(echo.handle).callbackErrors < 1 && Date.now() - start < 3000) await sleep(5);
    await c.send(Buffer.from('b'), echo.port);
    const replies = await c.waitFor(1);
    t.equal(addon.stats(echo.handle).callbackErrors, 1);
    t.same(replies.map((r) => r[0]), [0x42], 'only the second batch was answered');
  });

  t.test('a detached shared buffer stops reading instead of touching freed memory', async (t) => {
    const echo = openEcho(addon);
    t.teardown(echo.close);
    structuredClone(echo.buffer, { transfer: [echo.buffer] }); // detaches (and frees) it
    const c = await client();
    t.teardown(c.close);
    await c.send(Buffer.from('a'), echo.port);
    const start = Date.now();
    while (addon.stats(echo.handle).bufferErrors < 1 && Date.now() - start < 3000) await sleep(5);
    t.equal(addon.stats(echo.handle).bufferErrors, 1);
    t.same(echo.calls, [], 'no JavaScript call with a dead buffer');
  });

  t.test('close() from inside the callback, twice, and bad arguments', async (t) => {
    let echo: ReturnType<typeof openEcho> | undefined = undefined;
    echo = openEcho(addon, {}, () => {
      echo!.close();
      echo!.close();
    });
    const c = await client();
    t.teardown(c.close);
    await c.send(Buffer.from('a'), echo.port);
    await c.send(Buffer.from('b'), echo.port);
    await sleep(100);
    t.equal(echo.calls.length, 1, 'no call after close');
    t.throws(() => addon.close({}), { code: 'EINVAL' });
    t.throws(() => addon.open({ host: 'localhost', port: 0 }, new ArrayBuffer(1 << 20), () => {}), { code: 'EINVAL' }, 'numeric host only');
    t.throws(() => addon.open({ host: '127.0.0.1', port: 0, batch: 64, slot: 2048 }, new ArrayBuffer(1000), () => {}), { code: 'ERANGE' }, 'buffer too small');
    t.throws(() => addon.open({ host: '127.0.0.1', port: 70000 }, new ArrayBuffer(1 << 20), () => {}), { code: 'ERANGE' });
    t.throws(() => addon.open({ host: '127.0.0.1', port: 0, batch: 0 }, new ArrayBuffer(1 << 20), () => {}), { code: 'ERANGE' });
    t.throws(() => addon.open({ host: '127.0.0.1', port: 0, slot: 100 }, new ArrayBuffer(1 << 20), () => {}), { code: 'ERANGE' });
  });
}
