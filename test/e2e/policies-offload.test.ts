/**
 * End-to-end (real UDP, real admin HTTP): an offload pool moves answers to the offload sites when
 * the primary's pushed load crosses T1, throttles to the sorry address above T2, and drops above
 * T3. The load goes through the real report endpoint (POST /v1/sites/<zone>/<site>/load).
 */
import t from 'tap';
import { adminRequest } from '../../src/admin/http.js';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { startSitedns, udpQuery } from '../helpers/net.js';

const ZONE = `zone: app.example.com
soa: { mname: ns1.app.example.com, rname: hostmaster.example.com }
nameservers: { ns1.app.example.com: [192.0.2.53] }
sites:
  boston: { addresses: [203.0.113.10], capacity: 100, probe: { push_interval: 200ms } }
  chicago: { addresses: [203.0.113.20], threshold: 0.8, cost: 5 }
  geneva: { addresses: [198.51.100.30], threshold: 0.8, cost: 1 }
pool:
  name: "@"
  policy: offload
  primary: boston
  offload: [chicago, geneva]
  thresholds: { offload: 0.7, throttle: 0.9, drop: 0.97 }
  offload_choice: cost
  sorry: 192.0.2.250
`;
const TOKEN = 'test-token';
const NAMES: Record<string, string> = { '203.0.113.10': 'boston', '203.0.113.20': 'chicago', '198.51.100.30': 'geneva', '192.0.2.250': 'sorry' };

t.test('offload, throttle and drop follow the primary\'s reported load', async (t) => {
  const server = await startSitedns(['serve', '--zones', tempZonesDir({ 'app.yaml': ZONE }), '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--http-token', TOKEN]);
  t.teardown(() => server.stop());
  const admin = await server.waitForLog((l) => l.msg === 'admin listening');
  const base = `http://127.0.0.1:${admin.port}`;

  // Boston reports its load every 100 ms (it is a push-only site: silence would take it down).
  let load = 50;
  const push = async () => {
    const r = await adminRequest(base, 'POST', '/v1/sites/app.example.com/boston/load', { load }, TOKEN);
    if (r.status !== 202) throw new Error(`load report refused: ${r.status} ${JSON.stringify(r.body)}`);
  };
  await push();
  const timer = setInterval(() => void push().catch(() => undefined), 100);
  t.teardown(() => clearInterval(timer));

  /** Answers to `n` queries, by site name ('drop' when no reply came within `waitMs`). */
  const sample = async (n: number, waitMs = 2000) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const raw = await udpQuery(server.port, query('app.example.com', 'A', { id: i }), '127.0.0.1', waitMs);
      out.push(raw === null ? 'drop' : NAMES[decode(raw).answers[0]?.address] ?? 'other');
    }
    return out;
  };
  /** Polls until the state reached the server (no timing assertion: bounded retries). */
  const until = async (what: string, predicate: (answers: string[]) => boolean, n = 40, waitMs = 2000) => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const answers = await sample(n, waitMs);
      if (predicate(answers)) return answers;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`never saw: ${what}`);
  };

  const low = await until('boston answered while below T1', (a) => a.every((x) => x === 'boston'));
  t.ok(low.every((x) => x === 'boston'), 'u 0.50 < T1: the primary only');

  load = 85; // u 0.85: offload share (0.85 - 0.7) / (0.9 - 0.7) = 0.75
  const mid = await until('offload to geneva', (a) => a.filter((x) => x === 'geneva').length >= 25 && a.includes('boston'), 60);
  t.ok(mid.every((x) => x === 'boston' || x === 'geneva'), `T1 < u < T2: primary and the cheapest offload site (${count(mid)})`);
  t.notOk(mid.includes('sorry'), 'no throttling below T2');

  load = 95; // u 0.95: throttle share (0.95 - 0.9) / 0.07 = 0.71, the rest offloaded
  const high = await until('throttling to the sorry address', (a) => a.includes('sorry') && !a.includes('boston'), 60);
  t.ok(high.every((x) => x === 'sorry' || x === 'geneva'), `T2 < u < T3: sorry address and offload (${count(high)})`);

  load = 98; // u 0.98 >= T3: dropped
  const dropped = await until('drops', (a) => a.every((x) => x === 'drop'), 5, 500);
  t.same(dropped, ['drop', 'drop', 'drop', 'drop', 'drop'], 'u > T3: no response at all');

  load = 40;
  await until('back to the primary', (a) => a.every((x) => x === 'boston'), 20);
  t.pass('the primary answers again once its load falls below T1');
});

function count(answers: string[]): string {
  const c: Record<string, number> = {};
  for (const a of answers) c[a] = (c[a] ?? 0) + 1;
  return JSON.stringify(c);
}
