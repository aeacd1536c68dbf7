/**
 * The loader thread (started by config/zone-loader.ts): answers each `{ id, path, known }` with
 * the changed files of the zones path (config/changed-files.ts), so reading, parsing, validating,
 * the compile check and the signing of a reload never block the thread that answers queries.
 * With `signedAt`, the compile check signs each changed signed zone at that time with the keys
 * the main thread reads for it (asked for here, waited for synchronously: this thread has nothing
 * else to do meanwhile), and the file carries its signatures back.
 */
import { setPriority } from 'node:os';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { KeysWithheld, loadChangedFiles } from './changed-files.js';
import { KeyError } from '../dnssec/key-file.js';
import type { KeySource } from '../dnssec/keys.js';
import type { KeysAnswer, KeysRequest, LoaderReply, LoaderRequest, LoaderWorkerData } from './zone-loader.js';

/** Nice 10: a reload waits for CPU the answering thread needs, but is not starved by it. */
const LOADER_NICE = 10;
/** The longest wait for the main thread to answer a KeysRequest: past it, the zone is left to the main thread. */
const KEYS_WAIT_MS = 60_000;

if (parentPort === null) throw new Error('config/load-worker.js runs as a worker thread');
// A lower priority for this thread only (Linux keeps a nice value per thread; pid 0 is the
// calling thread): on a busy machine the thread that answers queries is scheduled first.
try {
  setPriority(0, LOADER_NICE);
} catch {
  // not permitted or not supported: the loader runs at the process's priority
}
const port = parentPort;
const { keysPort, keysAnswered } = workerData as LoaderWorkerData;
const answered = new Int32Array(keysAnswered);

/** Numbers the KeysRequests: an answer is taken for the request it echoes, never for a later one. */
let lastAsked = 0;

/** The keys of load `id`, each asked of the main thread when a compile needs them. */
function mainThreadKeys(id: number, signedAt: number): KeySource {
  return {
    now: () => signedAt,
    keysFor(zone, settings) {
      const seq = ++lastAsked;
      Atomics.store(answered, 0, 0);
      port.postMessage({ id, seq, keysFor: { zone, settings } } satisfies KeysRequest);
      const deadline = Date.now() + KEYS_WAIT_MS;
      for (;;) {
        // Answers to earlier requests that came after their wait timed out are passed over.
        const answer = receiveMessageOnPort(keysPort)?.message as KeysAnswer | undefined;
        if (answer !== undefined) {
          if (answer.seq !== seq) continue;
          if ('withheld' in answer) throw new KeysWithheld(zone);
          if ('error' in answer) throw new KeyError(answer.error.code, answer.error.file, answer.error.reason);
          return answer.keySet;
        }
        const left = deadline - Date.now();
        if (left <= 0 || Atomics.wait(answered, 0, 0, left) === 'timed-out') throw new KeysWithheld(zone);
        Atomics.store(answered, 0, 0);
      }
    },
  };
}

port.on('message', (request: LoaderRequest) => {
  let reply: LoaderReply;
  try {
    const keys = request.signedAt === undefined ? undefined : mainThreadKeys(request.id, request.signedAt);
    reply = { id: request.id, result: loadChangedFiles(request.path, new Map(request.known), true, keys) };
  } catch (error) {
    reply = { id: request.id, error: (error as Error).message };
  }
  port.postMessage(reply);
});
