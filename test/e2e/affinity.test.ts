/**
 * End to end (seed 004, Figs. 5A/5B with the DNS of Figs. 4A-4C): three example sites behind a
 * real sitedns; a client that resolves through sitedns and follows redirects goes from the Pool
 * Name to one Site Name, keeps its session, is sent back to load balancing from a bookmarked
 * Site Name URL, and overflows through busy sites to the "all sites busy" page.
 * The harness is test/helpers/affinity-e2e.ts; failover is in affinity-failover.test.ts.
 */
import t from 'tap';
import { signMarker } from '../../src/affinity/marker.js';
import { ADDRESSES, Browser, SECRET, SITE_IDS, hostOf, resolveA, setBusy, siteOf, startAll, type SiteId } from '../helpers/affinity-e2e.js';

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
  // marker, and with the marker it was bookmarked with once that has expired (520 -> 545).
  const stranger = new Browser(dns.port);
  let hops = await stranger.visit(`http://${home}.shop.test:${port}/catalog?item=42`);
  t.equal(hops[0].headers['x-affinity-stage'], '545');
  t.equal(new URL(hops[1].url).hostname, 'main.shop.test', 'redistributed through the Group Name (topology: 127/8 -> main)');
  t.equal(hops.at(-1)!.status, 200);
  t.match(hops.at(-1)!.url, /\/catalog\?item=42&_affinity=/);
  t.equal(hops.at(-1)!.headers['x-session-new'], '1', 'a new session, wherever load balancing put it');
  // The bookmark as the site wrote it two minutes ago (rather than waiting 60 s): same URL, same
  // secret, an older time.
  const oldMarker = signMarker({ secrets: [Buffer.from(SECRET)], zone: 'shop.test' }, { issuedAt: Math.floor(Date.now() / 1000) - 120, to: home });
  const later = new Browser(dns.port);
  hops = await later.visit(bookmark.replace(/_affinity=[^&]*/, `_affinity=${oldMarker}`));
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
