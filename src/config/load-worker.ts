/**
 * The loader thread (started by config/zone-loader.ts): answers each `{ id, path, known }` with
 * the changed files of the zones path (config/changed-files.ts), so reading, parsing, validating
 * and the compile check of a reload never block the thread that answers queries.
 */
import { parentPort } from 'node:worker_threads';
import { loadChangedFiles } from './changed-files.js';
import type { LoaderReply, LoaderRequest } from './zone-loader.js';

if (parentPort === null) throw new Error('config/load-worker.js runs as a worker thread');
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
