#!/usr/bin/env node
/**
 * bench/scale/probed.mjs: the steady-state cost of following 10,000 probed sites.
 *
 *   npm run build && node bench/scale/probed.mjs                  # 100 files, 10,000 probed sites
 *   node bench/scale/probed.mjs --seconds 10 --udp-threads 0      # shorter, UDP on the main thread
 *   node bench/scale/probed.mjs --skip 45                         # over the second probe round
 *
 * Generates the bench/scale zone set (100,000 names in 100 files, 100 sites each) with a TCP
 * probe on every site (`{ tcp: <listener>, interval: 60s }`) against a local listener that
 * accepts and closes, starts `serve --udp-threads N` (default auto, as `serve`), waits for "first
 * probe round done" and for the UDP threads to listen, then samples the CPU time
 * (/proc/<pid>/stat, user + system, every thread) and RSS every --every seconds for --seconds
 * seconds (RSS also every 250 ms, for its range).
 *
 * With `interval: 60s` the whole first round runs at start (spread over 250 ms) and the second
 * one 54-66 s later (±10 % jitter), so the 40 s right after the first round see no probe result
 * at all: they measure the follower's timers (tick, re-read). `--skip 45` starts sampling 45 s
 * after the first round, so the window holds the second round (~167 results a second).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, load, machine, procStat, startProcess, TICKS_PER_SECOND } from '../qps/lib.mjs';
import { generate } from './generate.mjs';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '100000' },
    'udp-threads': { type: 'string', default: 'auto' },
    seconds: { type: 'string', default: '40' },
    every: { type: 'string', default: '5' },
    skip: { type: 'string', default: '0' },
    interval: { type: 'string', default: '60s' },
  },
});
const seconds = Number(values.seconds);
const every = Number(values.every);

// The probes' target: accepts and closes (a TCP probe counts a completed connect as up).
const listener = net.createServer((socket) => socket.destroy());
await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
const target = `127.0.0.1:${listener.address().port}`;

const dir = mkdtempSync(join(tmpdir(), 'sitedns-probed-'));
const { zones } = generate(dir, Number(values.names), { probe: `{ tcp: "${target}", interval: ${values.interval} }` });
const info = machine();
console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}; load ${load()}`);
console.log(`zone set: ${values.names} names in ${zones} files, ${zones * 100} sites probed (tcp ${target}, every ${values.interval}); serve --udp-threads ${values['udp-threads']}`);

function rssMB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

let server;
try {
  const t0 = performance.now();
  server = await startProcess(process.execPath, [CLI, 'serve', '--zones', dir, '--listen', '127.0.0.1:0', '--udp-threads', values['udp-threads'], '--http', 'off', '--log-level', 'info'], {
    label: 'sitedns',
    timeoutMs: 180_000,
    maxLines: 20_000,
    ready: (line) => line.includes('"msg":"first probe round done"') || line.includes('start-up limit reached'),
  });
  console.log(`${server.line.includes('first probe round done') ? 'first probe round done' : 'START-UP LIMIT REACHED before the first round'} after ${Math.round(performance.now() - t0)} ms`);
  // Wait for the listeners too (the UDP threads' compile is not the steady state).
  while (!server.lines.some((l) => l.includes('"msg":"listening on UDP and TCP"'))) await new Promise((r) => setTimeout(r, 100));
  const pids = () => [server.proc.pid];
  if (Number(values.skip) > 0) await new Promise((r) => setTimeout(r, Number(values.skip) * 1000));
  const watched = pids();
  const range = new Map(watched.map((p) => [p, { min: Infinity, max: 0 }]));
  const rssTimer = setInterval(() => {
    for (const p of watched) {
      const r = rssMB(p);
      const x = range.get(p);
      x.min = Math.min(x.min, r);
      x.max = Math.max(x.max, r);
    }
  }, 250);
  const start = new Map(watched.map((p) => [p, procStat(p)?.ticks ?? NaN]));
  let last = new Map(start);
  const startedAt = performance.now();
  console.log(`pid: ${watched.join(', ')}; sampling from ${values.skip} s after the first round`);
  for (let t = every; t <= seconds; t += every) {
    await new Promise((r) => setTimeout(r, startedAt + t * 1000 - performance.now()));
    const row = watched.map((p) => {
      const now = procStat(p)?.ticks ?? NaN;
      const pct = (((now - last.get(p)) / TICKS_PER_SECOND) * 100) / every;
      last.set(p, now);
      return `CPU ${pct.toFixed(1).padStart(5)} %  RSS ${String(rssMB(p)).padStart(4)} MB`;
    });
    console.log(`t=${String(t).padStart(3)} s  ${row.join('   |   ')}`);
  }
  clearInterval(rssTimer);
  const wall = (performance.now() - startedAt) / 1000;
  for (const p of watched) {
    const pct = (((last.get(p) - start.get(p)) / TICKS_PER_SECOND) * 100) / wall;
    const r = range.get(p);
    console.log(`process: ${pct.toFixed(1)} % of a core over ${wall.toFixed(0)} s; RSS ${r.min}-${r.max} MB (sampled every 250 ms); load ${load()}`);
  }
} finally {
  await server?.stop();
  listener.close();
  rmSync(dir, { recursive: true, force: true });
}
