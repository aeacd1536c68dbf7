/**
 * Every UDP path end to end on a wildcard listen address, real sockets:
 * - a reply leaves from the address its query was sent to (RFC 1122 §4.1.3.5), so a resolver
 *   that connect()s to 127.0.0.2 gets it (the kernel drops a reply from any other address);
 * - a query of any length up to the UDP maximum gets an answer (EDNS Padding, RFC 7830, makes
 *   valid queries of 2,049 and 65,000 bytes).
 * Paths: node:dgram (one socket per local address), the batched addon on the event loop, and
 * `--udp-threads 2`. The addon paths are skipped where it is not built, unless
 * SITEDNS_REQUIRE_ADDON=1 (CI sets it).
 */
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import os from 'node:os';
import { batchedUnavailable } from '../../src/server/udp-batched.js';
import { udpThreadsUnavailable } from '../../src/server/udp-threads.js';
import { decode, query } from '../helpers/dns.js';
import { spawn } from 'node:child_process';
import { followJsonLines } from '../helpers/json-lines.js';
import { CLI } from '../helpers/net.js';

/** An EDNS query for app.example.com padded (RFC 7830 option 12) to exactly `size` bytes. */
function paddedQuery(size: number, id: number): Buffer {
  const bare = query('app.example.com', 'A', { id, edns: { udpSize: 1232 } });
  const padding = Buffer.alloc(size - bare.length);
  padding.writeUInt16BE(12, 0);
  padding.writeUInt16BE(padding.length - 4, 2);
  return query('app.example.com', 'A', { id, edns: { udpSize: 1232, options: padding } });
}

/**
 * Sends `packet` from a socket bound to `from` and connect()ed to `to`:port, as a resolver does;
 * the reply and the address it came from, or null after the timeout.
 */
async function askConnected(to: string, port: number, packet: Buffer, from: string, timeoutMs = 3000): Promise<{ reply: Buffer; source: string } | null> {
  const socket = dgram.createSocket(to.includes(':') ? 'udp6' : 'udp4');
  try {
    socket.bind(0, from);
    await once(socket, 'listening');
    socket.connect(port, to);
    await once(socket, 'connect');
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      socket.once('error', () => {
        clearTimeout(timer);
        resolve(null); // ECONNREFUSED: nothing listens on that address
      });
      socket.once('message', (reply, rinfo) => {
        clearTimeout(timer);
        resolve({ reply, source: rinfo.address });
      });
      socket.send(packet);
    });
  } finally {
    socket.close();
  }
}

/** An address of this host besides loopback and link-local ones (to ask from loopback), or null. */
function otherAddress(family: 'IPv4' | 'IPv6'): string | null {
  const all = Object.values(os.networkInterfaces()).flat();
  return all.find((a) => a !== undefined && a.family === family && !a.internal && !/^fe[89ab]/i.test(a.address))?.address ?? null;
}

const PATHS: { name: string; args: string[]; env: NodeJS.ProcessEnv; unavailable: string | null }[] = [
  { name: '--udp-path dgram', args: ['--udp-path', 'dgram'], env: { SITEDNS_UDP_PATH: 'dgram' }, unavailable: null },
  { name: '--udp-path batched', args: ['--udp-path', 'batched'], env: { SITEDNS_UDP_PATH: 'batched' }, unavailable: batchedUnavailable() },
  { name: '--udp-threads 2', args: ['--udp-threads', '2'], env: {}, unavailable: udpThreadsUnavailable() },
];

const v4 = otherAddress('IPv4');
const v6 = otherAddress('IPv6');

for (const path of PATHS) {
  t.test(`serve --listen 0.0.0.0${v6 ? ' and [::]' : ''} ${path.name}`, async (t) => {
    if (path.unavailable !== null) {
      if (process.env.SITEDNS_REQUIRE_ADDON === '1') t.fail(`SITEDNS_REQUIRE_ADDON=1 but ${path.unavailable}`);
      else t.skip(path.unavailable);
      return;
    }
    const listen = ['--listen', '0.0.0.0:0', ...(v6 ? ['--listen', '[::]:0'] : [])];
    // Stopped whatever happens, and given a minute to start (UDP threads compile the zones first).
    const proc = spawn(process.execPath, [CLI, 'serve', '--zones', 'zones/', ...listen, '--http', 'off', ...path.args], { env: { ...process.env, SITEDNS_UDP_THREADS: '0', ...path.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => void proc.kill('SIGKILL'));
    const server = { logs: followJsonLines(proc, 60_000) };
    for (const address of v6 ? ['0.0.0.0', '::'] : ['0.0.0.0']) await server.logs.waitFor((l) => l.msg === 'listening on UDP and TCP' && l.address === address);
    const portOf = (address: string) => server.logs.lines.find((l) => l.msg === 'listening on UDP and TCP' && l.address === address).port as number;
    const port4 = portOf('0.0.0.0');

    const dgramPath = path.name === '--udp-path dgram';
    const asked = await askConnected('127.0.0.2', port4, query('app.example.com', 'A', { id: 7 }), '127.0.0.1');
    if (dgramPath) {
      // 127.0.0.2 is in lo's 127.0.0.0/8 route but is no interface address: no socket of its own.
      t.equal(asked, null, '127.0.0.2 (not an interface address): no reply, rather than one from 127.0.0.1');
    } else {
      t.ok(asked !== null, 'a client connect()ed to 127.0.0.2 got its reply');
      t.equal(asked?.source, '127.0.0.2', 'the reply came from 127.0.0.2, the address asked');
      t.equal(asked && decode(asked.reply).rcode, 0);
    }
    if (v4 !== null) {
      const other = await askConnected(v4, port4, query('app.example.com', 'A', { id: 6 }), '127.0.0.1');
      t.equal(other?.source, v4, `a query from 127.0.0.1 to ${v4} was answered from ${v4}`);
    }
    const loopback = await askConnected('127.0.0.1', port4, query('app.example.com', 'A', { id: 8 }), '127.0.0.1');
    t.equal(loopback?.source, '127.0.0.1', 'and a query to 127.0.0.1 from 127.0.0.1');

    for (const size of [2049, 65_000]) {
      const packet = paddedQuery(size, size & 0xffff);
      t.equal(packet.length, size);
      const answered = await askConnected('127.0.0.1', port4, packet, '127.0.0.1');
      t.ok(answered !== null, `a ${size}-byte EDNS query got an answer`);
      t.equal(answered && decode(answered.reply).rcode, 0, `${size} bytes: NOERROR`);
      t.equal(answered && decode(answered.reply).id, size & 0xffff, `${size} bytes: its own reply`);
    }

    if (v6) {
      const port6 = portOf('::');
      const six = await askConnected(v6, port6, query('app.example.com', 'AAAA', { id: 9 }), '::1');
      t.equal(six?.source, v6, `IPv6: the reply to a query from ::1 to ${v6} came from ${v6}`);
    }

    if (dgramPath) {
      const warning = server.logs.lines.find((l) => l.msg?.startsWith('UDP on a wildcard address without the addon'));
      t.ok(warning, 'the start says that addresses added later are not served');
      t.ok(warning?.boundAddresses.includes('127.0.0.1') && !warning?.boundAddresses.includes('0.0.0.0'), `one socket per local address: ${warning?.boundAddresses}`);
    } else {
      t.notOk(server.logs.lines.some((l) => l.msg?.startsWith('UDP on a wildcard address without the addon')), 'the addon paths need no socket per address');
    }
  });
}
