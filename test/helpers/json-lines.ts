/**
 * Follows a child process's JSON log lines (stdout and stderr): keeps them, and lets a test wait
 * for the first line matching a predicate. Shared by every helper that starts a process
 * (sitedns, the example sites, the soak and fault tools).
 */
import type { ChildProcess } from 'node:child_process';

export interface JsonLines {
  /** Parsed JSON lines so far (a line that is not JSON is kept as {raw}). */
  readonly lines: any[];
  /** Resolves with the first line (past or future) matching `predicate`; rejects on timeout or exit. */
  waitFor(predicate: (line: any) => boolean, timeoutMs?: number): Promise<any>;
}

export function followJsonLines(proc: ChildProcess, defaultTimeoutMs = 20_000): JsonLines {
  const lines: any[] = [];
  const waiters: { predicate: (l: any) => boolean; resolve: (l: any) => void }[] = [];
  let buffered = '';
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let parsed: any;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { raw: text };
      }
      lines.push(parsed);
      for (const w of [...waiters]) {
        if (w.predicate(parsed)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const tail = () => lines.slice(-30).map((l) => JSON.stringify(l)).join('\n');
  return {
    lines,
    waitFor: (predicate, timeoutMs = defaultTimeoutMs) =>
      new Promise((resolve, reject) => {
        const found = lines.find(predicate);
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; last lines:\n${tail()}`)), timeoutMs);
        waiters.push({ predicate, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        proc.once('exit', (code) => (clearTimeout(timer), reject(new Error(`process exited with ${code}; last lines:\n${tail()}`))));
      }),
  };
}
