/** explain runs the same lookup and policy as the handler: its answer is the handler's answer. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { explain } from '../../src/admin/explain.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { makeSnapshot, type SiteState } from '../../src/state/snapshot.js';
import { compileText, decode, ecsOption, fixedEnv, query } from '../helpers/dns.js';

const SAMPLE = readFileSync(new URL('../fixtures/app.example.com.yaml', import.meta.url), 'utf8');

function wireAnswer(handler: Handler, name: string, type: string, client: string): { rcode: number; data: string[] } | null {
  const out = handler.handle(query(name, type, { edns: {} }), { transport: 'udp', clientAddress: client });
  if (out === null) return null;
  const d = decode(out);
  return { rcode: d.rcode, data: d.answers.map((r: any) => String(r.address ?? r.domain ?? r.exchange ?? (Array.isArray(r.data) ? r.data.join('') : r.data))) };
}

function explainedData(e: any): string[] {
  return (e.answer ?? []).map((r: any) => (r.type === 'CNAME' ? r.data.replace(/\.$/, '') : r.type === 'TXT' ? JSON.parse(r.data) : r.type === 'MX' ? r.data.split(' ')[1].replace(/\.$/, '') : r.data));
}

const RCODES: Record<string, number> = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };

const states: Record<string, Record<string, SiteState>> = {
  'all up, loads differ': {
    'app.example.com/boston': { up: true, load: 80, utilization: 0.8 },
    'app.example.com/chicago': { up: true, load: 30, utilization: 0.3 },
    'app.example.com/geneva': { up: true, load: 25, utilization: 0.5 },
  },
  'boston down': {
    'app.example.com/boston': { up: false, reason: 'connection refused' },
    'app.example.com/chicago': { up: true, utilization: 0.9 },
    'app.example.com/geneva': { up: true, utilization: 0.1 },
  },
  'all down': {
    'app.example.com/boston': { up: false },
    'app.example.com/chicago': { up: false },
    'app.example.com/geneva': { up: false },
  },
};

const questions: [string, string][] = [
  ['app.example.com', 'A'],
  ['app.example.com', 'AAAA'],
  ['www.app.example.com', 'A'],
  ['americas.app.example.com', 'A'],
  ['europe.app.example.com', 'A'],
  ['boston.app.example.com', 'A'],
  ['boston.app.example.com', 'AAAA'],
  ['chicago.app.example.com', 'A'],
  ['geneva.app.example.com', 'A'],
  ['mail.app.example.com', 'A'],
  ['nope.app.example.com', 'A'],
  ['app.example.com', 'TXT'],
  ['example.org', 'A'],
];

for (const [label, sites] of Object.entries(states)) {
  t.test(`explain agrees with the handler: ${label}`, async (t) => {
    const env = fixedEnv();
    const runtime = new Runtime(compileText(SAMPLE), makeSnapshot(new Map(Object.entries(sites)), true, env.now()));
    const handler = new Handler(runtime, env);
    for (const [name, type] of questions) {
      for (const client of ['198.51.100.7', '203.0.113.9']) {
        const actual = wireAnswer(handler, name, type, client)!;
        const e: any = explain(runtime, handler.env, { name, type, client });
        t.equal(RCODES[e.rcode], actual.rcode, `${name} ${type} from ${client}: rcode ${e.rcode}`);
        t.same(explainedData(e).sort(), actual.data.sort(), `${name} ${type} from ${client}: ${actual.data.join(' ')}`);
        if (e.candidates) t.ok(typeof e.why === 'string' && e.selection.reason, 'says why');
      }
    }
  });
}

t.test('explain shows candidates, their state and load, and the policy reasoning', async (t) => {
  const env = fixedEnv();
  const runtime = new Runtime(compileText(SAMPLE), makeSnapshot(new Map(Object.entries(states['boston down'])), true, env.now() - 2000));
  const e: any = explain(runtime, env, { name: 'Boston.App.Example.Com.', type: 'a' });
  t.equal(e.policy, 'failover');
  t.equal(e.name.kind, 'site');
  t.same(e.candidates.map((c: any) => [c.site, c.up, c.chosen]), [['boston', false, false], ['chicago', true, true]]);
  t.equal(e.candidates[0].reason, 'connection refused');
  t.match(e.selection.reason, /failover: boston/);
  t.equal(e.state.ageSeconds, 2);
  t.match(e.why, /site name boston\.app\.example\.com: chicago/);

  const pool: any = explain(runtime, env, { name: 'app.example.com', client: '198.51.100.7' });
  t.equal(pool.policy, 'least-busy');
  t.same(pool.selection.sites, ['geneva'], 'a European client: the europe group by topology, geneva least busy');
  t.same(pool.candidates.map((c: any) => c.utilization), [null, 0.9, 0.1]);
});

t.test('random tie-breaks are reported; the answer is one of the tied sites', async (t) => {
  const env = fixedEnv();
  const runtime = new Runtime(compileText(SAMPLE)); // every site up, load unknown: all tied
  const e: any = explain(runtime, env, { name: 'app.example.com' });
  t.equal(e.usedRandom, true);
  t.match(e.why, /chosen partly at random/);
  t.ok(['boston', 'chicago', 'geneva'].includes(e.selection.sites[0]));
});

t.test('ECS and bad input', async (t) => {
  const env = fixedEnv();
  const runtime = new Runtime(compileText(SAMPLE));
  const e: any = explain(runtime, env, { name: 'boston.app.example.com', ecs: '198.51.100.77/24' });
  t.equal(e.question.ecs, '198.51.100.77/24');
  t.throws(() => explain(runtime, env, { name: '' }), { code: 'EEXPLAIN_INPUT' });
  t.throws(() => explain(runtime, env, { name: 'a.b', type: 'BOGUS' }), { code: 'EEXPLAIN_INPUT' });
  t.throws(() => explain(runtime, env, { name: 'a.b', client: 'x' }), { code: 'EEXPLAIN_INPUT' });
  t.throws(() => explain(runtime, env, { name: 'a.b', ecs: '1.2.3.4/40' }), { code: 'EEXPLAIN_INPUT' });
  void ecsOption;
});

t.test('explain reads the policies\' memory without moving it: round-robin', async (t) => {
  const text = SAMPLE.replace(/policy: least-busy/, 'policy: round-robin');
  const env = fixedEnv();
  const runtime = new Runtime(compileText(text));
  const handler = new Handler(runtime, env);
  for (let i = 0; i < 5; i++) {
    const predicted: any = explain(runtime, handler.env, { name: 'americas.app.example.com' });
    const again: any = explain(runtime, handler.env, { name: 'americas.app.example.com' });
    t.same(again.answer, predicted.answer, 'explaining twice does not advance the rotation');
    const actual = wireAnswer(handler, 'americas.app.example.com', 'A', '192.0.2.1')!;
    t.same(actual.data, predicted.answer.map((r: any) => r.data), `query ${i}: explain predicted ${actual.data}`);
  }
});

t.test('a draw is shown: every candidate\'s weight and probability, whatever the reason says', async (t) => {
  const env = fixedEnv();
  // The americas group (boston, chicago, capacity 100 each) at 0.35 / 0.25: mean 0.3, ceiling
  // 0.4, headroom weights 5 and 15. geneva is not in the client's group: no weight, no chance.
  const sites = { 'app.example.com/boston': { up: true, utilization: 0.35 }, 'app.example.com/chicago': { up: true, utilization: 0.25 }, 'app.example.com/geneva': { up: true, utilization: 0.1 } };
  const runtime = new Runtime(compileText(SAMPLE), makeSnapshot(new Map(Object.entries(sites)), true, env.now()));
  const e: any = explain(runtime, env, { name: 'app.example.com', client: '203.0.113.9' });
  t.equal(e.usedRandom, true);
  const bySite = Object.fromEntries(e.candidates.map((c: any) => [c.site, [c.weight === null ? null : Math.round(c.weight * 1000) / 1000, c.probability]]));
  t.same(bySite, { boston: [5, 0.25], chicago: [15, 0.75], geneva: [null, 0] });
  t.match(e.why, /chosen partly at random: chicago 75\.0 %, boston 25\.0 %/);
  t.same(e.otherOutcomes, {});
});

t.test('no draw: the answer is certain', async (t) => {
  const env = fixedEnv();
  const runtime = new Runtime(compileText(SAMPLE));
  const e: any = explain(runtime, env, { name: 'boston.app.example.com' });
  t.equal(e.usedRandom, false);
  t.same(e.candidates.map((c: any) => [c.site, c.weight, c.probability]), [['boston', null, 1], ['chicago', null, 0]]);
});

t.test('offload by load: the chances cover the offloaded draws even when the real query kept the primary', async (t) => {
  const zone = `zone: o.test
soa: { mname: ns1.o.test, rname: h.o.test }
nameservers: { ns1.o.test: [192.0.2.1] }
sites:
  p: { addresses: [192.0.2.10] }
  a: { addresses: [192.0.2.20] }
  b: { addresses: [192.0.2.30] }
pool: { name: "@", policy: offload, primary: p, offload: [a, b], thresholds: { offload: 0.5, throttle: 0.9, drop: 0.95 }, offload_choice: load, primary_keeps: 0 }
`;
  // p at 0.7: offload share (0.7 - 0.5) / 0.4 = 0.5; a and b equal: a quarter each.
  const sites = { 'o.test/p': { up: true, utilization: 0.7 }, 'o.test/a': { up: true, utilization: 0.2 }, 'o.test/b': { up: true, utilization: 0.2 } };
  const env = { ...fixedEnv(), random: () => 0.9 }; // the real query keeps the primary: one draw
  const runtime = new Runtime(compileText(zone), makeSnapshot(new Map(Object.entries(sites)), true, env.now()));
  const e: any = explain(runtime, env, { name: 'o.test' });
  t.same(e.selection.sites, ['p']);
  t.same(Object.fromEntries(e.candidates.map((c: any) => [c.site, c.probability])), { p: 0.5, a: 0.25, b: 0.25 });
});
