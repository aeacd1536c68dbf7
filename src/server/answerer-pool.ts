/**
 * The lifecycle of the answerers of `serve --udp-threads N` (udp-threads.ts), over a transport
 * that starts, reaches and ends one answerer: N slots; the start fails if one of the first N ends
 * before it says 'ready' (and the others are stopped); the whole state at spawn, then each state
 * snapshot to every answerer (StatePublisher), the whole one again on 'hello'; the validated zone
 * files the main thread serves, in rolling reloads, to every one; an answerer that ends later is
 * replaced in its slot after a back-off; requests answered by id; 'stop', then kill. The caller
 * keeps its own log lines (hooks).
 */
import type { StateSnapshot } from '../state/snapshot.js';
import type { ZoneTexts } from '../zones/reload.js';
import { StatePublisher, type DeltaMessage, type StateMessage } from '../state/messages.js';

/**
 * Restart delays for answerers that die: 100 ms, doubling with
 * every death in the last 10 s, at most 5 s, so a crash loop does not eat the machine.
 */
export class RestartBackoff {
  private readonly recent: number[] = [];

  nextDelayMs(now = Date.now()): number {
    this.recent.push(now);
    while (this.recent.length > 0 && this.recent[0] < now - 10_000) this.recent.shift();
    return Math.min(100 * 2 ** Math.max(0, this.recent.length - 1), 5000);
  }
}

/** What the pool itself sends an answerer. */
export type PoolMessage = StateMessage | DeltaMessage | { type: 'stop' };
/** What the pool itself reads: 'hello' (send the whole state), 'ready' (listening), replies with an id. */
type AnswererMessage = { type: string; id?: unknown };
type Ready<In> = Extract<In, { type: 'ready' }>;
type Reloaded = { type: 'reloaded'; ok: boolean; generation: number };
const isReloaded = (reply: unknown): reply is Reloaded => (reply as Reloaded | null)?.type === 'reloaded';

/** `error`: what made it end, when the transport knows (a thread's uncaught error). */
export type AnswererExit = { code: number | null; error?: Error };

/** How to start, reach and end one kind of answerer. */
export interface AnswererTransport<H, Out, In> {
  spawn(slot: number): H;
  post(handle: H, message: Out | PoolMessage): void;
  onMessage(handle: H, listener: (message: In) => void): void;
  onExit(handle: H, listener: (exit: AnswererExit) => void): void;
  /** Ends one that did not stop when told to. */
  kill(handle: H): void;
}

export interface Answerer<H> {
  /** 0..size-1; a replacement takes the slot of the answerer it replaces. */
  readonly slot: number;
  readonly handle: H;
  /** The handle of the answerer this one replaces (for the logs). */
  readonly replaces: H | undefined;
  /** Said 'ready': listening. */
  ready: boolean;
}

type Member<H> = Answerer<H> & { readonly exited: Promise<void> };

export interface AnswererPoolOptions<H, Out, In> {
  size: number;
  transport: AnswererTransport<H, Out, In>;
  /** The snapshot a (re)started answerer gets as soon as it is spawned (it reads it before it listens): the current one. */
  currentState: () => StateSnapshot;
  /** The zones every answerer compiles at a rolling reload: the main thread's current ones. */
  currentZones: () => ZoneTexts;
  /** Asks one answerer to compile `zones` (the same for every answerer of a run) and reply 'reloaded'. */
  reloadRequest: (id: number, zones: ZoneTexts) => Out;
  /** How long close() waits for an answerer to stop before it is killed. */
  killAfterMs: number;
  listening?: (answerer: Answerer<H>, ready: Ready<In>) => void;
  restarting: (answerer: Answerer<H>, exit: AnswererExit, restartInMs: number) => void;
  reloaded: (result: { ok: boolean; generation: number }, answerers: number) => void;
}

/** Why the pool did not start: this answerer ended before it listened. */
export class AnswererFailedToStart<H> extends Error {
  constructor(readonly answerer: Answerer<H>, readonly exit: AnswererExit) {
    super(exit.error?.message ?? `answerer ${answerer.slot} exited with code ${exit.code} before listening`);
  }
}

/** How long one answerer may hold up a rolling reload (a stuck one would hold up every later one). */
const RELOAD_TIMEOUT_MS = 60_000;

export class AnswererPool<H, Out, In extends AnswererMessage> {
  private readonly members = new Set<Member<H>>();
  private readonly publisher: StatePublisher<Member<H>>;
  private readonly backoff = new RestartBackoff();
  private readonly waiting = new Map<number, { answerer: Answerer<H>; done: (reply: In | null) => void }>();
  private nextRequestId = 1;
  /** No more restarts; an answerer that says 'ready' is told to stop. */
  private stopping = false;
  private closed: Promise<void> | null = null;
  private reloading: Promise<unknown> = Promise.resolve();
  private reloadQueued: Promise<{ ok: boolean; generation: number }> | null = null;
  /** Every slot's first 'ready'; rejects (AnswererFailedToStart) when one ends before. */
  readonly start: Promise<Ready<In>[]>;

  constructor(private readonly o: AnswererPoolOptions<H, Out, In>) {
    this.publisher = new StatePublisher<Member<H>>((a, message) => o.transport.post(a.handle, message));
    this.start = Promise.all(Array.from({ length: o.size }, (_, slot) => this.spawn(slot, undefined)));
  }

  private spawn(slot: number, replaces: H | undefined): Promise<Ready<In>> {
    const { transport } = this.o;
    const handle = transport.spawn(slot);
    let ended = () => {};
    const a: Member<H> = { slot, handle, replaces, ready: false, exited: new Promise((resolve) => (ended = resolve)) };
    this.members.add(a);
    this.publisher.whole(a, this.o.currentState());
    return new Promise((resolve, reject) => {
      transport.onMessage(handle, (message) => {
        // A message may arrive after 'exit': a late 'hello' would leave the publisher an entry
        // for a dead answerer, a late 'ready' a log line.
        if (!this.members.has(a)) return;
        if (message?.type === 'hello') return this.publisher.whole(a, this.o.currentState());
        if (message?.type === 'ready') {
          a.ready = true;
          // One still starting when the pool began to stop missed its 'stop'.
          if (this.stopping) return transport.post(handle, { type: 'stop' });
          this.o.listening?.(a, message as Ready<In>);
          return resolve(message as Ready<In>);
        }
        const id = message?.id;
        if (typeof id === 'number') this.waiting.get(id)?.done(message);
      });
      transport.onExit(handle, (exit) => {
        this.members.delete(a);
        this.publisher.forget(a);
        for (const request of this.waiting.values()) if (request.answerer === a) request.done(null);
        ended();
        // Stopped while starting (SIGTERM during a long compile) is not a failed start.
        if (!a.ready && this.closed === null) reject(new AnswererFailedToStart(a, exit));
        // One of the first N that cannot start (bad flags, no zones, port taken) fails the start,
        // and the others are stopped: close() (and so the callers' stop) resolves once all ended.
        if (!a.ready && replaces === undefined) void this.close();
        if (this.stopping) return;
        // One that listened and ended is replaced, and so is a replacement that cannot start
        // (the files broken meanwhile, say): tried again with back-off.
        const delay = this.backoff.nextDelayMs();
        this.o.restarting(a, exit, delay);
        setTimeout(() => {
          if (!this.stopping) this.spawn(slot, handle).catch(() => undefined); // its own exit tries again
        }, delay).unref();
      });
    });
  }

  answerers(): Answerer<H>[] {
    return [...this.members];
  }

  /** Still alive (it has not ended). */
  has(answerer: Answerer<H>): boolean {
    return this.members.has(answerer as Member<H>);
  }

  publishState(snapshot: StateSnapshot): void {
    this.publisher.publish(snapshot, this.members);
  }

  /** Sends a request that is answered by id; null when the answerer ends or time runs out first. */
  ask(answerer: Answerer<H>, request: (id: number) => Out, timeoutMs: number): Promise<In | null> {
    if (!this.has(answerer)) return Promise.resolve(null);
    return new Promise((resolve) => {
      const id = this.nextRequestId++;
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (reply: In | null) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(reply);
      };
      this.waiting.set(id, { answerer, done });
      this.o.transport.post(answerer.handle, request(id));
    });
  }

  /**
   * Rolling reload; resolves when every answerer has reloaded. One run at a time: two overlapping
   * ones would have two answerers compiling at once. Requests made before a run starts join it;
   * those made while it runs are folded into one more run after it.
   */
  reload(): Promise<{ ok: boolean; generation: number }> {
    if (this.reloadQueued !== null) return this.reloadQueued;
    const next = this.reloading.then(() => this.rollReload());
    this.reloadQueued = next;
    this.reloading = next.catch(() => undefined);
    return next;
  }

  /**
   * Every answerer in turn, those still starting too (they reload once they listen), all to the
   * zones current when the run starts: one generation, even if the main thread reloads meanwhile
   * (that reload asks for the next run).
   */
  private async rollReload(): Promise<{ ok: boolean; generation: number }> {
    this.reloadQueued = null; // requests from now on need a run after this one
    const zones = this.o.currentZones();
    let ok = true;
    let generation = 0;
    for (const a of [...this.members]) {
      if (!this.members.has(a)) continue; // ended during the run (the publisher forgot it)
      this.publisher.whole(a, this.o.currentState()); // a reload starts from a whole snapshot
      const reply = await this.ask(a, (id) => this.o.reloadRequest(id, zones), RELOAD_TIMEOUT_MS);
      if (isReloaded(reply)) {
        ok &&= reply.ok;
        generation = Math.max(generation, reply.generation);
      } else if (this.members.has(a)) {
        ok = false; // alive but no confirmation in time: the reload is not known to be done
      } // one that ended: its replacement compiles the current zones
    }
    const result = { ok, generation };
    this.o.reloaded(result, this.members.size);
    return result;
  }

  /** Tells every answerer to stop; resolves when all have ended (killed after killAfterMs). */
  close(): Promise<void> {
    if (this.closed !== null) return this.closed;
    this.stopping = true;
    const members = [...this.members];
    for (const a of members) this.o.transport.post(a.handle, { type: 'stop' });
    const timer = setTimeout(() => {
      for (const a of this.members) this.o.transport.kill(a.handle);
    }, this.o.killAfterMs);
    timer.unref();
    this.closed = Promise.all(members.map((a) => a.exited)).then(() => clearTimeout(timer));
    return this.closed;
  }
}
