// The attacker of bench/tcp-flood/run.mjs: keeps `slots` TCP connections to a DNS server open
// from `sources` loopback addresses (slot i uses source i % sources), each sending one query and
// then sitting idle. A connection the server closes is opened again after `reconnectMs`, so the
// server's table stays as full as the attacker can keep it. Runs in its own process so that it
// gets a raised fd limit.
//
//   node bench/tcp-flood/attacker.mjs <port> <slots> <sources> <one|spread> <reconnectMs>
//
// one: the sources are 127.0.1.1, 127.0.1.2, ... (one /24); spread: 127.1.0.1, 127.2.0.1, ...
// (each its own /24). Prints {"open":n,"opened":a,"closed":c} every second until it is stopped.
import net from 'node:net';
import { dnsQuery } from '../qps/lib.mjs';

const [port, slots, sources, layout, reconnectMs] = process.argv.slice(2);
const sourceCount = Number(sources);
const sourceOf = (i) => (layout === 'spread' ? `127.${1 + (i % sourceCount)}.0.1` : `127.0.1.${1 + (i % sourceCount)}`);
const query = dnsQuery(1, 'static.bench.test');
const frame = Buffer.concat([Buffer.from([0, query.length]), query]);
let open = 0;
let opened = 0;
let closed = 0;

function hold(i) {
  const socket = net.connect({ port: Number(port), host: '127.0.0.1', localAddress: sourceOf(i) });
  let counted = false;
  socket.on('connect', () => {
    counted = true;
    open++;
    opened++;
    socket.write(frame);
  });
  socket.on('data', () => {}); // its one answer, then idle
  socket.on('error', () => {});
  socket.on('close', () => {
    if (counted) {
      open--;
      closed++;
    }
    setTimeout(() => hold(i), Number(reconnectMs));
  });
}

for (let i = 0; i < Number(slots); i++) hold(i);
setInterval(() => console.log(JSON.stringify({ open, opened, closed })), 1000);
