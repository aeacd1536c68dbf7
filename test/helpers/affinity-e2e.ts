/**
 * Harness of the affinity end-to-end tests (test/e2e/affinity*.test.ts): three example sites
 * (examples/site) on 127.0.0.2/3/4 sharing one port, a real `sitedns serve` answering their
 * names and probing their /health, and a browser-like client that resolves every name through
 * sitedns over UDP, keeps host-only cookies and follows redirects.
 *
 * Needs `npm run build` (the sites import the built `sitedns/affinity`; sitedns runs from dist).
 */
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { LookupFunction } from 'node:net';
import { decode, query, tempZonesDir } from './dns.js';
import { followJsonLines } from './json-lines.js';
import { freeTcpPort, startSitedns, udpQuery } from './net.js';

export const SITE_SERVER = fileURLToPath(new URL('../../examples/site/server.js', import.meta.url));
export const SECRET = 'e2e shared secret of the three sites';
export const ADDRESSES = { a: '127.0.0.2', b: '127.0.0.3', c: '127.0.0.4' } as const;
export type SiteId = keyof typeof ADDRESSES;
export const SITE_IDS = Object.keys(ADDRESSES) as SiteId[];

export function zoneText(port: number): string {
  const site = (id: SiteId) =>
    `  ${id}: { addresses: [${ADDRESSES[id]}], capacity: 100, probe: { http: "http://${ADDRESSES[id]}:${port}/health", interval: 250ms, timeout: 500ms, rise: 1, fall: 1, load: load } }`;
  return `zone: shop.test
soa: { mname: ns1.shop.test, rname: hostmaster.shop.test }
nameservers: { ns1.shop.test: [127.0.0.1] }
sites:
${SITE_IDS.map(site).join('\n')}
groups:
  main: [a, b, c]
pool: { name: "@", policy: least-busy, topology: { main: [127.0.0.0/8] } }
`;
}

// ---- the example sites, as child processes ---------------------------------------------------

export interface RunningSite {
  id: SiteId;
  proc: ChildProcess;
  logs: any[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startSite(id: SiteId, zoneFile: string, port: number): Promise<RunningSite> {
  const proc = spawn(process.execPath, [SITE_SERVER], {
    env: { ...process.env, SITE: id, ZONE: zoneFile, SECRET, PORT: String(port), HOST: ADDRESSES[id] },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const followed = followJsonLines(proc, 60_000);
  const logs = followed.lines;
  await followed.waitFor((l) => l.msg === 'listening').catch((error: Error) => {
    throw new Error(`site ${id}: ${error.message}`);
  });
  return {
    id,
    proc,
    logs,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill(signal);
      await exited;
    },
  };
}

/** A port free on 127.0.0.2 (the others are tried when the sites start). */
export function freePort(): Promise<number> {
  return freeTcpPort(ADDRESSES.a);
}

// ---- the client: resolves through sitedns, follows redirects, keeps cookies per host ----------

export async function resolveA(dnsPort: number, name: string): Promise<string> {
  const reply = await udpQuery(dnsPort, query(name, 'A', { rd: false }));
  if (!reply) throw new Error(`no DNS reply for ${name}`);
  const answer = decode(reply).answers.find((a: any) => a.type === 1);
  if (!answer) throw new Error(`no A record for ${name}`);
  return answer.address;
}

export interface Hop {
  url: string;
  status: number;
  /** The address the name resolved to (which site answered). */
  address: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class Browser {
  /** Host-only cookies, as a browser keeps them: hostname -> name -> value. */
  readonly cookies = new Map<string, Map<string, string>>();
  constructor(private readonly dnsPort: number) {}

  private lookup(addresses: Map<string, string>): LookupFunction {
    return (hostname, options, callback) => {
      resolveA(this.dnsPort, hostname).then(
        (address) => {
          addresses.set(hostname, address);
          if ((options as { all?: boolean }).all) (callback as any)(null, [{ address, family: 4 }]);
          else callback(null, address, 4);
        },
        (error) => callback(error, '', 4),
      );
    };
  }

  async get(url: string): Promise<Hop> {
    const target = new URL(url);
    const jar = this.cookies.get(target.hostname);
    const cookie = jar ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : undefined;
    const addresses = new Map<string, string>();
    const req = http.get(url, { lookup: this.lookup(addresses), agent: false, headers: cookie ? { Cookie: cookie } : {} });
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    let body = '';
    for await (const chunk of res) body += chunk;
    for (const set of res.headers['set-cookie'] ?? []) {
      const [pair] = set.split(';');
      const eq = pair.indexOf('=');
      if (!this.cookies.has(target.hostname)) this.cookies.set(target.hostname, new Map());
      this.cookies.get(target.hostname)!.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    return { url, status: res.statusCode!, address: addresses.get(target.hostname)!, headers: res.headers, body };
  }

  /** Follows redirects like a browser (at most 10). */
  async visit(url: string): Promise<Hop[]> {
    const hops: Hop[] = [];
    let next: string | undefined = url;
    while (next !== undefined) {
      if (hops.length > 10) throw new Error(`redirect loop: ${hops.map((h) => h.url).join(' -> ')}`);
      const hop = await this.get(next);
      hops.push(hop);
      next = hop.status >= 300 && hop.status < 400 ? new URL(hop.headers.location!, next).toString() : undefined;
    }
    return hops;
  }
}

export const hostOf = (hop: Hop) => new URL(hop.url).hostname;
export const siteOf = (hop: Hop) => hop.headers['x-site'] as SiteId | undefined;

export async function until(what: string, check: () => Promise<boolean>, limitMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > limitMs) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function health(id: SiteId, port: number): Promise<any> {
  const res = await fetch(`http://${ADDRESSES[id]}:${port}/health`);
  return res.json();
}

export async function setBusy(site: RunningSite, port: number, busy: boolean): Promise<void> {
  if ((await health(site.id, port)).busy === busy) return;
  site.proc.kill('SIGUSR2');
  await until(`site ${site.id} busy=${busy}`, async () => (await health(site.id, port)).busy === busy);
}

// ---- the scenario ---------------------------------------------------------------------------

export async function startAll(t: { teardown(fn: () => unknown): void }) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const dir = tempZonesDir({ 'shop.test.yaml': zoneText(port) });
    const zoneFile = `${dir}/shop.test.yaml`;
    const sites: Partial<Record<SiteId, RunningSite>> = {};
    try {
      for (const id of SITE_IDS) sites[id] = await startSite(id, zoneFile, port);
    } catch (error) {
      await Promise.all(Object.values(sites).map((s) => s!.stop()));
      if (attempt < 4) continue; // the port was taken on another address: try another
      throw error;
    }
    t.teardown(() => Promise.all(Object.values(sites).map((s) => s!.stop())));
    const dns = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', 'off']);
    t.teardown(() => dns.stop());
    return { port, dir, zoneFile, sites: sites as Record<SiteId, RunningSite>, dns };
  }
}
