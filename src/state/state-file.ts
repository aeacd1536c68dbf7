/**
 * The last-known-state file: a nameserver following Redis keeps its latest site
 * states on disk, so one that starts while Redis is down answers from them instead of assuming
 * every site up. Written atomically (temporary file + rename), at most once per `minIntervalMs`.
 * Format (JSON): { "version": 1, "writtenAt": <ms>, "epoch"?: <the store's epoch, keys.ts>,
 * "sites": { "<zone>/<site>": SiteState } }. The epoch tells a nameserver started from the file
 * whether the store it finds later is the one the file came from or lost its contents since.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, accessSync, constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../util/logger.js';
import type { SiteState } from './snapshot.js';

export const DEFAULT_STATE_FILE = '.sitedns/last-state.json';

const siteStateSchema = z.object({
  up: z.boolean(),
  load: z.number().optional(),
  utilization: z.number().optional(),
  rttMs: z.number().optional(),
  checkedAt: z.number().optional(),
  loadAt: z.number().optional(),
  reason: z.string().optional(),
  forced: z.object({ state: z.enum(['down', 'up']), by: z.string(), reason: z.string(), until: z.number() }).optional(),
});
const fileSchema = z.object({ version: z.literal(1), writtenAt: z.number(), epoch: z.string().optional(), sites: z.record(z.string(), siteStateSchema) });

export interface LoadedStateFile {
  readonly writtenAt: number;
  readonly epoch?: string;
  readonly sites: Map<string, SiteState>;
}

export function readStateFile(path: string): LoadedStateFile | { error: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message };
  }
  try {
    const parsed = fileSchema.safeParse(JSON.parse(text));
    if (!parsed.success) return { error: 'not a sitedns state file' };
    const { writtenAt, epoch } = parsed.data;
    return { writtenAt, ...(epoch !== undefined && { epoch }), sites: new Map(Object.entries(parsed.data.sites) as [string, SiteState][]) };
  } catch {
    return { error: 'not JSON' };
  }
}

export class StateFileWriter {
  readonly path: string;
  private pending: ReadonlyMap<string, SiteState> | undefined;
  private epoch: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastWrite = 0;
  private disabled = false;

  constructor(
    path: string,
    private readonly log: Logger,
    private readonly minIntervalMs = 1000,
  ) {
    this.path = resolve(path);
  }

  /** Checks the directory can be written; false (and a log line) disables the file. */
  usable(): boolean {
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      accessSync(dirname(this.path), constants.W_OK);
      return true;
    } catch (error) {
      this.disabled = true;
      this.log.warn({ path: this.path, err: (error as Error).message }, 'last-known-state file disabled: its directory is not writable');
      return false;
    }
  }

  save(sites: ReadonlyMap<string, SiteState>, epoch?: string): void {
    if (this.disabled) return;
    this.pending = sites;
    this.epoch = epoch;
    if (this.timer) return;
    const wait = Math.max(0, this.lastWrite + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
    this.timer.unref?.();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const sites = this.pending;
    if (!sites || this.disabled) return;
    this.pending = undefined;
    this.lastWrite = Date.now();
    const body = JSON.stringify({ version: 1, writtenAt: this.lastWrite, ...(this.epoch !== undefined && { epoch: this.epoch }), sites: Object.fromEntries(sites) });
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, body);
      renameSync(tmp, this.path);
    } catch (error) {
      this.disabled = true;
      this.log.warn({ path: this.path, err: (error as Error).message }, 'last-known-state file disabled: cannot write it');
    }
  }
}
