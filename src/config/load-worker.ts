/**
 * The loader thread (started by config/zone-loader.ts): answers each `{ id, path, known }` with
 * the changed files of the zones path (config/changed-files.ts), so reading, parsing, validating
 * and the compile check of a reload never block the thread that answers queries.
 */
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { loadChangedFiles } from './changed-files.js';
import type { LoaderReply, LoaderRequest } from './zone-loader.js';

/** Nice 10: a reload waits for CPU the answering thread needs, but is not starved by it. */
const LOADER_NICE = 10;

if (parentPort === null) throw new Error('config/load-worker.js runs as a worker thread');
// A lower priority for this thread only (Linux keeps a nice value per thread; pid 0 is the
// calling thread): on a busy machine the thread that answers queries is scheduled first.
try {
  setPriority(0, LOADER_NICE);
} catch {
  // not permitted or not supported: the loader runs at the process's priority
}
const port = parentPort;
port.on('message', (request: LoaderRequest) => {
  let reply: LoaderReply;
  try {
    reply = { id: request.id, result: loadChangedFiles(request.path, new Map(request.known), true) };
  } catch (error) {
    reply = { id: request.id, error: (error as Error).message };
  }
  port.postMessage(reply);
});
