/**
 * End to end (seed 004, Figs. 5A/5B with the DNS of Figs. 4A-4C): three example sites on
 * 127.0.0.2/3/4 (same port), a real `sitedns serve` answering their names, and an HTTP client
 * that resolves every name through sitedns over UDP and follows redirects with a cookie jar.
 *
 * Needs `npm run build` (the sites import the built `sitedns/affinity`; sitedns runs from dist).
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { LookupFunction } from 'node:net';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { startSitedns, udpQuery, type Started } from '../helpers/net.js';

const SITE_SERVER = fileURLToPath(new URL('../../examples/site/server.js', import.meta.url));
const SECRET = 'e2e shared secret of the three sites';
const ADDRESSES = { a: '127.0.0.2', b: '127.0.0.3', c: '127.0.0.4' } as const;
type SiteId = keyof typeof ADDRESSES;
const SITE_IDS = Object.keys(ADDRESSES) as SiteId[];
/** Marker expiry of the sites: long enough for a busy CI machine to follow a redirect, short enough to wait out. */
const MARKER_MAX_AGE_S = 4;

function zoneText(port: number): string {
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

interface RunningSite {
  id: SiteId;
  proc: ChildProcess;
  logs: any[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

async function startSite(id: SiteId, zoneFile: string, port: number): Promise<RunningSite> {
  const proc = spawn(process.execPath, [SITE_SERVER], {
    env: { ...process.env, SITE: id, ZONE: zoneFile, SECRET, PORT: String(port), HOST: ADDRESSES[id], MARKER_MAX_AGE: `${MARKER_MAX_AGE_S}s`, CLOCK_SKEW: '0s' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: any[] = [];
  let buffered = '';
  const listening = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let parsed: any;
        try {
          parsed = JSON.parse(line);
        } catch {
          parsed = { raw: line };
        }
        logs.push(parsed);
        if (parsed.msg === 'listening') resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`site ${id} exited with ${code}: ${JSON.stringify(logs)}`)));
  });
  await listening;
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
async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, ADDRESSES.a);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- the client: resolves through sitedns, follows redirects, keeps cookies per host ----------

async function resolveA(dnsPort: number, name: string): Promise<string> {
  const reply = await udpQuery(dnsPort, query(name, 'A', { rd: false }));
  if (!reply) throw new Error(`no DNS reply for ${name}`);
  const answer = decode(reply).answers.find((a: any) => a.type === 1);
  if (!answer) throw new Error(`no A record for ${name}`);
  return answer.address;
}

interface Hop {
  url: string;
  status: number;
  /** The address the name resolved to (which site answered). */
  address: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

class Browser {
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

const hostOf = (hop: Hop) => new URL(hop.url).hostname;
const siteOf = (hop: Hop) => hop.headers['x-site'] as SiteId | undefined;

async function until(what: string, check: () => Promise<boolean>, limitMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > limitMs) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function health(id: SiteId, port: number): Promise<any> {
  const res = await fetch(`http://${ADDRESSES[id]}:${port}/health`);
  return res.json();
}

async function setBusy(site: RunningSite, port: number, busy: boolean): Promise<void> {
  if ((await health(site.id, port)).busy === busy) return;
  site.proc.kill('SIGUSR2');
  await until(`site ${site.id} busy=${busy}`, async () => (await health(site.id, port)).busy === busy);
}

// ---- the scenario ---------------------------------------------------------------------------

async function startAll(t: { teardown(fn: () => unknown): void }) {
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

t.test('affinity end to end: pool name -> site name, session kept, bookmarks redistributed, overflow', async (t) => {
  const { port, sites, dns } = await startAll(t);
  const pool = `http://shop.test:${port}`;

  // DNS as the sites see it: the Pool Name is one of the sites, each Site Name its own site.
  t.ok(Object.values(ADDRESSES).includes((await resolveA(dns.port, 'shop.test')) as any), 'the Pool Name answers a site');
  for (const id of SITE_IDS) t.equal(await resolveA(dns.port, `${id}.shop.test`), ADDRESSES[id], `${id}.shop.test -> its site`);

  // 1. A new client starts on the Pool Name and ends on one Site Name (stages 525-540, 515-520, 588).
  const browser = new Browser(dns.port);
  const first = await browser.visit(`${pool}/catalog?item=42&q=a%20b`);
  t.equal(first.length, 2, `two hops: ${first.map((h) => h.url).join(' -> ')}`);
  t.equal(first[0].status, 302);
  t.equal(first[0].headers['x-affinity-stage'], '540');
  const home = siteOf(first[1])!;
  t.ok(SITE_IDS.includes(home), `landed on site ${home}`);
  t.equal(hostOf(first[1]), `${home}.shop.test`, 'on its Site Name');
  t.equal(first[1].address, ADDRESSES[home]);
  t.equal(hostOf(first[0]), 'shop.test');
  t.equal(first[0].address, ADDRESSES[home], 'the site the Pool Name chose is the one that took the client');
  t.match(first[1].url, new RegExp(`^http://${home}\\.shop\\.test:${port}/catalog\\?item=42&q=a%20b&_affinity=`), 'path and query preserved, marker added');
  t.match(first[1].body, /You asked for <code>\/catalog\?item=42&amp;q=a%20b<\/code>/, 'the application saw the URL without the marker');
  t.equal(first[1].headers['x-session-new'], '1');
  const bookmark = first[1].url;

  // 2. The client keeps its session on its Site Name over many requests (no redirects).
  for (let i = 2; i <= 12; i++) {
    const hops = await browser.visit(`http://${home}.shop.test:${port}/page/${i}`);
    t.equal(hops.length, 1, `request ${i}: no redirect`);
    t.equal(siteOf(hops[0]), home);
    t.equal(hops[0].headers['x-session-views'], String(i), `request ${i}: the same session`);
  }

  // 3. A bookmarked Site Name URL goes back to load balancing (stage 515 -> 545): without a
  // marker at once, and with the marker it was bookmarked with once that has expired (520 -> 545).
  const stranger = new Browser(dns.port);
  let hops = await stranger.visit(`http://${home}.shop.test:${port}/catalog?item=42`);
  t.equal(hops[0].headers['x-affinity-stage'], '545');
  t.equal(new URL(hops[1].url).hostname, 'main.shop.test', 'redistributed through the Group Name (topology: 127/8 -> main)');
  t.equal(hops.at(-1)!.status, 200);
  t.match(hops.at(-1)!.url, /\/catalog\?item=42&_affinity=/);
  t.equal(hops.at(-1)!.headers['x-session-new'], '1', 'a new session, wherever load balancing put it');
  await new Promise((r) => setTimeout(r, (MARKER_MAX_AGE_S + 1.5) * 1000)); // let the bookmarked marker expire
  const later = new Browser(dns.port);
  hops = await later.visit(bookmark);
  t.equal(hops[0].status, 302);
  t.equal(hops[0].headers['x-affinity-stage'], '545', 'the expired marker is refused');
  t.ok(hops.length >= 3 && hops.at(-1)!.status === 200, `back through load balancing: ${hops.map((h) => hostOf(h)).join(' -> ')}`);

  // 4. Overflow (Fig. 5B): every site busy -> the chain walks the group and ends on 503.
  for (const id of SITE_IDS) await setBusy(sites[id], port, true);
  const crowd = new Browser(dns.port);
  hops = await crowd.visit(`${pool}/start`);
  const final = hops.at(-1)!;
  t.equal(final.status, 503, `all busy: ${hops.map((h) => `${hostOf(h)}(${h.headers['x-affinity-stage']})`).join(' -> ')}`);
  t.equal(final.headers['x-affinity-stage'], '570');
  t.ok(Number(final.headers['retry-after']) > 0, 'Retry-After');
  t.match(final.body, /All sites are busy/);
  // Pool Name -> X (540) -> next (595) -> next (595) -> back at X's predecessor: 570.
  const walked = hops.slice(1).map(hostOf);
  const start = SITE_IDS.indexOf(walked[0].split('.')[0] as SiteId);
  t.same(walked, [0, 1, 2].map((k) => `${SITE_IDS[(start + k) % 3]}.shop.test`), 'the group ring, in order, once');
  t.same(hops.map((h) => h.headers['x-affinity-stage']), ['540', '595', '595', '570'], 'stages: lock-down, overflow begins, continues, all busy');

  // One site frees up: overflow ends there.
  await setBusy(sites.c, port, false);
  for (let i = 0; i < 3; i++) {
    const next = new Browser(dns.port);
    hops = await next.visit(`${pool}/start`);
    t.equal(hops.at(-1)!.status, 200);
    t.equal(siteOf(hops.at(-1)!), 'c', `overflow ends at the free site: ${hops.map(hostOf).join(' -> ')}`);
  }
  for (const id of SITE_IDS) await setBusy(sites[id], port, false);
});

/** DNS failover of the Site Name: `serve` probes the sites' /health in-process (#3, embedded mode). */
t.test(
  'affinity end to end: the client moves to the next site of its group when its site dies',
  async (t) => {
    const { port, sites, dns } = await startAll(t);
    const browser = new Browser(dns.port);
    const first = await browser.visit(`http://shop.test:${port}/cart`);
    const home = siteOf(first.at(-1)!)!;
    t.equal(first.at(-1)!.status, 200, `landed on ${home}`);
    for (let i = 2; i <= 4; i++) t.equal((await browser.visit(`http://${home}.shop.test:${port}/cart`))[0].headers['x-session-views'], String(i));

    // The site dies. Its Site Name fails over to the next site of its group (seed 004, "Site Name").
    const next = SITE_IDS[(SITE_IDS.indexOf(home) + 1) % SITE_IDS.length];
    await sites[home].stop('SIGKILL');
    await until(`${home}.shop.test fails over to ${next}`, async () => (await resolveA(dns.port, `${home}.shop.test`)) === ADDRESSES[next]);

    // The client keeps using its Site Name; the next site takes it (stages 510 -> 525 -> 535 -> 540)
    // onto its own Site Name, where a new session starts (the old one died with its site).
    const hops = await browser.visit(`http://${home}.shop.test:${port}/cart?step=5`);
    t.equal(hops.length, 2, hops.map((h) => h.url).join(' -> '));
    t.equal(hops[0].address, ADDRESSES[next], `${home}.shop.test now answered by ${next}`);
    t.equal(hops[0].headers['x-affinity-stage'], '540');
    t.equal(hostOf(hops[1]), `${next}.shop.test`);
    t.equal(siteOf(hops[1]), next);
    t.equal(hops[1].headers['x-session-new'], '1');
    t.match(hops[1].body, /You asked for <code>\/cart\?step=5<\/code>/);
    for (let i = 2; i <= 5; i++) {
      const again = await browser.visit(`http://${next}.shop.test:${port}/cart`);
      t.equal(again.length, 1);
      t.equal(siteOf(again[0]), next);
      t.equal(again[0].headers['x-session-views'], String(i), 'the session stays at the new site');
    }
    // New clients are no longer sent to the dead site.
    for (let i = 0; i < 5; i++) t.not(siteOf((await new Browser(dns.port).visit(`http://shop.test:${port}/`)).at(-1)!), home);
  },
);
