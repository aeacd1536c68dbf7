/**
 * Which UDP thread the kernel hands datagrams to (`serve --udp-threads N`, N >= 2): every thread
 * has its own socket in each listen address's SO_REUSEPORT group, and a classic BPF program on the
 * group picks the socket per datagram (the addon's steer(); udp_batch.c).
 *
 * - single: every datagram to thread 0's socket (index 0: it joins each group first). At moderate
 *   load one thread answers more cheaply than several: its recvmmsg batches are longer, so it
 *   sleeps and wakes less often per query, and one isolate's answer code stays hot in cache and
 *   JIT (docs/benchmarks.md, "Steering": ~20 % less CPU per query at 40k QPS on 2 cores).
 * - spread: the kernel's own distribution (hash of source and destination), once thread 0 falls
 *   behind: then the other cores are worth their wake-ups. Single is tried again after a hold
 *   that doubles while single keeps falling behind at once (gdnsd's anti-flap idea).
 * - away: every datagram to the other threads, while thread 0 does work that is not answering
 *   (compiling a zone reload), so no query waits in its socket's queue meanwhile.
 *
 * nextSteering is the pure decision; SteeringControl applies it from counters the threads share.
 */

export type SteeringMode = 'single' | 'spread' | 'away';

export interface SteeringState {
  readonly mode: SteeringMode;
  /** When (ms) this mode began. */
  readonly since: number;
  /** How long spread lasts before single is tried again (ms). */
  readonly holdMs: number;
}

/** One window of the threads' receives, all threads summed. */
export interface SteeringWindow {
  readonly now: number;
  readonly datagrams: number;
  /** recvmmsg calls that returned datagrams. */
  readonly receives: number;
  /** Thread 0 is busy with work that is not answering. */
  readonly busy: boolean;
}

export interface SteeringSettings {
  /** Behind: this many datagrams per receive on average (a queue builds between two receives; udp_batch.c's SPIN_MIN_BATCH)... */
  readonly behindBatch: number;
  /** ...over at least this many receives in the window (one burst absorbed in one receive is keeping up). */
  readonly behindReceives: number;
  /**
   * Spread lasts this long (ms) before single is tried again. A single that falls behind sooner
   * than that doubles the next hold, up to maxHoldMs (a load above one thread's capacity tries
   * single for one window every maxHoldMs); one that lasted longer resets it.
   */
  readonly holdMs: number;
  readonly maxHoldMs: number;
  /** Length of a window (ms). */
  readonly windowMs: number;
}

export const STEERING: SteeringSettings = Object.freeze({ behindBatch: 32, behindReceives: 4, holdMs: 1000, maxHoldMs: 32_000, windowMs: 50 });

export const INITIAL_STEERING: SteeringState = Object.freeze({ mode: 'single', since: -Infinity, holdMs: STEERING.holdMs });

/** The steering after one window (the same object when nothing changes). */
export function nextSteering(s: SteeringState, w: SteeringWindow, c: SteeringSettings = STEERING): SteeringState {
  if (w.busy) return s.mode === 'away' ? s : { mode: 'away', since: w.now, holdMs: s.holdMs };
  switch (s.mode) {
    case 'away':
      return { mode: 'single', since: w.now, holdMs: s.holdMs };
    case 'single': {
      const behind = w.receives >= c.behindReceives && w.datagrams >= c.behindBatch * w.receives;
      if (!behind) return s;
      const flapped = w.now - s.since < c.holdMs;
      return { mode: 'spread', since: w.now, holdMs: flapped ? Math.min(2 * s.holdMs, c.maxHoldMs) : c.holdMs };
    }
    case 'spread':
      return w.now - s.since >= s.holdMs ? { mode: 'single', since: w.now, holdMs: s.holdMs } : s;
  }
}

/** Program arguments of the addon's steer(handle, first, count) for a mode (count 0: the kernel's distribution). */
export function steeringProgram(mode: SteeringMode, threads: number): { first: number; count: number } {
  if (mode === 'single') return { first: 0, count: 1 };
  if (mode === 'away') return { first: 1, count: threads - 1 };
  return { first: 0, count: 0 };
}

/**
 * Shared counters (Int32 words of a SharedArrayBuffer): [0] set once thread 0's sockets joined
 * their groups, then datagrams and receives per thread. Int32 wraps; differences are taken mod 2^32.
 */
export function steeringCounters(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (1 + 2 * threads));
}

/** Thread `index` took `count` datagrams in one receive. */
export function countReceive(counters: Int32Array, index: number, count: number): void {
  counters[1 + 2 * index] += count;
  counters[2 + 2 * index] += 1;
}

/** Threads other than thread 0 wait (up to timeoutMs) until thread 0's sockets are in their groups, so they take index 0. */
export function joinAfterFirst(counters: Int32Array, index: number, timeoutMs: number): Int32Array {
  if (index > 0) Atomics.wait(counters, 0, 0, timeoutMs);
  return counters;
}

function firstJoined(counters: Int32Array): void {
  Atomics.store(counters, 0, 1);
  Atomics.notify(counters, 0);
}

export interface SteeringOptions {
  readonly counters: Int32Array;
  /** This thread's index, the pool's threads and the cores: only thread 0 of 2+ threads on 2+ cores steers. */
  readonly index: number;
  readonly threads: number;
  readonly cores: number;
  /** Attaches steer(first, count) to every group of the thread's sockets: 0 or the errno the kernel refused it with. */
  readonly attach: (first: number, count: number) => number;
  /** The kernel refused (not Linux >= 4.5): its own distribution stays. Called once. */
  readonly refused: (errno: number) => void;
  readonly switched: (mode: SteeringMode) => void;
  readonly now: () => number;
  readonly settings?: SteeringSettings;
}

/** Called by every thread once its sockets joined their groups; the steering of thread 0 or null. */
export function startSteering(o: SteeringOptions): SteeringControl | null {
  if (o.index === 0) firstJoined(o.counters);
  return o.index > 0 || o.threads < 2 || o.cores < 2 ? null : new SteeringControl(o);
}

/**
 * Runs nextSteering every windowMs on the shared counters (on thread 0) and attaches the
 * program of each new mode; once the kernel refuses one, its own distribution stays.
 */
export class SteeringControl {
  private state: SteeringState;
  private windowStart: number;
  private datagrams = 0;
  private receives = 0;
  private busy = false;
  private off = false;
  private readonly settings: SteeringSettings;

  constructor(private readonly o: SteeringOptions) {
    this.settings = o.settings ?? STEERING;
    this.state = { ...INITIAL_STEERING, holdMs: this.settings.holdMs };
    this.windowStart = o.now();
    [this.datagrams, this.receives] = this.totals();
    this.off = !this.attach('single');
  }

  get mode(): SteeringMode {
    return this.off ? 'spread' : this.state.mode;
  }

  /** Cheap enough for every batch: evaluates once a window has passed. */
  tick(): void {
    const now = this.o.now();
    if (now - this.windowStart >= this.settings.windowMs) this.evaluate(now);
  }

  /** Thread 0 starts (true) or ends (false) work that is not answering; the steering follows at once. */
  setBusy(busy: boolean): void {
    this.busy = busy;
    this.evaluate(this.o.now());
  }

  private attach(mode: SteeringMode): boolean {
    const { first, count } = steeringProgram(mode, this.o.threads);
    const errno = this.o.attach(first, count);
    if (errno !== 0) this.o.refused(errno);
    return errno === 0;
  }

  private totals(): [number, number] {
    let datagrams = 0;
    let receives = 0;
    for (let i = 0; i < this.o.threads; i++) {
      datagrams += this.o.counters[1 + 2 * i];
      receives += this.o.counters[2 + 2 * i];
    }
    return [datagrams | 0, receives | 0];
  }

  private evaluate(now: number): void {
    const [datagrams, receives] = this.totals();
    const window = { now, datagrams: (datagrams - this.datagrams) >>> 0, receives: (receives - this.receives) >>> 0, busy: this.busy };
    this.windowStart = now;
    this.datagrams = datagrams;
    this.receives = receives;
    if (this.off) return;
    const next = nextSteering(this.state, window, this.settings);
    if (next.mode !== this.state.mode) {
      if (!this.attach(next.mode)) {
        this.off = true;
        return;
      }
      this.o.switched(next.mode);
    }
    this.state = next;
  }
}
