/**
 * The status page in a real headless browser (Debian's chromium, driven by playwright-core): a
 * real `sitedns serve` probing real HTTP backends, its admin listener off loopback behind a
 * token. The page loads with the token as Basic credentials, shows every site and the drain, sees
 * Boston go down once its backend stops, and its answer shares follow. The screenshot goes to a
 * temporary file; `SITEDNS_SCREENSHOT=docs/status-page.png` writes the one the docs show.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, eventually, type Backend } from '../helpers/backends.js';
import { query, tempZonesDir } from '../helpers/dns.js';
import { startSitedns, udpQuery } from '../helpers/net.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = process.env.SITEDNS_SCREENSHOT ?? join(mkdtempSync(join(tmpdir(), 'sitedns-status-page-')), 'status-page.png');
const SAMPLE = readFileSync(new URL('../../zones/app.example.com.yaml', import.meta.url), 'utf8');
const TOKEN = 'status-page-test-token';
const SITES = ['boston', 'chicago', 'geneva'] as const;

if (!existsSync(CHROMIUM)) {
  t.skip(`no chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`);
} else {
  t.test('the status page shows the sites live, a site going down, and the answer shares', async (t) => {
    const { chromium } = await import('playwright-core');
    const backends = {} as Record<(typeof SITES)[number], Backend>;
    const loads = { boston: 44, chicago: 35, geneva: 11 };
    for (const site of SITES) {
      backends[site] = await startBackend('127.0.0.1', loads[site]);
      t.teardown(() => backends[site].stop());
    }
    // The sample zone, its probes pointed at this test's backends.
    let zone = SAMPLE;
    SITES.forEach((site, i) => (zone = zone.replace(`http://127.0.0.1:1808${i + 1}/health`, backends[site].url)));
    t.not(zone, SAMPLE);
    const server = await startSitedns(['serve', '--zones', tempZonesDir({ 'app.example.com.yaml': zone }), '--listen', '127.0.0.1:0', '--http', '0.0.0.0:0', '--http-token', TOKEN]);
    t.teardown(() => server.stop());
    const admin = `http://127.0.0.1:${(await server.waitForLog((l) => l.msg === 'admin listening')).port}`;

    // Off loopback the page is behind the token: a browser is asked for Basic credentials.
    const anonymous = await fetch(`${admin}/`);
    t.equal(anonymous.status, 401);
    t.match(anonymous.headers.get('www-authenticate'), /^Basic /);
    t.equal((await fetch(`${admin}/v1/history`)).status, 401);

    const drained = await fetch(`${admin}/v1/sites/app.example.com/geneva/drain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ for: '30m', reason: 'kernel upgrade', by: 'ops@vm' }) });
    t.equal(drained.status, 200);

    // Queries all along: the Pool Name, a Group Name and the Site Names.
    let querying = true;
    const names = ['app.example.com', 'app.example.com', 'europe.app.example.com', 'boston.app.example.com', 'chicago.app.example.com'];
    const traffic = (async () => {
      for (let i = 0; querying; i++) {
        await udpQuery(server.port, query(names[i % names.length], 'A', { id: i & 0xffff }));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    t.teardown(async () => {
      querying = false;
      await traffic;
    });

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    t.teardown(() => browser.close());
    const context = await browser.newContext({ httpCredentials: { username: 'ops', password: TOKEN }, viewport: { width: 1000, height: 900 } });
    const page = await context.newPage();
    const external: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(admin)) external.push(r.url());
    });
    const response = await page.goto(`${admin}/`);
    t.equal(response?.status(), 200);

    const row = (site: string) => page.locator(`#sites tr[data-site="app.example.com/${site}"]`);
    await row('boston').and(page.locator('[data-state="up"]')).waitFor({ timeout: 15_000 });
    t.equal(await row('chicago').getAttribute('data-state'), 'up');
    t.equal(await row('geneva').getAttribute('data-state'), 'drained');
    t.match(await row('boston').textContent(), /HTTP 200/);
    t.match(await page.locator('#drain-table tr[data-site="app.example.com/geneva"]').textContent(), /ops@vm.*kernel upgrade/);

    // Shares appear once two samples of the counters were taken.
    await page.locator('#legend span[data-site="app.example.com/boston"]').waitFor({ timeout: 20_000 });
    t.ok(await page.locator('#shares polygon[data-site="app.example.com/chicago"]').count());

    await backends.boston.stop();
    await row('boston').and(page.locator('[data-state="down"]')).waitFor({ timeout: 20_000 });
    t.match(await row('boston').textContent(), /connection refused/);
    await page.locator('.change[data-site="app.example.com/boston"][data-to="down"]').waitFor({ timeout: 20_000 });
    t.ok(await page.locator('#states rect[data-site="app.example.com/boston"][data-state="down"]').count(), 'the state strip shows Boston down');
    // A whole sample after the failover: Boston's share of the latest answers is nothing.
    await eventually('Boston has no share of the latest answers', async () => /app\.example\.com\/boston 0%/.test((await page.locator('#legend').textContent()) ?? ''), 25_000);

    t.same(external, [], 'the page loads nothing from elsewhere');
    t.equal(await page.locator('#error').isVisible(), false);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.ok(existsSync(SCREENSHOT));
  });
}
