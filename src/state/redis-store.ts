/**
 * The state store in Redis (ioredis), shared by probers and any number of nameservers. Key names
 * and formats are in keys.ts (docs/state.md). Every write goes with a PUBLISH of a notice that
 * carries the new value, in one MULTI, so followers apply it without a re-read. How the clients
 * connect (one server or Sentinel, retries, no offline queue) is in redis-connection.ts.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { CodedError } from '../util/coded-error.js';
import type { Logger } from '../util/logger.js';
import { describeRedis, redisClientOptions, type RedisConnection } from './redis-connection.js';
import { AUDIT_TRAIL_LENGTH, mergeTrails, trailOf } from './audit.js';
import { auditEntrySchema, currentSiteSchema, decode, encode, forcedSchema, keyNames, noticeSchema, probeViewSchema, proberInfoSchema, reportSchema, DEFAULT_PREFIX, type KeyNames } from './keys.js';
import type { AuditEntry, CurrentSite, ForcedState, LoadReport, Notice, ProbeView, ProberInfo, RestoreResult, StateStore, StoreContents } from './types.js';
import { undrainedAt } from './undrained.js';

export type RedisStoreOptions = RedisConnection & {
  prefix?: string;
  logger: Logger;
};

/** Redis refused the credentials (NOAUTH: a password is needed; WRONGPASS: the user or password is wrong). */
export class StoreAuthError extends CodedError<'ESTORE_AUTH'> {
  constructor(message: string) {
    super('ESTORE_AUTH', message);
  }
}

/** Redis's replies to a client whose credentials it does not accept (Redis 6+ and older servers). */
const AUTH_REFUSED = /^(NOAUTH|WRONGPASS)\b|^ERR (invalid password|AUTH <password> called without any password configured)/;

/**
 * A forced state written back, in one step: not when the site was undrained at or after it was
 * set (its undrain record, state/undrained.ts), never over one already there (HSETNX), with its
 * notice. KEYS: forced, undrained, notices; ARGV: site key, value, notice, the value's `at`.
 * Returns 1 written, 0 present, -1 undrained.
 */
const RESTORE_FORCED = `
local record = redis.call('HGET', KEYS[2], ARGV[1])
if record then
  local ok, undrained = pcall(cjson.decode, record)
  if ok and type(undrained) == 'table' and tonumber(undrained['at']) ~= nil and tonumber(undrained['at']) >= tonumber(ARGV[4]) then return -1 end
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('PUBLISH', KEYS[3], ARGV[3])
  return 1
end
return 0`;

/**
 * An undrain, in one step: the forced state deleted, the site's undrain record set, the records
 * past their `until` pruned (state/undrained.ts), the notice. KEYS: forced, undrained, notices;
 * ARGV: site key, record, notice, now.
 */
const UNDRAIN = `
redis.call('HDEL', KEYS[1], ARGV[1])
local records = redis.call('HGETALL', KEYS[2])
for i = 1, #records, 2 do
  local ok, undrained = pcall(cjson.decode, records[i + 1])
  if not ok or type(undrained) ~= 'table' or tonumber(undrained['until']) == nil or tonumber(undrained['until']) < tonumber(ARGV[4]) then redis.call('HDEL', KEYS[2], records[i]) end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[3])
return 1`;

/** How long after ioredis gave a client up it is connected again. */
const RECONNECT_AFTER_END_MS = 200;

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly keys: KeyNames;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly log: Logger;
  private readonly noticeListeners = new Set<(n: Notice) => void>();
  private readonly connectionListeners = new Set<(c: boolean) => void>();
  private readonly lossListeners = new Set<() => void>();
  private subscribed = false;
  /** The contents' epoch as last seen (keys.ts); checked on every connect before it is announced. */
  private knownEpoch: string | undefined;
  private epochChecked = false;
  private closed = false;
  private badValues = 0;
  /** Redis's last refusal of the credentials, until a connection is ready again. */
  private authRefusal: string | undefined;
  private readonly where: string;

  constructor(options: RedisStoreOptions) {
    this.keys = keyNames(options.prefix ?? DEFAULT_PREFIX);
    this.log = options.logger.child({ component: 'redis' });
    this.cmd = openClient(options, 'sitedns');
    this.sub = openClient(options, 'sitedns-sub', { commandTimeout: undefined });
    this.where = describeRedis(options);
    for (const client of [this.cmd, this.sub]) {
      // ioredis reports every failed (re)connect as an 'error' event; the state follower logs the
      // outage once, so these stay at debug level. A refused password is no outage that passes
      // by itself: it is logged once, at error.
      client.on('error', (error) => {
        if (!AUTH_REFUSED.test(error.message)) return this.log.debug({ err: error.message }, 'redis error');
        if (this.authRefusal === undefined) this.log.error({ redis: this.where, err: error.message }, 'Redis refused the credentials: check the password (and user) in the Redis URL');
        this.authRefusal = error.message;
        for (const l of this.connectionListeners) l(false);
      });
      client.on('ready', () => (this.authRefusal = undefined));
      // ioredis gives a client up ('end') when a Sentinel connect is cut short, as when the
      // sentinels announce the new master while it is still asking for the old one; the store
      // connects it again, so that a failover never leaves a process without Redis.
      client.on('end', () => {
        if (this.closed) return;
        this.log.debug({ connection: client.options.connectionName }, 'redis client ended: connecting again');
        setTimeout(() => {
          if (!this.closed && client.status === 'end') client.connect().catch(() => undefined);
        }, RECONNECT_AFTER_END_MS);
      });
    }
    this.cmd.on('ready', () => void this.checkEpoch().then(() => this.maybeConnected()));
    this.sub.on('ready', () => {
      this.sub
        .subscribe(this.keys.notices)
        .then(() => {
          this.subscribed = true;
          this.maybeConnected();
        })
        .catch((error) => this.log.debug({ err: (error as Error).message }, 'subscribe failed'));
    });
    this.sub.on('message', (channel: string, text: string) => {
      if (channel !== this.keys.notices) return;
      const notice = decode(noticeSchema, text) as Notice | undefined;
      if (!notice) return this.bad('notice', text);
      for (const l of this.noticeListeners) l(notice);
    });
    for (const client of [this.cmd, this.sub]) {
      client.on('close', () => {
        if (client === this.sub) this.subscribed = false;
        else this.epochChecked = false;
        if (!this.closed) for (const l of this.connectionListeners) l(false);
      });
    }
  }

  private maybeConnected(): void {
    if (!this.connected()) return;
    for (const l of this.connectionListeners) l(true);
  }

  private bad(what: string, text: string): void {
    // Logged for the first few only: a foreign writer must not flood the log.
    if (this.badValues++ < 5) this.log.warn({ what, value: text.slice(0, 200) }, 'ignoring a malformed value in Redis');
  }

  connected(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready' && this.subscribed && this.epochChecked;
  }

  epoch(): string | undefined {
    return this.knownEpoch;
  }

  assumeEpoch(epoch: string): void {
    this.knownEpoch ??= epoch;
  }

  /** On connect: the contents' epoch, set when missing. A failure leaves it to the next read. */
  private async checkEpoch(): Promise<void> {
    try {
      await this.noteEpoch(await this.cmd.get(this.keys.epoch));
    } catch (error) {
      this.log.debug({ err: (error as Error).message }, 'epoch check failed');
    }
    this.epochChecked = this.cmd.status === 'ready';
  }

  /**
   * Compares the epoch just read with the one last seen; a missing one is set first (SET NX, so
   * every process agrees on the new one). A change means the contents were lost in between: the
   * loss listeners run before the caller gets its result.
   */
  private async noteEpoch(seen: string | null): Promise<void> {
    if (seen !== null && seen === this.knownEpoch) return;
    let current = seen;
    if (current === null) {
      const results = (await this.cmd.multi().set(this.keys.epoch, randomUUID(), 'NX').get(this.keys.epoch).exec())!;
      for (const [error] of results) if (error) throw error;
      current = results[1][1] as string;
    }
    const before = this.knownEpoch;
    this.knownEpoch = current;
    if (before === undefined || before === current) return;
    this.log.debug({ redis: this.where, before, now: current }, 'the state store lost its contents');
    for (const l of this.lossListeners) l();
  }

  ready(timeoutMs: number): Promise<void> {
    if (this.connected()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        this.connectionListeners.delete(listener);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => settle(this.refusedError() ?? new Error(`Redis not reachable within ${timeoutMs}ms`)), timeoutMs);
      // Refused credentials end the wait at once: retrying will not change Redis's answer.
      const listener = (connected: boolean) => (connected ? settle() : this.authRefusal !== undefined && settle(this.refusedError()));
      this.connectionListeners.add(listener);
    });
  }

  /** The error for Redis's last refusal of the credentials, if it refused them. */
  private refusedError(): StoreAuthError | undefined {
    const refusal = this.authRefusal;
    if (refusal === undefined) return undefined;
    const why = refusal.startsWith('NOAUTH') ? 'it needs a password (redis://:PASSWORD@host:port)' : 'the user or password is wrong';
    return new StoreAuthError(`Redis at ${this.where} refused the credentials (${refusal.split(' ')[0]}): ${why}`);
  }

  async readAll(): Promise<StoreContents> {
    const k = this.keys;
    const [probersRaw, forcedRaw, reportsRaw, currentRaw, epoch] = (await this.cmd.multi().hgetall(k.probers).hgetall(k.forced).hgetall(k.reports).hgetall(k.current).get(k.epoch).exec())!.map(([error, value]) => {
      if (error) throw error;
      return value as Record<string, string>;
    });
    await this.noteEpoch(epoch as unknown as string | null);
    const contents: StoreContents = { probers: new Map(), views: new Map(), forced: new Map(), reports: new Map(), current: new Map() };
    for (const [id, text] of Object.entries(probersRaw)) {
      const info = decode(proberInfoSchema, text);
      if (info) contents.probers.set(id, info);
      else this.bad(`${k.probers} ${id}`, text);
    }
    for (const [key, text] of Object.entries(forcedRaw)) {
      const forced = decode(forcedSchema, text);
      if (forced) contents.forced.set(key, forced);
      else this.bad(`${k.forced} ${key}`, text);
    }
    for (const [key, text] of Object.entries(reportsRaw)) {
      const report = decode(reportSchema, text);
      if (report) contents.reports.set(key, report);
      else this.bad(`${k.reports} ${key}`, text);
    }
    for (const [key, text] of Object.entries(currentRaw)) {
      const current = decode(currentSiteSchema, text);
      if (current) contents.current.set(key, current);
      else this.bad(`${k.current} ${key}`, text);
    }
    const ids = [...contents.probers.keys()];
    if (ids.length > 0) {
      const pipeline = this.cmd.pipeline();
      for (const id of ids) pipeline.hgetall(k.views(id));
      const results = (await pipeline.exec())!;
      results.forEach(([error, value], i) => {
        if (error) throw error;
        const views = new Map<string, ProbeView>();
        for (const [key, text] of Object.entries(value as Record<string, string>)) {
          const view = decode(probeViewSchema, text);
          if (view) views.set(key, view);
          else this.bad(`${k.views(ids[i])} ${key}`, text);
        }
        contents.views.set(ids[i], views);
      });
    }
    return contents;
  }

  private async publishWith(notice: Notice, write: (m: ReturnType<Redis['multi']>) => void): Promise<void> {
    const multi = this.cmd.multi();
    write(multi);
    multi.publish(this.keys.notices, encode(notice));
    const results = await multi.exec();
    for (const [error] of results ?? []) if (error) throw error;
  }

  writeView(prober: string, key: string, view: ProbeView | null): Promise<void> {
    const hash = this.keys.views(prober);
    return this.publishWith({ t: 'view', prober, key, view }, (m) => (view ? m.hset(hash, key, encode(view)) : m.hdel(hash, key)));
  }

  async heartbeat(info: ProberInfo, announce = false): Promise<void> {
    if (announce) return this.publishWith({ t: 'prober', prober: info.id, info }, (m) => m.hset(this.keys.probers, info.id, encode(info)));
    // With the epoch: a prober learns of lost contents within a heartbeat, reconnect or not.
    const results = (await this.cmd.multi().hset(this.keys.probers, info.id, encode(info)).get(this.keys.epoch).exec())!;
    for (const [error] of results) if (error) throw error;
    await this.noteEpoch(results[1][1] as string | null);
  }

  removeProber(id: string): Promise<void> {
    return this.publishWith({ t: 'prober', prober: id, info: null }, (m) => m.hdel(this.keys.probers, id).del(this.keys.views(id)));
  }

  /** Forgets probers silent for longer than `olderThanMs` (a crashed prober's leftovers). */
  async pruneProbers(olderThanMs: number, now = Date.now()): Promise<string[]> {
    const raw = await this.cmd.hgetall(this.keys.probers);
    const gone: string[] = [];
    for (const [id, text] of Object.entries(raw)) {
      const info = decode(proberInfoSchema, text);
      if (!info || now - info.heartbeatAt > olderThanMs) gone.push(id);
    }
    for (const id of gone) await this.removeProber(id);
    return gone;
  }

  async setForced(key: string, forced: ForcedState | null, now = Date.now()): Promise<void> {
    if (forced !== null) return this.publishWith({ t: 'forced', key, forced }, (m) => m.hset(this.keys.forced, key, encode(forced)));
    await this.cmd.eval(UNDRAIN, 3, this.keys.forced, this.keys.undrained, this.keys.notices, key, encode(undrainedAt(now)), encode({ t: 'forced', key, forced: null }), String(now));
  }

  async restoreForced(key: string, forced: ForcedState): Promise<RestoreResult> {
    const result = await this.cmd.eval(RESTORE_FORCED, 3, this.keys.forced, this.keys.undrained, this.keys.notices, key, encode(forced), encode({ t: 'forced', key, forced }), String(forced.at));
    return result === 1 ? 'written' : result === -1 ? 'undrained' : 'present';
  }

  report(key: string, report: LoadReport): Promise<void> {
    return this.publishWith({ t: 'report', key, report }, (m) => m.hset(this.keys.reports, key, encode(report)));
  }

  setCurrent(key: string, current: CurrentSite): Promise<void> {
    return this.publishWith({ t: 'current', key, current }, (m) => m.hset(this.keys.current, key, encode(current)));
  }

  /** XADD with MAXLEN ~ (Redis trims whole stream nodes, so a trail may hold a few more than it keeps; reads take the newest AUDIT_TRAIL_LENGTH). */
  async appendAudit(entry: AuditEntry): Promise<void> {
    await this.cmd.xadd(this.keys.audit[trailOf(entry.action)], 'MAXLEN', '~', AUDIT_TRAIL_LENGTH, '*', 'entry', encode(entry));
  }

  async readAudit(): Promise<AuditEntry[]> {
    const trails = [this.keys.audit.operator, this.keys.audit.reports];
    const multi = this.cmd.multi();
    for (const key of trails) multi.xrevrange(key, '+', '-', 'COUNT', AUDIT_TRAIL_LENGTH);
    const results = (await multi.exec())!;
    return mergeTrails(
      ...results.map(([error, value], i) => {
        if (error) throw error;
        const entries: AuditEntry[] = [];
        for (const [id, fields] of (value as [string, string[]][]).reverse()) {
          const text = fields.find((_, j) => j % 2 === 1 && fields[j - 1] === 'entry');
          const entry = decode(auditEntrySchema, text);
          if (entry) entries.push(entry);
          else this.bad(`${trails[i]} ${id}`, String(text));
        }
        return entries;
      }),
    );
  }

  subscribe(onNotice: (notice: Notice) => void, onConnection?: (connected: boolean) => void, onLoss?: () => void): () => void {
    this.noticeListeners.add(onNotice);
    if (onConnection) this.connectionListeners.add(onConnection);
    if (onLoss) this.lossListeners.add(onLoss);
    if (onConnection && this.connected()) queueMicrotask(() => onConnection(true));
    return () => {
      this.noticeListeners.delete(onNotice);
      if (onConnection) this.connectionListeners.delete(onConnection);
      if (onLoss) this.lossListeners.delete(onLoss);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.noticeListeners.clear();
    this.connectionListeners.clear();
    this.lossListeners.clear();
    // QUIT ends the connection to Redis but not the sentinel connections of ioredis's failover
    // detector; disconnect() afterwards closes those too, so that a command can exit.
    await Promise.all([this.cmd, this.sub].map((client) => client.quit().then(() => client.disconnect(), () => client.disconnect())));
  }
}

function openClient(connection: RedisConnection, name: string, overrides: RedisOptions = {}): Redis {
  const { url, options } = redisClientOptions(connection, name);
  return url === undefined ? new Redis({ ...options, ...overrides }) : new Redis(url, { ...options, ...overrides });
}
