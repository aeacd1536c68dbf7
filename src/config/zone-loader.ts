/**
 * The main side of the loader thread (config/load-worker.ts). One thread, started on the first
 * load and kept for the next ones; it holds the process open only while a load is running. If it
 * dies (out of memory, a crash), the load in progress fails with an error and the next load starts
 * a new thread.
 */
import { Worker } from 'node:worker_threads';
import type { ChangedFiles } from './changed-files.js';

export interface LoaderRequest {
  readonly id: number;
  readonly path: string;
  readonly known: [string, string][];
}

export type LoaderReply = { readonly id: number; readonly result: ChangedFiles } | { readonly id: number; readonly error: string };

/** The thread's module beside this one (a .ts file when the tests run the sources). */
const WORKER_MODULE = new URL(import.meta.url.endsWith('.ts') ? './load-worker.ts' : './load-worker.js', import.meta.url);

export class ZoneLoader {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: ChangedFiles) => void; reject: (e: Error) => void }>();

  /** The changed files of `path`, given the digests of each file's last good load. */
  load(path: string, known: ReadonlyMap<string, string>): Promise<ChangedFiles> {
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<ChangedFiles>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, path, known: [...known] } satisfies LoaderRequest);
    });
  }

  /** Ends the thread; a load in progress fails. The next load starts a new one. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    this.worker = undefined;
    this.fail(new Error('the zone loader was stopped'));
    await worker.terminate();
  }

  private thread(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(WORKER_MODULE);
    worker.unref();
    worker.on('message', (reply: LoaderReply) => {
      const waiting = this.pending.get(reply.id);
      if (waiting === undefined) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.result);
    });
    const died = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.fail(error);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`the zone loader thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private fail(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}
