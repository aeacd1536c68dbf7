/**
 * A site's web server for the closed-loop balance run: its load is the number of sessions open on
 * it right now. `GET /session?ms=N` is one session, held open N ms; `GET /health` answers
 * `{"load": <open sessions>}`, the body a site's `probe: { http, load: load }` reads (docs/zones.md).
 */
import http from 'node:http';

export class SiteBackend {
  /** @param {{ id: string, host: string, port: number, capacity: number }} site */
  constructor(site) {
    Object.assign(this, site);
    /** Sessions open now. */
    this.open = 0;
    this.sockets = new Set();
    this.server = null;
  }

  /** Starts (or restarts, on the same address and port) with no session open. */
  listen() {
    const server = http.createServer((req, res) => {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
        res.end(`{"load": ${this.open}}`);
        return;
      }
      const ms = Number(/^\/session\?ms=(\d+)$/.exec(req.url ?? '')?.[1]);
      if (!Number.isFinite(ms)) {
        res.writeHead(404, { connection: 'close' }).end();
        return;
      }
      this.open++;
      const timer = setTimeout(() => res.end('done'), ms);
      res.once('close', () => {
        clearTimeout(timer);
        this.open--;
      });
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
      res.flushHeaders();
    });
    server.keepAliveTimeout = 0;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
  }

  /** Stops like a crashed server: every session is cut, new connections are refused. */
  async kill() {
    const server = this.server;
    this.server = null;
    const closed = new Promise((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
