#!/usr/bin/env node
/**
 * bench/crash/restart.mjs: what a crash of the native code costs in the default mode.
 *
 *   npm run build && node bench/crash/restart.mjs                   # the sample zones, 3 runs
 *   node bench/crash/restart.mjs --names 100000 --runs 3            # a generated 100,000-name set
 *   node bench/crash/restart.mjs --udp-threads 0                    # UDP on the main thread
 *
 * The UDP threads of `serve` share one process, so a fault in the addon (a SIGSEGV in
 * native/udp-batch) ends every answerer at once, TCP included, until the supervisor starts the
 * process again. This script plays the supervisor the way systemd's `Restart=always` does (the
 * process is started again RestartSec after it ended: 100 ms, systemd's default), sends the
 * running `serve` SIGSEGV (`kill -SEGV`: the same end as a fault in the addon, without one), and
 * asks the same address for one name every 2 ms from before the kill until an answer comes.
 * Reported per run, from the kill: when the old process was gone, when the new one was started,
 * when it said "listening on UDP and TCP", and the first answer; then the median.
 *
 * A core dump would add its write time; `ulimit -c` and the kernel's core_pattern decide that,
 * and the script prints both. The zones decide most of the rest: the new process loads and
 * compiles them on the main thread's loader and in every UDP thread, and probes once (or waits
 * up to --startup-limit) before it listens.
 */
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, dnsQuery, freePort, load, machine } from '../qps/lib.mjs';
import { generate } from '../scale/generate.mjs';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '0' },
    zones: { type: 'string', default: 'zones' },
    name: { type: 'string', default: 'app.example.com' },
    runs: { type: 'string', default: '3' },
    'udp-threads': { type: 'string', default: 'auto' },
    'restart-sec': { type: 'string', default: '100' },
    timeout: { type: 'string', default: '120' },
  },
});
const runs = Number(values.runs);
const restartMs = Number(values['restart-sec']);

let zonesDir = values.zones;
let name = values.name;
let generated;
if (Number(values.names) > 0) {
  generated = generate(mkdtempSync(join(tmpdir(), 'sitedns-crash-')), Number(values.names));
  zonesDir = generated.dir;
  name = generated.queries[0].name;
}

/** A DNS query for `qname` A (RFC 1035 §4.1). */
const port = await freePort();
const args = [CLI, 'serve', '--zones', zonesDir, '--listen', `127.0.0.1:${port}`, '--udp-threads', values['udp-threads'], '--http', 'off', '--log-level', 'info'];

/** Starts serve; `listening` resolves with the time it said so, `exited` with the time it ended. */
function start() {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const startedAt = performance.now();
  let buffered = '';
  const listening = new Promise((resolve) => {
    proc.stdout.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      if (buffered.includes('"msg":"listening on UDP and TCP"')) resolve(performance.now());
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
    });
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ at: performance.now(), code, signal })));
  return { proc, startedAt, listening, exited };
}

/** Resolves with the time of the first answer to a query sent after `after` (a query every 2 ms). */
function firstAnswer(after, timeoutMs) {
  const socket = dgram.createSocket('udp4');
  let id = 0;
  return new Promise((resolve) => {
    const sentAfter = new Set();
    socket.on('message', (msg) => {
      if (msg.length < 12 || !sentAfter.has(msg.readUInt16BE(0))) return; // an answer from before the kill
      finish(performance.now());
    });
    socket.on('error', () => {});
    const timer = setInterval(() => {
      id = (id + 1) & 0xffff;
      if (performance.now() >= after) sentAfter.add(id);
      socket.send(dnsQuery(id, name), port, '127.0.0.1');
    }, 2);
    const limit = setTimeout(() => finish(NaN), timeoutMs);
    const finish = (at) => {
      clearInterval(timer);
      clearTimeout(limit);
      socket.close();
      resolve(at);
    };
  });
}

const info = machine();
console.log(`machine: ${info.nproc} cores, ${info.cpu}, node ${info.node}; load ${load()}`);
console.log(`serve ${args.slice(2).join(' ')}${generated ? ` (${values.names} names in ${generated.zones} files)` : ''}; restart ${restartMs} ms after the exit (systemd Restart=always, RestartSec default)`);
console.log(`core dumps: ulimit -c ${spawnSync('sh', ['-c', 'ulimit -c'], { encoding: 'utf8' }).stdout.trim()}, core_pattern ${readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim()}`);

let server = start();
const rows = [];
try {
  const firstListen = await server.listening;
  console.log(`first start: listening after ${Math.round(firstListen - server.startedAt)} ms`);
  for (let run = 1; run <= runs; run++) {
    await new Promise((r) => setTimeout(r, 1000)); // answering steadily before the crash
    const killedAt = performance.now();
    const answered = firstAnswer(killedAt, Number(values.timeout) * 1000);
    process.kill(server.proc.pid, 'SIGSEGV');
    const exit = await server.exited;
    await new Promise((r) => setTimeout(r, restartMs));
    server = start();
    const listenAt = await server.listening;
    const answerAt = await answered;
    const row = {
      run,
      signal: exit.signal,
      goneMs: Math.round(exit.at - killedAt),
      startedMs: Math.round(server.startedAt - killedAt),
      listeningMs: Math.round(listenAt - killedAt),
      firstAnswerMs: Math.round(answerAt - killedAt),
      load: load(),
    };
    rows.push(row);
    console.log(`run ${run}: ended by ${row.signal} after ${row.goneMs} ms; started again at ${row.startedMs} ms; listening at ${row.listeningMs} ms; first answer ${row.firstAnswerMs} ms after the kill (load ${row.load})`);
  }
} finally {
  server.proc.kill('SIGTERM');
  await server.exited;
  if (generated) rmSync(generated.dir, { recursive: true, force: true });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`median over ${rows.length} runs: no answer for ${median(rows.map((r) => r.firstAnswerMs))} ms (listening at ${median(rows.map((r) => r.listeningMs))} ms)`);
