/**
 * A zone's keys from the key directory (docs/dnssec.md#keys): read, checked against the zone's
 * settings, and turned into the ZoneKeySet of a moment by their timing metadata. The one entry
 * point for `serve`'s reload path and for `sitedns check` and `sitedns dnssec` is keysForZone.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DnssecSettings } from '../model/zone-model.js';
import { dnskeyBytes, keyTag, publicKeyField } from './dnskey.js';
import { isoTimes, keyFileName, KeyError, keyTiming, KEY_FILE_FORMAT, makeKeyDir, readableByOthers, readKeyFile, writeKeyFile, zoneKeyFiles, type KeyRole, type KeyTiming, type KeyErrorCode } from './key-file.js';
import { flagsOf, keySetAt, timingProblem, type StoredKey } from './key-timing.js';
import type { ZoneKeySet } from './types.js';

/** A key problem as the reload path and `check` report it: the file (or directory) and why. */
export interface KeyProblem {
  readonly code: KeyErrorCode;
  readonly file: string;
  readonly message: string;
}

export type KeySetLoad =
  | { readonly keySet: ZoneKeySet; readonly warnings: readonly KeyProblem[]; readonly created: readonly string[] }
  | { readonly problem: KeyProblem; readonly warnings: readonly KeyProblem[] };

export interface KeysForZoneOptions {
  /** `serve`: a signed zone without keys (or without a key directory) gets new ones. `check` never creates. */
  readonly create?: boolean;
}

const ALGORITHM_NAMES = { 13: 'ECDSAP256SHA256', 15: 'ED25519' } as const;

export function algorithmName(algorithm: 13 | 15): string {
  return ALGORITHM_NAMES[algorithm];
}

function problemOf(error: unknown): KeyProblem {
  if (error instanceof KeyError) return { code: error.code, file: error.file, message: error.reason };
  throw error;
}

/** The roles a zone's key kind takes. */
function rolesFor(settings: DnssecSettings): readonly KeyRole[] {
  return settings.keys === 'csk' ? ['csk'] : ['ksk', 'zsk'];
}

/** Reads and checks one key file of `zone`; throws KeyError. */
function readZoneKey(file: string, zone: string, settings?: DnssecSettings): StoredKey {
  const contents = readKeyFile(file);
  if (contents.zone !== zone) throw new KeyError('EKEY_ZONE', file, `holds a key of zone ${contents.zone}, not ${zone}`);
  if (settings !== undefined && contents.algorithm !== settings.algorithm) throw new KeyError('EKEY_ALGORITHM', file, `key algorithm ${contents.algorithm} (${algorithmName(contents.algorithm)}), but zone ${zone} signs with ${settings.algorithm} (${algorithmName(settings.algorithm)})`);
  if (settings !== undefined && !rolesFor(settings).includes(contents.role)) throw new KeyError('EKEY_ROLE', file, `a ${contents.role.toUpperCase()}, but zone ${zone} signs with keys: ${settings.keys}`);
  let privateKey: KeyObject;
  let publicKey: Buffer;
  try {
    privateKey = createPrivateKey({ key: contents.privateKey, format: 'pem' });
    publicKey = publicKeyField(privateKey, contents.algorithm);
  } catch (error) {
    throw new KeyError('EKEY_CORRUPT', file, `the private key is not an algorithm ${contents.algorithm} key: ${(error as Error).message}`);
  }
  const flags = flagsOf(contents.role);
  const tag = keyTag(dnskeyBytes({ flags, algorithm: contents.algorithm, publicKey }));
  if (tag !== contents.keyTag) throw new KeyError('EKEY_CORRUPT', file, `key tag ${contents.keyTag} in the file, but its key has tag ${tag}`);
  const timing = keyTiming(contents);
  const wrong = timingProblem(timing);
  if (wrong !== null) throw new KeyError('EKEY_CORRUPT', file, `timing out of order: ${wrong}`);
  return { key: Object.freeze({ keyTag: tag, algorithm: contents.algorithm, flags, publicKey, privateKey, file }), role: contents.role, timing };
}

/** Every key file of `zone` in `dir`, read and checked (throws KeyError), with a warning per file others may read. */
export function readZoneKeys(dir: string, zone: string, settings?: DnssecSettings): { keys: StoredKey[]; warnings: KeyProblem[] } {
  const warnings: KeyProblem[] = [];
  const keys = zoneKeyFiles(dir, zone).map((file) => {
    const key = readZoneKey(file, zone, settings);
    if (readableByOthers(file)) warnings.push({ code: 'EKEY_MODE', file, message: 'group or others may read this private key (chmod 600 it)' });
    return key;
  });
  return { keys, warnings };
}

/**
 * The key set of signed `zone` at `now` from the key files in `dir`, or the problem that refuses
 * the zone. A key set needs a key that signs the zone data and one that signs the DNSKEY RRset now.
 */
export function loadZoneKeySet(dir: string, zone: string, settings: DnssecSettings, now: number): KeySetLoad {
  let read: { keys: StoredKey[]; warnings: KeyProblem[] };
  try {
    read = readZoneKeys(dir, zone, settings);
  } catch (error) {
    return { problem: problemOf(error), warnings: [] };
  }
  const { keys, warnings } = read;
  if (keys.length === 0) return { problem: { code: 'EKEY_NONE', file: dir, message: `no key file for signed zone ${zone} (sitedns dnssec keygen ${zone})` }, warnings };
  const keySet = keySetAt(zone, keys, now);
  if (keySet.zoneSigning.length === 0 || keySet.keySigning.length === 0) {
    const missing = keySet.zoneSigning.length === 0 ? 'the zone data' : 'the DNSKEY RRset';
    const next = Number.isFinite(keySet.nextChangeAt) ? ` (the next key change is at ${new Date(keySet.nextChangeAt).toISOString()})` : '';
    return { problem: { code: 'EKEY_INACTIVE', file: dir, message: `no key of zone ${zone} signs ${missing} now${next}` }, warnings };
  }
  return { keySet, warnings, created: [] };
}

/**
 * The one call for a signed zone's keys: loadZoneKeySet, and with `create` (serve), first new keys
 * for a zone that has none, active at once (RFC 6781 §4.1: a first key needs no rollover).
 */
export function keysForZone(dir: string, zone: string, settings: DnssecSettings, now: number, options: KeysForZoneOptions = {}): KeySetLoad {
  const created: string[] = [];
  if (options.create && (!existsSync(dir) || noKeyFiles(dir, zone))) {
    makeKeyDir(dir);
    for (const role of rolesFor(settings)) created.push(generateKey(dir, zone, settings.algorithm, role, { created: now, publish: now, activate: now, retire: null, remove: null }).key.file);
  }
  const load = loadZoneKeySet(dir, zone, settings, now);
  return 'keySet' in load ? { ...load, created } : load;
}

/** Where a load finds the keys of signed zones, and the clock their timing is read against. */
export interface KeySource {
  /** The zone's key set at `now()`; throws a KeyError naming the file when the keys fail. */
  keysFor(zone: string, settings: DnssecSettings): ZoneKeySet;
  now(): number;
}

/** What a key directory reports besides key sets: keys it created, key files others may read. */
export interface KeyDirectoryEvents {
  readonly created?: (zone: string, files: readonly string[]) => void;
  /** Once per file while it stays readable by others. */
  readonly warning?: (warning: KeyProblem) => void;
}

/** The key directory as a KeySource: keysForZone at `now()`, its problem thrown as a KeyError. */
export function keyDirectory(dir: string, options: KeysForZoneOptions & { readonly now?: () => number; readonly events?: KeyDirectoryEvents } = {}): KeySource {
  const now = options.now ?? Date.now;
  const warned = new Map<string, Set<string>>();
  return {
    now,
    keysFor(zone: string, settings: DnssecSettings): ZoneKeySet {
      const load = keysForZone(dir, zone, settings, now(), options);
      const files = new Set(load.warnings.map((w) => w.file));
      for (const warning of load.warnings) if (!warned.get(zone)?.has(warning.file)) options.events?.warning?.(warning);
      warned.set(zone, files);
      if ('problem' in load) throw new KeyError(load.problem.code, load.problem.file, load.problem.message);
      if (load.created.length > 0) options.events?.created?.(zone, load.created);
      return load.keySet;
    },
  };
}

function noKeyFiles(dir: string, zone: string): boolean {
  try {
    return zoneKeyFiles(dir, zone).length === 0;
  } catch {
    return false; // a directory that cannot be listed is reported by the load, not written to
  }
}

/** A new key pair written as a key file of `zone` (0600, in `dir` made 0700 if missing). */
export function generateKey(dir: string, zone: string, algorithm: 13 | 15, role: KeyRole, timing: KeyTiming): StoredKey {
  makeKeyDir(dir);
  for (;;) {
    const { privateKey } = algorithm === 13 ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    const publicKey = publicKeyField(privateKey, algorithm);
    const flags = flagsOf(role);
    const tag = keyTag(dnskeyBytes({ flags, algorithm, publicKey }));
    const file = join(dir, keyFileName(zone, algorithm, tag));
    if (existsSync(file)) continue; // the same tag as a key of the zone: RFC 4034 Appendix B.1, a new key instead
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    writeKeyFile(file, { format: KEY_FILE_FORMAT, zone, algorithm, role, keyTag: tag, ...isoTimes(timing), privateKey: pem });
    return { key: Object.freeze({ keyTag: tag, algorithm, flags, publicKey, privateKey, file }), role, timing };
  }
}

/** Rewrites a key's timing metadata in its file (the rest of the file as it is). */
export function writeKeyTiming(file: string, timing: KeyTiming): void {
  const contents = readKeyFile(file);
  writeKeyFile(file, { ...contents, ...isoTimes(timing) });
}
