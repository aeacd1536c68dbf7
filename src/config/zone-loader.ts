/**
 * The main side of the loader thread (config/load-worker.ts). One thread, started on the first
 * load and kept for the next ones; it holds the process open only while a load is running. If it
 * dies (out of memory, a crash), the load in progress fails with an error and the next load starts
 * a new thread.
 *
 * A load given a KeySource has the thread sign each changed signed zone at the load's signing
 * time. The thread asks for a zone's keys when its compile reaches them, and waits (Atomics.wait)
 * for this thread to answer from its KeySource: the keys of a load are read here, once per load
 * (the source may be a key directory, or a clock and keys a test injects), and only for the
 * zones that need them, whose origins only the parse in the thread knows.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { ChangedFiles } from './changed-files.js';
import { KeyError, type KeyErrorCode } from '../dnssec/key-file.js';
import type { KeySource } from '../dnssec/keys.js';
import type { ZoneKeySet } from '../dnssec/types.js';
import type { DnssecSettings } from '../model/zone-model.js';

export interface LoaderRequest {
  readonly id: number;
  readonly path: string;
  readonly known: [string, string][];
  /** Sign changed signed zones at this time (ms since the epoch), asking for their keys; absent: compile-check unsigned. */
  readonly signedAt?: number;
}

/** The thread asking, during load `id`, for a signed zone's keys (its `seq`-th request). */
export interface KeysRequest {
  readonly id: number;
  readonly seq: number;
  readonly keysFor: { readonly zone: string; readonly settings: DnssecSettings };
}

/**
 * The answer to a KeysRequest (KeyObjects cross postMessage), the KeyError the source threw, or
 * `withheld` when it threw anything else: the thread then leaves the zone to this thread's
 * compile, which meets the same failure (a KeySource answers once per load) and reports it.
 */
export type KeysAnswer = { readonly seq: number } & (
  | { readonly keySet: ZoneKeySet }
  | { readonly error: { readonly code: KeyErrorCode; readonly file: string; readonly reason: string } }
  | { readonly withheld: true }
);

export type LoaderReply = { readonly id: number; readonly result: ChangedFiles } | { readonly id: number; readonly error: string };

/** What the thread is started with: where the answers to its KeysRequests arrive, and the flag it waits on. */
export interface LoaderWorkerData {
  readonly keysPort: MessagePort;
  /** Int32Array over it: 1 once an answer is posted on keysPort. */
  readonly keysAnswered: SharedArrayBuffer;
}

/** The thread's module beside this one (a .ts file when the tests run the sources). */
const WORKER_MODULE = new URL(import.meta.url.endsWith('.ts') ? './load-worker.ts' : './load-worker.js', import.meta.url);

interface Pending {
  resolve: (r: ChangedFiles) => void;
  reject: (e: Error) => void;
  keys?: KeySource;
}

export class ZoneLoader {
  private worker: Worker | undefined;
  private keysPort: MessagePort | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /**
   * The changed files of `path`, given the digests of each file's last good load; with `keys`,
   * changed signed zones signed at `keys.now()` (each file's `signed`).
   */
  load(path: string, known: ReadonlyMap<string, string>, keys?: KeySource): Promise<ChangedFiles> {
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<ChangedFiles>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, keys });
      worker.ref();
      worker.postMessage({ id, path, known: [...known], signedAt: keys?.now() } satisfies LoaderRequest);
    });
  }

  /** Ends the thread; a load in progress fails. The next load starts a new one. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    this.worker = undefined;
    this.keysPort?.close();
    this.fail(new Error('the zone loader was stopped'));
    await worker.terminate();
  }

  private thread(): Worker {
    if (this.worker !== undefined) return this.worker;
    const { port1, port2 } = new MessageChannel();
    const keysAnswered = new SharedArrayBuffer(4);
    const answered = new Int32Array(keysAnswered);
    const worker = new Worker(WORKER_MODULE, { workerData: { keysPort: port2, keysAnswered } satisfies LoaderWorkerData, transferList: [port2] });
    worker.unref();
    worker.on('message', (message: LoaderReply | KeysRequest) => {
      if ('keysFor' in message) {
        this.answerKeys(message, port1, answered);
        return;
      }
      const waiting = this.pending.get(message.id);
      if (waiting === undefined) return;
      this.pending.delete(message.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in message) waiting.reject(new Error(message.error));
      else waiting.resolve(message.result);
    });
    const died = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      port1.close();
      this.fail(error);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`the zone loader thread exited (code ${code})`)));
    this.worker = worker;
    this.keysPort = port1;
    return worker;
  }

  /** Answers the waiting thread (the one that asked: its port and flag): the message first, then the flag it waits on. */
  private answerKeys(request: KeysRequest, port: MessagePort, answered: Int32Array): void {
    const keys = this.pending.get(request.id)?.keys;
    const seq = request.seq;
    let answer: KeysAnswer;
    try {
      answer = keys === undefined ? { seq, withheld: true } : { seq, keySet: keys.keysFor(request.keysFor.zone, request.keysFor.settings) };
    } catch (error) {
      answer = error instanceof KeyError ? { seq, error: { code: error.code, file: error.file, reason: error.reason } } : { seq, withheld: true };
    }
    port.postMessage(answer);
    Atomics.store(answered, 0, 1);
    Atomics.notify(answered, 0);
  }

  private fail(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}
