// A health backend as its own process, so the bench can SIGKILL it like a dying server.
// Usage: node backend.mjs <host> <port> [dropRate]  (dropRate: fraction of probes left unanswered)
import http from 'node:http';
const [host, port, drop = '0'] = process.argv.slice(2);
const dropRate = Number(drop);
http
  .createServer((req, res) => {
    if (dropRate > 0 && Math.random() < dropRate) return; // silence: the probe times out
    res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
    res.end('{"load": 10}');
  })
  .listen(Number(port), host, () => process.stdout.write('ready\n'));
