/**
 * Demo health endpoints for `npm start` (`serve --demo-backends`): one tiny HTTP server for every
 * site whose probe targets a loopback address (the sample zone's 127.0.0.1:18081-18083), each
 * answering `{"load": <n>}` with a load that drifts, so a newcomer sees real probes, real loads
 * and, after `sitedns demo stop boston`, a real failover.
 *
 * Control (admin listener): GET /v1/demo, POST /v1/demo/<site>/stop|start,
 * POST /v1/demo/<site>/load {"load": n} (a fixed load; {"load": null} drifts again).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminRouter } from '../admin/http.js';
import type { ZoneSet } from '../model/zone-model.js';
import { CodedError } from '../util/coded-error.js';
import type { Logger } from '../util/logger.js';

export interface DemoBackendInfo {
  readonly site: string;
  readonly address: string;
  readonly running: boolean;
  readonly load: number;
  readonly fixed: boolean;
}

function loopbackTarget(probe: { http?: string; https?: string; tcp?: string }): { host: string; port: number } | undefined {
  let host: string;
  let port: number;
  if (probe.http) {
    const u = new URL(probe.http);
    if (u.protocol !== 'http:') return undefined;
    host = u.hostname;
    port = Number(u.port || 80);
  } else if (probe.tcp) {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(probe.tcp);
    if (!m) return undefined;
    host = m[1] ?? m[2];
    port = Number(m[3]);
  } else return undefined;
  host = host.replace(/^\[|\]$/g, '');
  return host.startsWith('127.') || host === '::1' || host === 'localhost' ? { host, port } : undefined;
}

/** A demo backend could not listen on its probe's address (EDEMO_LISTEN). */
export class DemoBackendError extends CodedError<'EDEMO_LISTEN'> {
  constructor(message: string) {
    super('EDEMO_LISTEN', message);
  }
}

function listenFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EADDRINUSE' ? 'address already in use (EADDRINUSE)' : (error as Error).message;
}

export class DemoBackend {
  private server: http.Server | undefined;
  load: number;
  fixed = false;

  constructor(
    readonly site: string,
    readonly host: string,
    readonly port: number,
    private readonly log: Logger,
    initialLoad: number,
  ) {
    this.load = initialLoad;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Closing the listening socket makes probes get "connection refused": the server is dead. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ site: this.site, load: Math.round(this.load * 10) / 10 }) + '\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.host, port: this.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.log.info({ site: this.site, address: `${this.host}:${(server.address() as AddressInfo).port}` }, 'demo backend started');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    this.log.info({ site: this.site }, 'demo backend stopped');
  }

  drift(random: () => number): void {
    if (this.fixed) return;
    this.load = Math.min(90, Math.max(5, this.load + (random() - 0.5) * 6));
  }

  info(): DemoBackendInfo {
    return { site: this.site, address: `${this.host}:${this.port}`, running: this.running, load: Math.round(this.load * 10) / 10, fixed: this.fixed };
  }
}

export class DemoBackends {
  private timer: NodeJS.Timeout | undefined;
  constructor(readonly backends: Map<string, DemoBackend>) {}

  static async start(zones: ZoneSet, logger: Logger): Promise<DemoBackends> {
    const log = logger.child({ component: 'demo' });
    const backends = new Map<string, DemoBackend>();
    const initial = [40, 30, 10, 50, 20];
    for (const zone of zones.zones.values()) {
      for (const site of zone.sites) {
        const target = site.probe ? loopbackTarget(site.probe) : undefined;
        if (!target) continue;
        const backend = new DemoBackend(site.id, target.host, target.port, log, initial[backends.size % initial.length]);
        // A port someone else listens on would have the prober check that endpoint, not the
        // demo's: the start fails instead, saying which site and address.
        try {
          await backend.start();
        } catch (error) {
          await Promise.all([...backends.values()].map((b) => b.stop()));
          throw new DemoBackendError(`--demo-backends: ${site.id}'s endpoint ${target.host}:${target.port} (its probe's target): ${listenFailure(error)}; stop what listens there, or serve without --demo-backends`);
        }
        backends.set(site.id, backend);
      }
    }
    const demo = new DemoBackends(backends);
    demo.timer = setInterval(() => {
      for (const b of backends.values()) b.drift(Math.random);
    }, 1000);
    demo.timer.unref();
    return demo;
  }

  list(): DemoBackendInfo[] {
    return [...this.backends.values()].map((b) => b.info());
  }

  registerRoutes(router: AdminRouter): void {
    router.add('GET', '/v1/demo', () => ({ status: 200, body: { backends: this.list() } }));
    const find = (site: string) => this.backends.get(site) ?? [...this.backends.values()].find((b) => site.startsWith(`${b.site}.`) || site.endsWith(`/${b.site}`));
    router.add('POST', '/v1/demo/:site/:action', async (req) => {
      const backend = find(req.params.site);
      if (!backend) return { status: 404, body: { error: `no demo backend "${req.params.site}" (have: ${[...this.backends.keys()].join(', ')})` } };
      switch (req.params.action) {
        case 'stop':
          await backend.stop();
          break;
        case 'start':
          try {
            await backend.start();
          } catch (error) {
            return { status: 409, body: { error: `${backend.site}'s endpoint ${backend.host}:${backend.port}: ${listenFailure(error)}` } };
          }
          break;
        case 'load': {
          const load = (req.body as { load?: unknown } | undefined)?.load;
          if (load === null) backend.fixed = false;
          else if (typeof load === 'number' && Number.isFinite(load) && load >= 0) {
            backend.load = load;
            backend.fixed = true;
          } else return { status: 400, body: { error: 'body must be {"load": <number>} or {"load": null}' } };
          break;
        }
        default:
          return { status: 404, body: { error: 'actions: stop, start, load' } };
      }
      return { status: 200, body: backend.info() };
    });
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.backends.values()].map((b) => b.stop()));
  }
}
