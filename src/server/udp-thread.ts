/**
 * One UDP answering thread of `serve --udp-threads N`. Started by udp-threads.ts; never
 * imported by anything else.
 *
 * Why a thread that blocks: on the event-loop paths every batch of datagrams costs a turn of
 * Node's event loop (libuv's phases, the check phase, napi_make_callback), ~15-20 % more CPU per
 * query than gdnsd at 110k QPS although the DNS work is the same (docs/benchmarks.md, "CPU per
 * query at a fixed rate"). Here the thread's own JavaScript loop waits in recvmmsg(2) itself
 * (the addon's openBlocking/receive/send), the way gdnsd's UDP threads do, and answers each batch
 * with exactly the event-loop path's per-batch code (`batchAnswerer` and the answer step), each
 * reply from the address its query was sent to.
 *
 * The thread compiles its own zones (JavaScript objects cannot be shared between threads), from
 * the validated files the main thread serves (AnswererZones, zones/reload.ts; not the disk: a broken
 * file's last good version is in them), and holds its own state snapshot. The compile runs in
 * slices on this thread's event loop: while one runs, the loop polls its sockets without waiting
 * and gives the event loop a turn after every wake-up, so the thread answers between slices.
 * The main thread reaches it only through a mailbox (a MessagePort read with receiveMessageOnPort, plus a shared counter the main
 * thread bumps after each post): the loop looks at the counter after every wake-up, BEFORE it
 * answers the batch, so a state swap posted before a query arrived is always in effect for it.
 * An idle socket wakes the loop every receiveTimeoutMs (SO_RCVTIMEO), so reloads, metric requests
 * and 'stop' are seen within that time even without traffic.
 *
 * The loop gives its own event loop a turn when idle, every YIELD_EVERY_BATCHES batches, and after
 * a metrics request (prom-client's getMetricsAsJSON settles on promise jobs), so pino's writes,
 * timers and promises of this thread are not starved.
 *
 * Mailbox messages: 'state' / 'delta' (state/messages.ts), 'reload', 'stop',
 * { type: 'metrics', id }. Replies: 'ready', 'reloaded', 'hello' (a delta did not apply), 'metrics'.
 */
import { availableParallelism } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { QueryMetrics } from '../admin/query-metrics.js';
import { registry, runScrapeHooks, setUdpThreadIndex, udpSteeringSwitchesTotal } from '../metrics/definitions.js';
import { countReceive, joinAfterFirst, startSteering } from '../policy/udp-steering.js';
import { Runtime } from '../state/runtime.js';
import { formatHostPort, listenError } from '../util/listen.js';
import { componentLogger, createLogger } from '../util/logger.js';
import { answeringHandler } from './nameserver.js';
import { AnswerStep } from './answer-step.js';
import { AnswererZones } from '../zones/reload.js';
import { prebuildTableInSlices } from './fast-path.js';
import { ResponseRateLimiter } from './rrl.js';
import { batchAnswerer, countSocket, loadAddon, sharedBufferBytes, type UdpBatchAddon } from './udp-batched.js';
import { applyStateMessage, type DeltaMessage, type StateMessage } from '../state/messages.js';
import type { UdpThreadData, UdpThreadReply, UdpThreadRequest } from './udp-threads.js';
import type { StateSnapshot } from '../state/snapshot.js';

/** Batches answered between two turns of this thread's event loop (~10-70 ms at full load). */
const YIELD_EVERY_BATCHES = 512;

const data = workerData as UdpThreadData;
const mailbox: MessagePort = data.port;
const signal = new Int32Array(data.signal);
const log = createLogger(data.logLevel).child({ component: 'udp-thread', thread: data.index });

const loadedAddon = loadAddon();
if (typeof loadedAddon === 'string') throw new Error(loadedAddon);
const addon: UdpBatchAddon = loadedAddon;

// The main thread's texts, not the files: a thread serves what the main thread serves, its last
// good version of a broken file included, whenever it starts or reloads.
const runtime = new Runtime();
const zones = new AnswererZones(runtime, data.zonesPath, log, prebuildTableInSlices);
await zones.load(data.zones);
const observer = new QueryMetrics({ logger: componentLogger(log, 'query'), sample: data.querySample }, undefined, componentLogger(log, 'handler'));
const handler = answeringHandler(runtime, log, undefined, observer, data.edns);
const rrl = new ResponseRateLimiter(data.rrl);

const buffer = new ArrayBuffer(sharedBufferBytes(data.batch, data.slot));
const answer = batchAnswerer(new AnswerStep(handler, rrl), buffer, data.batch, data.slot);
const shared = joinAfterFirst(new Int32Array(data.steering), data.index, 5000);
const sockets = data.listen.map(({ host, port }) => {
  try {
    return addon.openBlocking({ host, port, batch: data.batch, slot: data.slot, reusePort: 1, receiveTimeoutMs: data.receiveTimeoutMs, spinMicros: data.spinMicros, sendTimeoutMs: 200 }, buffer);
  } catch (error) {
    throw listenError(formatHostPort(host, port), `UDP thread ${data.index}`, error);
  }
});
// This thread's /metrics share: its sockets' native counters, summed as the event-loop path's are.
const retire = sockets.map((s) => countSocket(addon, s.handle));
setUdpThreadIndex(data.index);
/**
 * One program on every listen address's group, or none: a group the kernel refused would keep
 * the kernel's distribution while the others are steered, so those go back to it too.
 */
function attachSteering(first: number, count: number): number {
  for (const [i, s] of sockets.entries()) {
    const errno = addon.steer(s.handle, first, count);
    if (errno === 0) continue;
    for (const done of sockets.slice(0, i)) addon.steer(done.handle, 0, 0);
    return errno;
  }
  return 0;
}
const steering = startSteering({ counters: shared, index: data.index, threads: data.steer, cores: availableParallelism(), now: () => performance.now(),
  attach: (first, count) => attachSteering(first, count),
  refused: (errno) => log.debug({ errno }, 'reuseport steering refused; the kernel distributes datagrams'), switched: (mode) => udpSteeringSwitchesTotal.inc({ to: mode }) });

let latest: StateSnapshot | null = null;
let seen = -1;
let stopping = false;
let turnSoon = false;
/** Reloads in progress: while any runs, each pass polls and turns (the compile's slices run in the turns). */
let loading = 0;

const reply = (message: UdpThreadReply) => mailbox.postMessage(message);

function readMailbox(): void {
  const now = Atomics.load(signal, 0);
  if (now === seen) return;
  seen = now;
  for (let m = receiveMessageOnPort(mailbox); m !== undefined; m = receiveMessageOnPort(mailbox)) handle(m.message as UdpThreadRequest);
}

function handle(message: UdpThreadRequest): void {
  switch (message.type) {
    case 'state':
    case 'delta': {
      const next = applyStateMessage(latest, message as StateMessage | DeltaMessage);
      if (next === null) {
        reply({ type: 'hello' }); // out of step: the main thread sends the whole state
        return;
      }
      latest = next;
      runtime.publishState(next);
      return;
    }
    case 'reload': {
      const { id } = message;
      loading++;
      steering?.setBusy(true); // the others answer while this thread compiles
      zones.load(message.zones).finally(() => steering?.setBusy(--loading > 0)).then(
        (r) => reply({ type: 'reloaded', id, generation: r.zoneSet.generation, ok: r.problems.length === 0 }),
        (error: Error) => {
          log.error({ err: error }, 'reload failed; still serving the zones of before');
          reply({ type: 'reloaded', id, generation: runtime.zones.generation, ok: false });
        },
      );
      return;
    }
    case 'metrics':
      runScrapeHooks();
      registry.getMetricsAsJSON().then(
        (metrics) => reply({ type: 'metrics', id: message.id, metrics }),
        () => reply({ type: 'metrics', id: message.id, metrics: null }),
      );
      turnSoon = true;
      return;
    case 'stop':
      stopping = true;
      return;
  }
}

/** Waits on the one socket (most setups) or, with several --listen addresses, on all of them. */
async function serve(): Promise<void> {
  const single = sockets.length === 1 ? sockets[0].handle : null;
  const handles = sockets.map((s) => s.handle);
  let next = 0;
  let batches = 0;
  while (!stopping) {
    let handle = single;
    if (handle === null || loading > 0) {
      handle = null;
      const ready = addon.waitAny(handles, loading > 0 ? 0 : data.receiveTimeoutMs, next);
      if (ready >= 0) {
        handle = handles[ready];
        next = (ready + 1) % handles.length; // the next wait starts after it: no socket starves
      }
    }
    const count = handle === null ? 0 : addon.receive(handle);
    readMailbox(); // before answering: a state posted before these queries arrived applies to them
    if (count > 0 && handle !== null) {
      countReceive(shared, data.index, count);
      answer(count);
      addon.send(handle, count); // also when told to stop: the queries in hand are answered
    }
    steering?.tick();
    if (count < 0 || stopping) break;
    if (count === 0 || turnSoon || loading > 0 || ++batches >= YIELD_EVERY_BATCHES) {
      batches = 0;
      turnSoon = false;
      await nextTurn();
    }
  }
  for (const r of retire) r();
  for (const s of sockets) addon.close(s.handle);
}

readMailbox(); // the first state was posted before this thread started
if (latest === null) throw new Error('UDP thread started without a state snapshot');
reply({ type: 'ready', listening: data.listen.map((l, i) => ({ address: l.host, port: sockets[i].port })), generation: runtime.zones.generation });
await serve();
mailbox.close();
