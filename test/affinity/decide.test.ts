/** Every branch of operation 500 (seed 004 Figs. 5A/5B, Appendix B) as a pure decision. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { compileText } from '../helpers/dns.js';
import { decide, type Decision, type DecideContext } from '../../src/affinity/decide.js';
import { signMarker, type MarkerFields } from '../../src/affinity/marker.js';
import { affinityZone } from '../../src/affinity/zone.js';
import type { GroupModel, ZoneModel } from '../../src/model/zone-model.js';

const seedZone = [...compileText(readFileSync('test/fixtures/app.example.com.yaml', 'utf8')).zones.values()][0];
const NOW = 1_800_000_000_000;
const SECRET = Buffer.from('a shared secret of the whole pool');

function ctxFor(zone: ZoneModel, site: string): DecideContext {
  return { zone: affinityZone(zone, site), keys: { secrets: [SECRET], zone: zone.origin }, timing: { maxAgeMs: 60_000, clockSkewMs: 5_000 } };
}
const group = (zone: ZoneModel, id: string) => zone.groups.find((g) => g.id === id)!;

function run(ctx: DecideContext, host: string | undefined, markers: MarkerFields[] | string[], opts: { proper?: GroupModel; busy?: boolean; now?: number } = {}) {
  let properCalls = 0;
  let busyCalls = 0;
  const raws = markers.map((m) => (typeof m === 'string' ? m : signMarker(ctx.keys, m)));
  const d = decide(ctx, { host, markers: raws, nowMs: opts.now ?? NOW }, {
    properGroup: () => (properCalls++, opts.proper),
    isBusy: () => (busyCalls++, opts.busy ?? false),
  });
  return { d, properCalls, busyCalls };
}
const marker = (to: string, extra: Partial<MarkerFields> = {}): MarkerFields => ({ issuedAt: Math.floor(NOW / 1000), to, ...extra });
const redirect = (d: Decision): any => (d.kind === 'redirect' ? { stage: d.stage, host: d.host, marker: d.marker } : d);

t.test('Step 1 (stages 510-545): a name other than this Site Name is locked down', async (t) => {
  const boston = ctxFor(seedZone, 'boston');
  const americas = group(seedZone, 'americas');
  const europe = group(seedZone, 'europe');

  // 525 -> 530 -> 535 -> 540: Pool Name, and this site is in the proper group.
  let r = run(boston, 'app.example.com', [], { proper: americas });
  t.same(redirect(r.d), { stage: 540, host: 'boston.app.example.com', marker: marker('boston') }, 'pool name, proper group -> this Site Name with a fresh marker');
  t.equal(r.properCalls, 1);
  t.equal(r.busyCalls, 0, 'step 1 never asks whether the site is busy');

  // No proper group (the seed's "no groups defined"): always affirmative.
  r = run(boston, 'app.example.com', [], { proper: undefined });
  t.equal(redirect(r.d).stage, 540);

  // 530 -> 545: Pool Name, wrong group -> the proper Group Name, no marker.
  r = run(boston, 'app.example.com', [], { proper: europe });
  t.same(redirect(r.d), { stage: 545, host: 'europe.app.example.com', marker: undefined });

  // A site in two groups (Chicago: Americas and Europe) is proper for both.
  const chicago = ctxFor(seedZone, 'chicago');
  t.equal(redirect(run(chicago, 'app.example.com', [], { proper: europe }).d).stage, 540);
  t.equal(redirect(run(chicago, 'app.example.com', [], { proper: americas }).d).stage, 540);

  // 525 -> 535 -> 540: a Group Name, another site's Site Name (failed over here), any alias.
  for (const host of ['americas.app.example.com', 'europe.app.example.com', 'chicago.app.example.com', 'www.app.example.com', '127.0.0.1', '[::1]']) {
    r = run(boston, host, [], { proper: europe });
    t.same(redirect(r.d), { stage: 540, host: 'boston.app.example.com', marker: marker('boston') }, `${host} -> this Site Name`);
    t.equal(r.properCalls, 0, `${host}: no group judgement needed`);
  }

  // Old markers do not carry over: the new marker is fresh and addressed to this site.
  r = run(boston, 'americas.app.example.com', [marker('chicago', { issuedAt: Math.floor(NOW / 1000) - 30 })]);
  t.same(redirect(r.d), { stage: 540, host: 'boston.app.example.com', marker: marker('boston') });
});

t.test('Step 2 (stages 515-520): the Site Name needs a valid, unexpired marker', async (t) => {
  const boston = ctxFor(seedZone, 'boston');
  const europe = group(seedZone, 'europe');
  const americas = group(seedZone, 'americas');
  const cases: [string, string[] | MarkerFields[], string][] = [
    ['no marker (515)', [], 'absent'],
    ['expired marker (520)', [marker('boston', { issuedAt: Math.floor(NOW / 1000) - 66 })], 'expired'],
    ['marker from the future', [marker('boston', { issuedAt: Math.floor(NOW / 1000) + 6 })], 'from the future'],
    ['marker for another site', [marker('chicago')], 'for another site'],
    ['forged marker', [signMarker({ secrets: [Buffer.from('not the shared secret at all')], zone: 'app.example.com' }, marker('boston'))], 'bad signature'],
    ['garbage', ['1.2.3'], 'malformed'],
  ];
  for (const [what, markers, reason] of cases) {
    const r = run(boston, 'boston.app.example.com', markers, { proper: americas });
    t.same(redirect(r.d), { stage: 545, host: 'americas.app.example.com', marker: undefined }, `${what} -> the proper Group Name`);
    t.match((r.d as { reason: string }).reason, reason);
    t.equal(r.busyCalls, 0);
  }
  // 545 goes to the proper group even when it is not this site's (the client belongs there).
  t.equal(redirect(run(boston, 'boston.app.example.com', [], { proper: europe }).d).host, 'europe.app.example.com');
  // Without a proper group: the Pool Name.
  t.equal(redirect(run(boston, 'boston.app.example.com', [], { proper: undefined }).d).host, 'app.example.com');
  // No Host header at all (HTTP/1.0): Appendix B skips step 1, so step 2 decides.
  t.equal(redirect(run(boston, undefined, [], { proper: americas }).d).stage, 545);
  t.same(run(boston, undefined, [marker('boston')]).d.kind, 'pass');

  // Within the expiry and the clock-skew tolerance: accepted.
  t.equal(run(boston, 'boston.app.example.com', [marker('boston', { issuedAt: Math.floor(NOW / 1000) - 64 })]).d.kind, 'pass', '60s + 5s skew');
  t.equal(run(boston, 'boston.app.example.com', [marker('boston', { issuedAt: Math.floor(NOW / 1000) + 4 })]).d.kind, 'pass', 'a clock 4s ahead');
  // Several markers (pasted URLs): one valid one is enough.
  t.equal(run(boston, 'boston.app.example.com', ['junk', marker('chicago'), marker('boston')] as any).d.kind, 'pass');
});

t.test('Step 3 (stages 550-595): overflow walks the group and ends on the busy page', async (t) => {
  const boston = ctxFor(seedZone, 'boston');
  const chicago = ctxFor(seedZone, 'chicago');
  const geneva = ctxFor(seedZone, 'geneva');
  const americas = group(seedZone, 'americas');
  const europe = group(seedZone, 'europe');

  // 550 -> 588: not busy, the application starts the session.
  let r = run(boston, 'boston.app.example.com', [marker('boston')], { proper: americas });
  t.same(r.d, { kind: 'pass', stage: 588, reason: 'valid marker' });
  t.equal(r.busyCalls, 1);

  // 550 -> 555 -> 565 -> 567 -> 590 -> 595: busy, overflow begins at the next site of the group.
  r = run(boston, 'boston.app.example.com', [marker('boston')], { proper: americas, busy: true });
  t.same(redirect(r.d), { stage: 595, host: 'chicago.app.example.com', marker: marker('chicago', { initial: 'boston', group: 'americas' }) });

  // At Chicago: 555 -> 560 -> 575 -> 580 -> 585: the next site is the initial one -> 570.
  const hop = (r.d as { marker: MarkerFields }).marker;
  r = run(chicago, 'chicago.app.example.com', [hop], { proper: europe, busy: true });
  t.same(r.d, { kind: 'busy', stage: 570, reason: 'every site of americas tried since boston' }, 'the ring in the marker is walked, not the proper group');
  // ...and Chicago not busy accepts the overflow.
  t.same(run(chicago, 'chicago.app.example.com', [hop], { busy: false }).d, { kind: 'pass', stage: 588, reason: 'overflow from boston accepted' });

  // 567 -> 570: the only site of its group.
  const solo = compileText(`zone: solo.test
soa: { mname: ns1.solo.test, rname: h.solo.test }
nameservers: { ns1.solo.test: [192.0.2.1] }
sites: { one: { addresses: [192.0.2.10] } }
pool: { name: "@" }
`);
  const one = ctxFor([...solo.zones.values()][0], 'one');
  t.same(run(one, 'one.solo.test', [marker('one')], { busy: true }).d, { kind: 'busy', stage: 570, reason: 'busy and the only site of its group' });

  // An expired overflow marker (560 -> 565) is already caught at 520: back to load balancing.
  r = run(chicago, 'chicago.app.example.com', [marker('chicago', { initial: 'boston', group: 'americas', issuedAt: Math.floor(NOW / 1000) - 120 })], { proper: americas, busy: true });
  t.equal(redirect(r.d).stage, 545);

  // Geneva (Europe: geneva, chicago) overflows to Chicago.
  r = run(geneva, 'geneva.app.example.com', [marker('geneva')], { proper: europe, busy: true });
  t.same(redirect(r.d), { stage: 595, host: 'chicago.app.example.com', marker: marker('chicago', { initial: 'geneva', group: 'europe' }) });
});

const THREE = `zone: three.test
soa: { mname: ns1.three.test, rname: h.three.test }
nameservers: { ns1.three.test: [192.0.2.1] }
sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.11] }
  c: { addresses: [192.0.2.12] }
  d: { addresses: [192.0.2.13] }
pool: { name: www }
`;

t.test('overflow without groups walks the pool; a long chain keeps its start', async (t) => {
  const zone = [...compileText(THREE).zones.values()][0];
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((s) => ctxFor(zone, s));
  const start = Math.floor(NOW / 1000) - 10;
  let r = run(a, 'a.three.test', [marker('a', { issuedAt: start })], { busy: true });
  t.same(redirect(r.d), { stage: 595, host: 'b.three.test', marker: marker('b', { initial: 'a' }) }, 'no group in the marker: the pool ring');
  r = run(b, 'b.three.test', [marker('b', { initial: 'a', issuedAt: start })], { busy: true });
  t.same(redirect(r.d), { stage: 595, host: 'c.three.test', marker: marker('c', { initial: 'a', issuedAt: start }) }, '595 keeps the initial site and start time');
  r = run(c, 'c.three.test', [marker('c', { initial: 'a', issuedAt: start })], { busy: true });
  t.equal(redirect(r.d).host, 'd.three.test');
  r = run(d, 'd.three.test', [marker('d', { initial: 'a', issuedAt: start })], { busy: true });
  t.same(r.d.kind, 'busy', 'd -> a is the initial site: 585 -> 570');
});

t.test('overflow through a dead site (DNS failover of its Site Name) still comes back round', async (t) => {
  const zone = [...compileText(THREE).zones.values()][0];
  const [a, , c] = ['a', 'b', 'c'].map((s) => ctxFor(zone, s));
  // a is busy and sends the client to b.three.test; b is dead, so DNS failover answers c.
  const toB = marker('b', { initial: 'a', issuedAt: Math.floor(NOW / 1000) - 3 });
  let r = run(c, 'b.three.test', [toB], { busy: true });
  t.same(redirect(r.d), { stage: 540, host: 'c.three.test', marker: marker('c', { initial: 'a', issuedAt: Math.floor(NOW / 1000) - 3 }) }, 'the overflow marker is carried over to this Site Name');
  r = run(c, 'c.three.test', [(r.d as { marker: MarkerFields }).marker], { busy: true });
  t.equal(redirect(r.d).host, 'd.three.test');
  // A chain that lands back on its initial site through failover ends there.
  r = run(a, 'a.three.test', [marker('a', { initial: 'a' })], { busy: true });
  t.same(r.d, { kind: 'busy', stage: 570, reason: 'overflow came back to a' });
  // A forged or plain marker on another Site Name is not carried over.
  r = run(c, 'b.three.test', [marker('b')], { busy: true });
  t.same(redirect(r.d).marker, marker('c'));
});

t.test('groups without a pool: step 2 redistributes to the site\'s group', async (t) => {
  const zone = [...compileText(`zone: g.test
soa: { mname: ns1.g.test, rname: h.g.test }
nameservers: { ns1.g.test: [192.0.2.1] }
sites:
  a: { addresses: [192.0.2.10] }
  b: { addresses: [192.0.2.11] }
groups: { eu: [a, b] }
`).zones.values()][0];
  const a = ctxFor(zone, 'a');
  t.same(redirect(run(a, 'a.g.test', []).d), { stage: 545, host: 'eu.g.test', marker: undefined });
  t.equal(redirect(run(a, 'eu.g.test', []).d).stage, 540);
});
