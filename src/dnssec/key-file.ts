/**
 * One key file (docs/dnssec.md#keys): `K<zone>+<algorithm>+<key tag>.json` in the key directory,
 * a JSON object holding the zone, algorithm, role, key tag, timing metadata (ISO 8601 times) and
 * the private key as PKCS#8 PEM. Files are written 0600 in a directory made 0700: the private key
 * signs for the zone.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CodedError } from '../util/coded-error.js';

export const KEY_FILE_FORMAT = 'sitedns-dnssec-key/1';
export const DEFAULT_KEY_DIR = '.sitedns/keys';

export type KeyRole = 'csk' | 'ksk' | 'zsk';

export type KeyErrorCode =
  | 'EKEY_DIR' // the key directory is missing or cannot be listed
  | 'EKEY_NONE' // a signed zone has no key file
  | 'EKEY_READ' // a key file cannot be read
  | 'EKEY_WRITE' // a new key file or its timing cannot be written
  | 'EKEY_CORRUPT' // a key file is not a key (JSON, fields, PEM, key tag)
  | 'EKEY_ZONE' // a key file named for one zone holds another's key
  | 'EKEY_ALGORITHM' // a key's algorithm is not the zone's
  | 'EKEY_ROLE' // a key's role does not fit the zone's key kind (csk, or ksk+zsk)
  | 'EKEY_INACTIVE' // no key signs the zone data, or none the DNSKEY RRset, now
  | 'EKEY_MODE' // warning: a key file group or others may read
  | 'EKEY_ROLLOVER'; // a rollover that cannot be scheduled

/** A key problem, naming the file (or directory) it is about; `reason` is the message without it. */
export class KeyError extends CodedError<KeyErrorCode> {
  constructor(
    code: KeyErrorCode,
    readonly file: string,
    readonly reason: string,
  ) {
    super(code, `${file}: ${reason}`);
  }
}

const isoTime = z.iso.datetime({ offset: true });
const optionalTime = isoTime.nullable();

const keyFileSchema = z
  .object({
    format: z.literal(KEY_FILE_FORMAT),
    zone: z.string().min(1),
    algorithm: z.union([z.literal(13), z.literal(15)]),
    role: z.enum(['csk', 'ksk', 'zsk']),
    keyTag: z.number().int().min(0).max(65535),
    created: isoTime,
    publish: isoTime,
    activate: optionalTime,
    retire: optionalTime,
    remove: optionalTime,
    privateKey: z.string().startsWith('-----BEGIN PRIVATE KEY-----'),
  })
  .strict();

export type KeyFileContents = z.infer<typeof keyFileSchema>;

/** The timing metadata of a key in ms since the epoch; null: not scheduled (never). */
export interface KeyTiming {
  readonly created: number;
  readonly publish: number;
  readonly activate: number | null;
  readonly retire: number | null;
  readonly remove: number | null;
}

export function keyFileName(zone: string, algorithm: number, tag: number): string {
  return `K${zone}+${String(algorithm).padStart(3, '0')}+${String(tag).padStart(5, '0')}.json`;
}

/** The key files of `zone` in `dir` (by name; a file's contents are checked when read). */
export function zoneKeyFiles(dir: string, zone: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new KeyError('EKEY_DIR', dir, code === 'ENOENT' ? 'no such key directory (sitedns dnssec keygen creates it)' : `cannot list the key directory: ${(error as Error).message}`);
  }
  const prefix = `K${zone}+`;
  return names
    .filter((name) => name.startsWith(prefix) && name.endsWith('.json') && /^\d{3}\+\d{5}\.json$/.test(name.slice(prefix.length)))
    .sort()
    .map((name) => join(dir, name));
}

/** Whether group or others may read the file (RFC 6781 §3.4.3: private keys are kept private). */
export function readableByOthers(file: string): boolean {
  try {
    return (statSync(file).mode & 0o077) !== 0;
  } catch (error) {
    throw new KeyError('EKEY_READ', file, `cannot read the key file: ${(error as Error).message}`);
  }
}

export function readKeyFile(file: string): KeyFileContents {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new KeyError('EKEY_READ', file, `cannot read the key file: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyError('EKEY_CORRUPT', file, 'not a key file (not JSON)');
  }
  const parsed = keyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KeyError('EKEY_CORRUPT', file, `not a key file: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

export function keyTiming(contents: KeyFileContents): KeyTiming {
  const ms = (time: string | null) => (time === null ? null : Date.parse(time));
  return { created: Date.parse(contents.created), publish: Date.parse(contents.publish), activate: ms(contents.activate), retire: ms(contents.retire), remove: ms(contents.remove) };
}

export function isoTimes(timing: KeyTiming): Pick<KeyFileContents, 'created' | 'publish' | 'activate' | 'retire' | 'remove'> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return { created: new Date(timing.created).toISOString(), publish: new Date(timing.publish).toISOString(), activate: iso(timing.activate), retire: iso(timing.retire), remove: iso(timing.remove) };
}

/** Makes the key directory (0700) if it is missing; throws KeyError naming it. */
export function makeKeyDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new KeyError('EKEY_DIR', dir, `cannot make the key directory: ${(error as Error).message}`);
  }
}

/**
 * Writes a key file 0600, whole or not at all (a temporary file renamed over it): a nameserver
 * reloading meanwhile reads the old version or the new one, never half of one.
 */
export function writeKeyFile(file: string, contents: KeyFileContents): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${JSON.stringify(contents, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temporary, 0o600); // the umask may have taken bits off; never added any
    renameSync(temporary, file);
  } catch (error) {
    throw new KeyError('EKEY_WRITE', file, `cannot write the key file: ${(error as Error).message}`);
  }
}
