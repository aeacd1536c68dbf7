/**
 * End to end: DNS failover of the Site Name (seed 004, "Site Name"; embedded probing in
 * `sitedns serve`): the client's site dies, its Site Name resolves to the next site of the
 * group, and that site takes the client onto its own Site Name (stages 510-540).
 * The harness is test/helpers/affinity-e2e.ts.
 */
import t from 'tap';
import { ADDRESSES, Browser, SITE_IDS, hostOf, resolveA, siteOf, startAll, until } from '../helpers/affinity-e2e.js';

/** DNS failover of the Site Name: `serve` probes the sites' /health in-process (embedded mode). */
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
