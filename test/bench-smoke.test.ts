/**
 * CI runs every bench once at a tiny size so they keep working. Nothing here is timed:
 * the assertions are about the benches completing and reporting, not about speed.
 * Skips what needs dnsperf (or gdnsd) when it is not installed.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Six bench runs start servers and dnsperf runs: allow more than the per-file default on a busy CI box.
t.setTimeout(500_000);

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const run = (args: string[]) => spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 170_000, env: { ...process.env, SITEDNS_UDP_THREADS: '' } });
const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));

t.test('bench/qps/lib.mjs answerRecords, aRecords: the answers of a reply, its A addresses', async (t) => {
  // @ts-expect-error: bench/qps/lib.mjs is JavaScript without type declarations
  const { answerRecords, aRecords } = await import('../bench/qps/lib.mjs');
  const rr = (owner: number[], type: number, rdata: number[]) => [...owner, 0, type, 0, 1, 0, 0, 0, 5, 0, rdata.length, ...rdata];
  const pointer = [0xc0, 12];
  const reply = (answers: number[][]) =>
    Buffer.from([0, 1, 0x84, 0, 0, 1, 0, answers.length, 0, 0, 0, 0, 1, 0x61, 1, 0x62, 0, 0, 1, 0, 1, ...answers.flat()]);
  t.same(aRecords(reply([])), [], 'no answers');
  t.same(aRecords(reply([rr(pointer, 1, [192, 0, 2, 1])])), ['192.0.2.1'], 'a compressed owner');
  const mixed = reply([rr(pointer, 5, [1, 0x63, 0xc0, 12]), rr([1, 0x63, 1, 0x61, 1, 0x62, 0], 1, [192, 0, 2, 1]), rr(pointer, 28, new Array(16).fill(0)), rr([1, 0x63, 0xc0, 12], 1, [192, 0, 2, 2])]);
  t.same(aRecords(mixed), ['192.0.2.1', '192.0.2.2'], 'a CNAME and an AAAA stepped over; owners whole, compressed or labels then a pointer');
  t.same(answerRecords(mixed).map((r: { type: number; rdata: Buffer }) => [r.type, r.rdata.length]), [[5, 4], [1, 4], [28, 16], [1, 4]], 'every answer, its type and RDATA');
});

t.test('bench/qps/handler.mjs: in-process handler cost and allocations', async (t) => {
  const r = run(['--expose-gc', 'bench/qps/handler.mjs', '--n', '2000', '--repeat', '1', '--json']);
  t.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  t.equal(rows.length, 18, 'four name kinds: prebuilt, prebuilt with the observer, general; three signed NXDOMAIN kinds: prebuilt, general');
  t.ok(rows.filter((x: any) => x.path !== 'general' && x.path !== 'signed-gen').every((x: any) => x.prebuiltAnswers > 0), 'the prebuilt rows used prebuilt answers (DO=1 NXDOMAIN included)');
  t.ok(rows.filter((x: any) => x.path === 'general' || x.path === 'signed-gen').every((x: any) => x.prebuiltAnswers === 0), 'the general rows used none');
});

t.test('bench/qps/rrl.mjs: what rate limiting adds per query', async (t) => {
  const r = run(['bench/qps/rrl.mjs', '--n', '2000', '--repeat', '1', '--json']);
  t.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  t.same(rows.map((x: any) => x.family), [4, 6], 'IPv4 and IPv6 clients');
  t.ok(rows.every((x: any) => x.handlerNs > 0 && x.withRrlNs > 0), 'both timed');
});

t.test('bench/qps/run.mjs at a tiny size', { skip: have('dnsperf') ? false : 'dnsperf not installed' }, async (t) => {
  const json = join(out, 'qps.json');
  const args = ['bench/qps/run.mjs', '--duration', '1', '--latency-duration', '1', '--rounds', '1', '--kinds', 'pool', '--threads', '2', '--no-install', '--json', json];
  if (!have('gdnsd')) args.push('--no-gdnsd');
  const addon = process.env.SITEDNS_REQUIRE_ADDON === '1'; // serve --udp-threads needs it
  const r = run(args);
  t.equal(r.status, 0, r.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8'));
  const servers = new Set(result.rows.map((row: any) => row.server));
  t.ok(servers.has('sitedns-auto'), 'sitedns with UDP on the main thread measured');
  if (addon) t.ok(servers.has('sitedns-threads'), 'the default serve --udp-threads N measured (UDP and TCP, checked below)');
  if (have('gdnsd')) t.ok(servers.has('gdnsd'), 'gdnsd measured');
  for (const row of result.rows) t.ok(row.udp.completed > 0 && row.tcp.completed > 0, `${row.kind} ${row.label}: answers over UDP and TCP`);
  t.match(r.stdout, /\| kind \| server \| UDP QPS/, 'summary table printed');
});

t.test('bench/qps/cpu.mjs at a tiny size: CPU per query, and the echo floor', { skip: have('dnsperf') ? false : 'dnsperf not installed' }, async (t) => {
  const json = join(out, 'cpu.json');
  // 2 s: CPU time comes in 10 ms ticks, and a C echo spends ~25 ms on 2,000 queries.
  const addon = process.env.SITEDNS_REQUIRE_ADDON === '1';
  const r = run(['bench/qps/cpu.mjs', '--rate', '2000', '--seconds', '2', '--rounds', '1', '--warmup', '1', '--kinds', 'site', '--threads', '2', '--no-install', '--json', json]);
  t.equal(r.status, 0, r.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8'));
  const servers = new Set(result.rows.map((row: any) => row.server));
  t.ok(servers.has('sitedns') && servers.has('node-echo'), 'sitedns and the Node.js echo floor measured');
  if (have('cc') || have('gcc')) t.ok(servers.has('c-echo-blocking') && servers.has('c-echo-epoll'), 'both C echo floors measured');
  // Built with node-gyp like the batched addon, which CI requires (SITEDNS_REQUIRE_ADDON=1).
  if (addon) t.ok(servers.has('sitedns-threads'), 'serve --udp-threads measured');
  if (have('gdnsd')) t.ok(servers.has('gdnsd'), 'gdnsd measured');
  for (const row of result.rows) t.ok(row.usPerQuery > 0 && row.lost === 0, `${row.label}: answered, CPU counted`);
  t.match(r.stdout, /\| kind \| server \| answered QPS \| CPU µs\/query/, 'summary table printed');
  t.match(r.stdout, /1 round\(s\) after a 1 s warm-up per server/, 'every server warmed up (unmeasured) before the rounds');
});

t.test('bench/qps/spin.mjs at a tiny size: serve --udp-spin, full speed and CPU at a fixed rate', { skip: have('dnsperf') ? false : 'dnsperf not installed' }, async (t) => {
  const json = join(out, 'spin.json');
  const addon = process.env.SITEDNS_REQUIRE_ADDON === '1'; // serve --udp-threads needs it
  const r = run(['bench/qps/spin.mjs', '--seconds', '1', '--rounds', '1', '--rates', '1000', '--spins', '0,50', '--kinds', 'site', '--threads', '2', '--no-install', '--json', json]);
  t.equal(r.status, 0, r.stderr);
  if (!existsSync(json)) {
    t.notOk(addon, 'serve --udp-threads available where the addon is required (SITEDNS_REQUIRE_ADDON=1)');
    t.match(r.stdout, /serve --udp-threads is unavailable here/, 'says why it measured nothing');
    return;
  }
  const result = JSON.parse(readFileSync(json, 'utf8'));
  const servers = new Set(result.rows.map((row: any) => row.server));
  t.ok(servers.has('spin-0') && servers.has('spin-50'), 'both --udp-spin values measured');
  if (have('gdnsd')) t.ok(servers.has('gdnsd'), 'gdnsd measured');
  t.same([...new Set(result.rows.map((row: any) => row.phase))], ['full', 'rate'], 'full speed, then the fixed rate');
  for (const row of result.rows) t.ok(row.completed > 0 && Number.isFinite(row.usPerQuery), `${row.phase} ${row.label}: answered, CPU counted`);
  for (const row of result.rows.filter((x: any) => x.server.startsWith('spin-'))) t.ok(Number.isInteger(row.spinHits) && Number.isInteger(row.spinMisses), `${row.phase} ${row.label}: spin outcomes read from /metrics`);
  t.ok(result.rows.filter((x: any) => x.server === 'spin-0').every((x: any) => x.spinHits === 0 && x.spinMisses === 0), '--udp-spin 0 never polls');
  t.match(r.stdout, /\| kind \| server \| UDP QPS/, 'full-speed table printed');
  t.match(r.stdout, /\| kind \| -Q rate \| server \| answered QPS \| CPU µs\/query/, 'fixed-rate table printed');
});

t.test('bench/qps/latency.mjs at a tiny size: percentiles at fixed rates, the floor, and the piped way', { skip: have('dnsperf') ? false : 'dnsperf not installed' }, async (t) => {
  const json = join(out, 'latency.json');
  const addon = process.env.SITEDNS_REQUIRE_ADDON === '1'; // serve --udp-threads needs it
  const r = run(['bench/qps/latency.mjs', '--seconds', '1', '--full-seconds', '1', '--full-rounds', '1', '--repeats', '1', '--rates', 'half,1000', '--kinds', 'site', '--threads', '2', '--compare-pipe', '--no-install', '--json', json]);
  t.equal(r.status, 0, r.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8'));
  const servers = new Set(result.runs.map((row: any) => row.server));
  if (addon) t.ok(servers.has('sitedns-threads'), 'serve --udp-threads measured');
  if (have('gdnsd')) t.ok(servers.has('gdnsd'), 'gdnsd measured');
  if (have('cc') || have('gcc')) {
    t.ok(result.runs.some((row: any) => row.server === 'c-echo-blocking' && row.spec === '1000'), 'the echo floor measured at the fixed rate');
    t.notOk(result.runs.some((row: any) => row.server === 'c-echo-blocking' && row.spec === 'half'), 'but not at "half" (it has no maximum that matters)');
  }
  t.same([...new Set(result.runs.map((row: any) => row.via))].sort(), ['file', 'pipe'], 'latencies collected both ways (--compare-pipe)');
  for (const row of result.runs) t.ok(row.p50Ms > 0 && row.p99Ms >= row.p50Ms && row.p999Ms >= row.p99Ms, `${row.spec} ${row.label} ${row.via}: percentiles in order`);
  t.match(r.stdout, /\| kind \| -Q rate \| server \| p50 ms \| p99 ms \(median\)/, 'summary table printed');
});

t.test('bench/qps/latency.mjs --pin-client/--pin-servers: every process of every server pinned', { skip: have('dnsperf') && have('taskset') ? false : 'dnsperf or taskset not installed' }, async (t) => {
  const json = join(out, 'latency-pinned.json');
  const r = run(['bench/qps/latency.mjs', '--seconds', '1', '--full-seconds', '1', '--full-rounds', '1', '--repeats', '1', '--rates', '1000', '--kinds', 'site', '--threads', '2', '--pin-client', '0', '--pin-servers', '0', '--no-install', '--json', json]);
  t.equal(r.status, 0, r.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8'));
  t.match(result.settings, { pinClient: '0', pinServers: '0' }, 'the pinning recorded with the figures');
  t.ok(result.runs.length > 0 && result.runs.every((row: any) => row.command.startsWith('taskset -c 0 dnsperf ')), 'dnsperf ran under taskset');
  if (have('cc') || have('gcc')) t.match(r.stdout, /C echo 2p, blocking recvmmsg \(floor\): 2 process\(es\) on CPUs 0/, "the echo floor's forked process pinned too");
});

t.test('bench/balance-live/run.mjs at a tiny size: every scenario measured, the ramp tabled', async (t) => {
  const json = join(out, 'balance-live.json');
  const r = run(['bench/balance-live/run.mjs', '--seconds', '4', '--warmup', '1', '--capacities', '10,10,5', '--session', '2', '--interval', '500ms', '--down', '1', '--json', json]);
  t.equal(r.status, 0, r.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8'));
  t.same(result.results.map((x: any) => x.scenario), ['least-busy', 'load-per-answer', 'round-robin', 'ramp'], 'four scenarios, one sitedns each');
  // A query lost on a busy machine is tolerated; a name that is not answered is not.
  for (const row of result.results) t.ok(row.answered > 0 && row.unanswered <= row.answered / 10, `${row.scenario}: the Pool Name answered, sessions held`);
  for (const row of result.results.filter((x: any) => x.scenario !== 'ramp')) t.ok(row.peak >= 1 && row.mean >= 1 && row.peak >= row.mean, `${row.scenario}: the busiest site over the balanced level`);
  const ramp = result.results.find((x: any) => x.scenario === 'ramp').ramp;
  t.equal(ramp.bound, 0.4, "the restarted site's bound: twice its capacity share");
  t.ok(ramp.restartedAtS > ramp.killedAtS && ramp.rows.length > 0, 'killed, restarted, its answers per interval tabled');
  t.match(r.stdout, /\| scenario \| policy \| peak \/ balanced/, 'summary table printed');
  t.match(r.stdout, /\| second \| answers to it \| all answers/, 'ramp table printed');
});

t.test('bench/scale/probed.mjs at a tiny size: following probed sites', async (t) => {
  const r = run(['bench/scale/probed.mjs', '--names', '2000', '--seconds', '2', '--every', '1', '--udp-threads', '2']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /first probe round done after \d+ ms/, 'the first probe round completed');
  t.match(r.stdout, /process: [\d.]+ % of a core over \d+ s; RSS \d+-\d+ MB/, 'the process measured');
});

t.test('bench/scale/run.mjs at a tiny size', { skip: have('dnsperf') ? false : 'dnsperf not installed' }, async (t) => {
  const json = join(out, 'scale.json');
  const addon = process.env.SITEDNS_REQUIRE_ADDON === '1';
  const r = run(['bench/scale/run.mjs', '--names', '1500', '--duration', '3', '--rate', '200', '--threads', '2', '--main-thread', '--no-install', '--json', json]);
  t.equal(r.status, 0, r.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(result.compile.problems, 0, 'the generated zones compile');
  t.ok(result.compile.names >= 1500);
  t.equal(result.mainThread.rssMB.length, 1, 'RSS of the one process');
  t.ok(result.mainThread.dnsperf.completed > 0, '--udp-threads 0: queries answered during the reload');
  if (addon) t.ok(result.udpThreads.dnsperf.completed > 0 && result.udpThreads.reloadMs > 0, '--udp-threads 2: answered during a reload that rolled through the threads');
});

t.test('bench/tcp-flood/run.mjs at a tiny size: idle connections, a TCP client and UDP capacity', { skip: have('dnsperf') ? false : 'dnsperf not installed' }, async (t) => {
  const r = run(['bench/tcp-flood/run.mjs', '--seconds', '1', '--slots', '100', '--sources', '10', '--legit-rate', '20']);
  t.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => l.startsWith('{"layout"')).map((l) => JSON.parse(l));
  t.same(rows.map((row) => row.layout), ['one', 'spread'], 'both layouts measured');
  for (const row of rows) t.ok(row.udpAlone > 0 && row.udpAttacked > 0 && row.attackerOpen > 0, `${row.layout}: UDP measured with and without the attacker's connections`);
  t.match(r.stdout, /\| layout \| attacker connected \| UDP QPS alone/, 'summary table printed');
});

t.test('bench/dnssec/compile.mjs at a tiny size: a signed zone set against the same unsigned', async (t) => {
  const r = run(['bench/dnssec/compile.mjs', '--names', '1000', '--json']);
  t.equal(r.status, 0, r.stderr);
  const [unsigned, signed] = JSON.parse(r.stdout);
  t.same([unsigned.kind, signed.kind, unsigned.problems, signed.problems], ['unsigned', 'signed', 0, 0]);
  t.equal(unsigned.rrsigs, 0);
  t.ok(signed.rrsigs > signed.names, 'every name signed, and its NSEC');
});

t.test('bench/dnssec/qps.mjs at a tiny size: DO=1 and DO=0 side by side', { skip: have('dnsperf') ? false : 'dnsperf not installed' }, async (t) => {
  const json = join(out, 'dnssec-qps.json');
  const r = run(['bench/dnssec/qps.mjs', '--duration', '1', '--rounds', '1', '--json', json]);
  t.equal(r.status, 0, r.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8'));
  t.ok(result.qpsDo0 > 0 && result.qpsDo1 > 0, 'both measured');
});

t.test('bench/dnssec/failover.mjs, one kill: a signed failover answer, then validated by delv', { skip: have('delv') && have('dig') ? false : 'delv or dig not installed' }, async (t) => {
  const r = run(['bench/dnssec/failover.mjs', '--kills', '1', '--json']);
  t.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  t.equal(result.rounds.length, 1);
  t.ok(result.do1Ms.max > 0 && result.do1Ms.max < 10_000, `signed answer after ${result.do1Ms.max} ms`);
  t.ok(result.validatedMs.max >= result.do1Ms.max - 50, 'validated no sooner than answered (one delv run of slack)');
});
