// Holds many idle TCP connections to a DNS server (loopback only), for the TCP abuse test and
// bench. Runs in its own process so that it can be given a raised fd limit (`ulimit -n`).
//
//   node bench/soak/hold-connections.mjs <port> <count> [sources=20] [mode=idle-after-query|silent]
//
// Each connection comes from 127.0.0.<10 + i % sources> (per-client caps apply per address).
// mode idle-after-query: send one query, read its answer, then sit idle (an RFC 7766 idle client);
// mode silent: connect and send nothing. Prints {"held":n,"failed":f} once all are set up, then
// answers each "count" line on stdin with {"open":k}; exits when stdin closes.
import net from 'node:net';
import readline from 'node:readline';

const [port, count, sources = '20', mode = 'idle-after-query'] = process.argv.slice(2);
const total = Number(count);
const q = Buffer.from('0000' + '0100' + '0001000000000000' + '046d61696c03617070076578616d706c6503636f6d00' + '00010001', 'hex');
const frame = Buffer.concat([Buffer.from([0, q.length]), q]);
const sockets = new Set();
let failed = 0;

function open(i) {
  return new Promise((resolve) => {
    const s = net.connect({ port: Number(port), host: '127.0.0.1', localAddress: `127.0.0.${10 + (i % Number(sources))}` });
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      if (ok) sockets.add(s);
      else failed++;
      resolve();
    };
    s.on('error', () => finish(false));
    s.on('close', () => {
      sockets.delete(s);
      finish(false);
    });
    s.on('connect', () => {
      if (mode === 'silent') return finish(true);
      q.writeUInt16BE(i & 0xffff, 0);
      frame.writeUInt16BE(i & 0xffff, 2);
      s.write(Buffer.from(frame));
    });
    s.on('data', () => finish(true));
  });
}

const batch = 200;
for (let i = 0; i < total; i += batch) {
  await Promise.all(Array.from({ length: Math.min(batch, total - i) }, (_, j) => open(i + j)));
}
console.log(JSON.stringify({ held: sockets.size, failed }));
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'count') console.log(JSON.stringify({ open: sockets.size }));
});
rl.on('close', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
