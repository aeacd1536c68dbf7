#!/usr/bin/env node
/**
 * DO=1 against DO=0 QPS of one signed sitedns, side by side: bench/qps's names (the Pool Name, a
 * Group Name, a Site Name, a static A, a name that does not exist) from one process serving the
 * zone signed (bench/dnssec/serve.mjs), dnsperf alternating DO=0 (EDNS only) and DO=1 (-D) runs
 * so both see the same machine. Signatures are made at load: a DO=1 query signs nothing.
 *   npm run build && node bench/dnssec/qps.mjs [--duration 10] [--rounds 3] [--clients 4] [--names pool,americas,boston,static,nope] [--json FILE]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dnsperf, machine, mean, requireDnsperf } from '../qps/lib.mjs';
import { ZONE, sitednsZone } from '../qps/zones.mjs';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const duration = Number(flag('--duration', '10'));
const rounds = Number(flag('--rounds', '3'));
const clients = Number(flag('--clients', '4'));
const json = flag('--json', null);
const names = flag('--names', 'pool,americas,boston,static,nope').split(',');
requireDnsperf(false, { gdnsd: false });

const dir = mkdtempSync(join(tmpdir(), 'sitedns-dnssec-qps-'));
writeFileSync(join(dir, 'bench.yaml'), sitednsZone() + 'dnssec: true\n');
const server = spawn(process.execPath, [fileURLToPath(new URL('./serve.mjs', import.meta.url)), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const [first] = await once(server.stdout, 'data');
  const { port } = JSON.parse(first.toString());
  const queries = names.map((n) => ({ name: `${n}.${ZONE}`, type: 'A' }));
  const qps = { do0: [], do1: [] };
  for (let round = 0; round < rounds; round++) {
    for (const kind of ['do0', 'do1']) {
      const r = await dnsperf({ port, queries, seconds: duration, clients, edns: true, dnssecOk: kind === 'do1' });
      qps[kind].push(r.qps);
    }
  }
  const result = { machine: machine(), duration, rounds, clients, names, qpsDo0: Math.round(mean(qps.do0)), qpsDo1: Math.round(mean(qps.do1)), ratio: Math.round((mean(qps.do1) / mean(qps.do0)) * 100) / 100, perRound: qps };
  if (json) writeFileSync(json, JSON.stringify(result, null, 2));
  console.log(`DO=0 ${result.qpsDo0} QPS, DO=1 ${result.qpsDo1} QPS: DO=1/DO=0 = ${result.ratio} (dnsperf -c ${clients}, ${duration}s x ${rounds} rounds, names: ${names.join(', ')})`);
} finally {
  server.kill('SIGTERM');
  await once(server, 'exit');
  rmSync(dir, { recursive: true, force: true });
}
