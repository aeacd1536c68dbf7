/**
 * Watches the zones directory (or the single zone file) and calls back, debounced, when a zone
 * file changes. fs.watch on the directory, not on each file: editors save by writing a new file
 * and renaming it over the old one, which a per-file watch loses. Several events from one save
 * (write, rename, chmod) collapse into one reload after the debounce.
 */
import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isZoneFileName } from '../config/load.js';
import type { Logger } from '../util/logger.js';

export interface ZoneWatcher {
  close(): void;
}

export interface WatchOptions {
  /** Quiet time after the last event before reloading. */
  debounceMs: number;
  logger: Logger;
}

export function watchZones(path: string, onChange: () => void, options: WatchOptions): ZoneWatcher {
  const isDirectory = statSync(path).isDirectory();
  const directory = isDirectory ? path : dirname(path);
  const fileName = isDirectory ? undefined : basename(path);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const schedule = (filename: string | null) => {
    if (closed) return;
    if (filename !== null) {
      if (fileName !== undefined ? filename !== fileName : !isZoneFileName(filename)) return;
    }
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) onChange();
    }, options.debounceMs);
  };

  let watcher: FSWatcher;
  try {
    watcher = watch(directory, { persistent: false }, (_event, filename) => schedule(filename === null ? null : filename.toString()));
  } catch (error) {
    options.logger.error({ err: error, directory }, 'cannot watch the zones directory; reload with SIGHUP');
    return { close() {} };
  }
  watcher.on('error', (error) => {
    // Logged once: the watcher is gone after an error (e.g. the directory was removed).
    options.logger.error({ err: error, directory }, 'zone watcher stopped; reload with SIGHUP');
    watcher.close();
  });
  options.logger.debug({ directory, debounceMs: options.debounceMs }, 'watching zone files');
  return {
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher.close();
    },
  };
}
