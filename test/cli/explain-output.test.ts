/**
 * The commands that print a table, against a real `sitedns serve` with demo backends: `explain`
 * (GET /v1/explain through the admin listener), and `--output json` of status, probe --once,
 * explain and demo, which prints the report the table is made from. `demo` refuses what it
 * cannot do: a load that is not a number, a backend port someone else holds.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { probedZone } from '../helpers/backends.js';
import { tempZonesDir } from '../helpers/dns.js';
import { CLI, freeTcpPort, startSitedns } from '../helpers/net.js';

const exec = promisify(execFile);

/** Runs the CLI; resolves with the exit code and both outputs, whatever the code. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Someone else's listener on a port: it hangs up on every connection (probes of it fail at once). */
async function listenSquatter(port: number, host: string): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy()).listen(port, host);
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return server;
}

const zoneText = (portA: number, portB: number) =>
  probedZone(`http://127.0.0.1:${portA}/health`, `http://127.0.0.1:${portB}/health`, { zone: 'out.test', rest: 'pool: { name: "@", policy: first }\nrecords:\n  www: { CNAME: out.test. }\n' });

t.test('explain, and --output json wherever a table is printed', async (t) => {
  const dir = tempZonesDir({ 'out.yaml': zoneText(await freeTcpPort(), await freeTcpPort()) });
  const ns = await startSitedns(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--demo-backends']);
  t.teardown(() => ns.stop());
  const http = `127.0.0.1:${(await ns.waitForLog((l) => l.msg === 'admin listening')).port}`;

  await t.test('explain: the answer, why, and the candidates', async (t) => {
    const r = await cli('explain', 'out.test', '--client', '198.51.100.7', '--http', http);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^out\.test A from 198\.51\.100\.7: NOERROR \(zone out\.test\)$/m);
    t.match(r.stdout, /^ {2}out\.test +0 +A +192\.0\.2\.10$/m, 'the answer record');
    t.match(r.stdout, /^why: pool name out\.test: a \(/m);
    t.match(r.stdout, /^policy: first, IPv4/m);
    t.match(r.stdout, /^SITE +STATE +LOAD +UTIL +ADDRESSES +CHOSEN +CHANCE +WHY$/m);
    t.match(r.stdout, /^a +up +\S+ +\S+ +192\.0\.2\.10 +yes +100% +/m, 'a is chosen, always');
    t.match(r.stdout, /^b +up +\S+ +\S+ +192\.0\.2\.20 {2,}0% +/m, 'b is not');
    t.match(r.stdout, /^state: version \d+, fresh/m);

    const json = await cli('explain', 'www.out.test', '--type', 'AAAA', '--http', http, '--output', 'json');
    t.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout);
    t.same(body.question, { name: 'www.out.test', type: 'AAAA', client: '127.0.0.1', ecs: null }, 'the type and the default client were asked');
    t.equal(body.answer[0].type, 'CNAME');

    const nx = await cli('explain', 'nope.out.test', '--http', http);
    t.match(nx.stdout, /^nope\.out\.test A from 127\.0\.0\.1: NXDOMAIN/m);
    t.match(nx.stdout, /^authority:\n {2}out\.test +\d+ +SOA /m);

    const badType = await cli('explain', 'out.test', '--type', 'NOPE', '--http', http);
    t.equal(badType.code, 1);
    t.equal(badType.stderr, 'sitedns explain: GET /v1/explain?name=out.test&type=NOPE&client=127.0.0.1: HTTP 400: type=NOPE: not a record type (A, AAAA, TXT, TYPE65, ...)\n');
    const noName = await cli('explain', '--http', http);
    t.equal(noName.code, 1);
    t.match(noName.stderr, /^sitedns explain: usage: sitedns explain <name>/);
    const nobody = await cli('explain', 'out.test', '--http', `127.0.0.1:${await freeTcpPort()}`);
    t.equal(nobody.code, 1);
    t.match(nobody.stderr, /cannot reach the admin listener at 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  await t.test('status: table, --output json (-o json), --json', async (t) => {
    const table = await cli('status', '--http', http);
    t.match(table.stdout, /^SITE +STATE +LOAD +UTIL +LAST CHECK +WHY$/m);
    for (const args of [['--output', 'json'], ['-o', 'json'], ['--json']]) {
      const r = await cli('status', '--http', http, ...args);
      t.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      t.same(report.sites.map((s: any) => s.site).sort(), ['out.test/a', 'out.test/b'], `${args.join(' ')}: the report`);
    }
    const bad = await cli('status', '--http', http, '--output', 'yaml');
    t.equal(bad.code, 1);
    t.equal(bad.stderr, 'sitedns status: --output: "yaml" is not table or json\n');
  });

  await t.test('demo: a table or JSON; a load that is not a number is refused before anything is sent', async (t) => {
    const list = await cli('demo', '--http', http);
    t.match(list.stdout, /^SITE +ADDRESS +STATE +LOAD$/m);
    t.match(list.stdout, /^a +127\.0\.0\.1:\d+ +running +/m);
    const json = JSON.parse((await cli('demo', 'list', '--http', http, '--output', 'json')).stdout);
    t.same(json.backends.map((b: any) => b.site).sort(), ['a', 'b']);
    const fixed = await cli('demo', 'load', 'a', '42', '--http', http);
    t.equal(fixed.stdout, 'a: running, load 42 (fixed)\n');
    for (const [args, message] of [
      [['load', 'a', 'abc'], 'sitedns demo: load: "abc" is not a load (a number >= 0) or drift'],
      [['load', 'a', '1e400'], 'sitedns demo: load: "1e400" is not a load (a number >= 0) or drift'],
      [['stop', 'a', 'now'], 'sitedns demo: usage: sitedns demo [list | stop <site> | start <site> | load <site> <n|drift>]'],
      [['dance', 'a'], 'sitedns demo: usage: sitedns demo [list | stop <site> | start <site> | load <site> <n|drift>]'],
    ] as const) {
      const r = await cli('demo', ...args, '--http', http);
      t.equal(r.code, 1, `${args.join(' ')}: exit 1`);
      t.equal(r.stderr, `${message}\n`);
    }
    t.match(JSON.parse((await cli('demo', '--http', http, '-o', 'json')).stdout).backends.find((b: any) => b.site === 'a'), { load: 42, fixed: true }, 'the refused loads changed nothing');
  });

  await t.test('a demo backend that cannot start again says why (409)', async (t) => {
    const a = JSON.parse((await cli('demo', '--http', http, '-o', 'json')).stdout).backends.find((b: any) => b.site === 'a');
    t.equal((await cli('demo', 'stop', 'a', '--http', http)).code, 0);
    const [host, port] = a.address.split(':');
    const squatter = await listenSquatter(Number(port), host);
    t.teardown(() => squatter.close());
    const r = await cli('demo', 'start', 'a', '--http', http);
    t.equal(r.code, 1);
    t.match(r.stderr, `HTTP 409: a's endpoint ${a.address}: address already in use (EADDRINUSE)`);
  });
});

t.test('probe --once --output json: the report its table is made from', async (t) => {
  const dir = tempZonesDir({ 'out.yaml': zoneText(await freeTcpPort(), await freeTcpPort()) });
  const r = await cli('probe', '--zones', dir, '--once', '--startup-limit', '2s', '--output', 'json');
  t.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  t.same(report.sites.map((s: any) => [s.site, s.state]), [['out.test/a', 'down'], ['out.test/b', 'down']], 'nothing listens on the probes\' ports');
  t.equal(report.store.kind, 'none (--once)');
});

t.test('serve --demo-backends fails its start when a backend\'s port is taken', async (t) => {
  const squatter = await listenSquatter(0, '127.0.0.1');
  t.teardown(() => squatter.close());
  const taken = (squatter.address() as net.AddressInfo).port;
  const dir = tempZonesDir({ 'out.yaml': zoneText(await freeTcpPort(), taken) });
  const r = await cli('serve', '--zones', dir, '--listen', '127.0.0.1:0', '--http', 'off', '--demo-backends', '--udp-threads', '0');
  t.equal(r.code, 1, 'exit 1: it does not probe the other listener');
  t.equal(r.stderr, `sitedns serve: --demo-backends: b's endpoint 127.0.0.1:${taken} (its probe's target): address already in use (EADDRINUSE); stop what listens there, or serve without --demo-backends\n`);
  const fatal = r.stdout.split('\n').filter((l) => l.includes('"fatal"')).map((l) => JSON.parse(l));
  t.equal(fatal.length, 1, 'one fatal log line');
  t.equal(fatal[0].code, 'EDEMO_LISTEN');
  t.notOk('err' in fatal[0], 'no stack for a foreseen failure');
});
