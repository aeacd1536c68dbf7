/**
 * The measurement of bench/reload/gap.mjs and test/ops/reload-gap.test.ts: a running
 * `sitedns serve --udp-threads 0` (UDP on the main thread: the thread that answers DNS is the one
 * that reloads) or `--udp-threads N` (UDP answered by N threads that each compile the new zones),
 * a steady UDP query stream and a steady poll of its admin listener (served by the main thread's
 * event loop, as probe results are); midway, `edit` rewrites a zone file and SIGHUP reloads it. Reports the
 * longest gap between consecutive answers and between consecutive HTTP responses, what the
 * reload logged (with its longest slice on each thread that compiled), the main thread's longest
 * event-loop delay measured inside the process (loop-delay.mjs), and the queries left unanswered.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { CLI, dnsQuery } from '../qps/lib.mjs';

const LOOP_DELAY = new URL('./loop-delay.mjs', import.meta.url).href;

/** Starts serve on loopback ports; resolves with the process, its DNS and admin ports, and its log. */
async function startServe(zonesDir, udpThreads) {
  const proc = spawn(process.execPath, ['--import', LOOP_DELAY, CLI, 'serve', '--zones', zonesDir, '--listen', '127.0.0.1:0', '--udp-threads', String(udpThreads), '--http', '127.0.0.1:0', '--watch-debounce', '0', '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  const waiters = [];
  let buffered = '';
  const onData = (chunk) => {
    buffered += chunk.toString('utf8');
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        line = { raw: text };
      }
      logs.push(line);
      for (const w of [...waiters]) if (w.predicate(line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
    }
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const waitFor = (predicate, timeoutMs) =>
    new Promise((resolve, reject) => {
      const found = logs.find(predicate);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`no such log line within ${timeoutMs} ms; last: ${JSON.stringify(logs.slice(-3))}`)), timeoutMs);
      waiters.push({ predicate, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      proc.once('exit', (code) => reject(new Error(`serve exited (${code}): ${JSON.stringify(logs.slice(-5))}`)));
    });
  const dns = await waitFor((l) => l.msg === 'listening on UDP and TCP', 600_000);
  const admin = await waitFor((l) => l.msg === 'admin listening', 60_000);
  return { proc, logs, waitFor, dnsPort: dns.port, adminPort: admin.port };
}

/** The longest time in [from, to] without an event (the window's ends count as events). */
function longestGap(times, from, to) {
  const inside = [from, ...times.filter((x) => x > from && x < to), to];
  let longest = 0;
  for (let i = 1; i < inside.length; i++) longest = Math.max(longest, inside[i] - inside[i - 1]);
  return longest;
}

/**
 * @param {{ zonesDir: string, names: string[], edit: () => void, udpThreads?: number, rate?: number, pollHz?: number, beforeMs?: number, afterMs?: number, reloadTimeoutMs?: number }} o
 */
export async function measureReloadGaps(o) {
  const rate = o.rate ?? 1000;
  const pollHz = o.pollHz ?? 100;
  const udpThreads = o.udpThreads ?? 0;
  const server = await startServe(o.zonesDir, udpThreads);
  const socket = dgram.createSocket('udp4');
  const answers = [];
  const sentAt = new Map();
  socket.on('message', (msg) => {
    const id = msg.readUInt16BE(0);
    if (sentAt.delete(id)) answers.push(performance.now());
  });
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let nextId = 1;
  let sent = 0;
  // 1,000 QPS as 10 queries every 10 ms (timers finer than that are not kept by the event loop).
  const perTick = Math.max(1, Math.round(rate / 100));
  const sender = setInterval(() => {
    for (let i = 0; i < perTick; i++) {
      const id = nextId;
      nextId = (nextId % 65535) + 1;
      sentAt.set(id, performance.now());
      socket.send(dnsQuery(id, o.names[sent % o.names.length]), server.dnsPort, '127.0.0.1');
      sent++;
    }
  }, 10);
  const responses = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const started = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${server.adminPort}/healthz`);
        await res.arrayBuffer();
        responses.push(performance.now());
      } catch {
        // counted as a gap
      }
      const wait = 1000 / pollHz - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  /** What the main thread measured since the last call (loop-delay.mjs). */
  const loopDelay = async () => {
    const seen = server.logs.length;
    const logged = server.waitFor((l) => l.msg === 'event loop delay' && server.logs.indexOf(l) >= seen, 10_000);
    server.proc.kill('SIGUSR2');
    return await logged;
  };
  try {
    await loopDelay(); // from here: the same traffic, no reload (the machine's noise)
    await new Promise((r) => setTimeout(r, o.beforeMs ?? 2000));
    const idleDelay = await loopDelay();
    const from = performance.now();
    o.edit();
    const reloadLogged = server.waitFor((l) => l.trigger === 'sighup' && /^zones reloaded/.test(l.msg ?? ''), o.reloadTimeoutMs ?? 120_000);
    server.proc.kill('SIGHUP');
    const reload = await reloadLogged;
    // Each UDP thread compiles a changed set after the main thread (a broken edit changes nothing).
    const compiled = (l) => l.msg === 'zones compiled' && l.generation === reload.generation && server.logs.indexOf(l) > server.logs.indexOf(reload);
    if (udpThreads > 0 && reload.problems === 0) await server.waitFor((l) => server.logs.filter(compiled).length >= udpThreads && compiled(l), o.reloadTimeoutMs ?? 120_000);
    await new Promise((r) => setTimeout(r, o.afterMs ?? 2000));
    const to = performance.now();
    const delay = await loopDelay();
    const problems = server.logs.filter((l) => (l.level === 'error' || l.level === 50) && l.trigger === 'sighup').map((l) => l.msg);
    return {
      mainSlices: reload.slices,
      mainSliceMs: reload.sliceMs,
      threadMs: server.logs.filter(compiled).map((l) => l.ms),
      threadSlices: server.logs.filter(compiled).map((l) => l.slices),
      threadSliceMs: server.logs.filter(compiled).map((l) => l.sliceMs),
      eventLoopDelayMs: delay.maxMs,
      idleEventLoopDelayMs: idleDelay.maxMs,
      /** The most CPU time the main thread used between two turns of its event loop (5 ms timer). */
      mainCpuBlockMs: delay.cpuBetweenTicksMs,
      idleMainCpuBlockMs: idleDelay.cpuBetweenTicksMs,
      /** The main thread's time on a CPU and waiting for one, from the edit to the end. */
      mainRanMs: Math.round(delay.ranMs),
      mainWaitedMs: Math.round(delay.waitedMs),
      answerGapMs: Math.round(longestGap(answers, from, to)),
      httpGapMs: Math.round(longestGap(responses, from, to)),
      reloadMs: reload.ms,
      reloadMessage: reload.msg,
      problems,
      sent,
      // Queries still unanswered half a second after they were sent (the last ones are in flight).
      unanswered: [...sentAt.values()].filter((at) => at < to - 500).length,
      answered: answers.length,
      httpResponses: responses.length,
    };
  } finally {
    polling = false;
    clearInterval(sender);
    await poller;
    socket.close();
    server.proc.kill('SIGTERM');
    await once(server.proc, 'exit');
  }
}
