/**
 * `sitedns dnssec keygen|ds|status|rollover ZONE`: a signed zone's keys in the key directory
 * (docs/dnssec.md). Only key files are read and written; a running `serve` picks the changes up at
 * its next reload (SIGHUP, or the time the key timing names).
 */
import { z } from 'zod';
import { nameProblem } from '../config/names.js';
import { DNSSEC_ALGORITHM_NUMBERS, DNSSEC_ALGORITHMS } from '../config/schema.js';
import { dnskeyText, dsText } from '../dnssec/dnskey.js';
import { DEFAULT_KEY_DIR, KeyError, type KeyRole } from '../dnssec/key-file.js';
import { keyPhase, keySetAt, type StoredKey } from '../dnssec/key-timing.js';
import { algorithmName, generateKey, readZoneKeys, writeKeyTiming } from '../dnssec/keys.js';
import { planRollover, planRolloverCompletion, type RolloverTimes } from '../dnssec/rollover.js';
import { duration, durationMs } from '../util/duration.js';
import { flagHelp, readFlags, type FlagValues, type Flags } from './args.js';
import { flagDuration, on, optionalText, text } from './flag-values.js';
import { formatTable, outputFlag, printReport } from './output.js';

const roleValue = z.enum(['csk', 'ksk', 'zsk'], { error: 'is not csk, ksk or zsk' });

export const dnssecFlags = {
  keys: { type: 'string', default: DEFAULT_KEY_DIR, help: 'the key directory (serve --keys)', value: text },
  role: { type: 'string', help: 'keygen: the new key\'s role (default csk); rollover: the role to roll', value: roleValue.optional() },
  algorithm: { type: 'string', default: 'ecdsap256sha256', help: 'keygen: ecdsap256sha256 (13) or ed25519 (15)', value: z.enum(DNSSEC_ALGORITHMS, { error: 'is not ecdsap256sha256 or ed25519' }) },
  publish: { type: 'string', help: 'keygen: when the key enters the DNSKEY RRset: now, an ISO 8601 time, or +duration (default now)', value: optionalText },
  activate: { type: 'string', help: 'keygen: when the key starts signing, as --publish (default: when published)', value: optionalText },
  complete: { type: 'boolean', help: 'rollover of a KSK or CSK: the parent serves the new DS; the new key signs, the old one retires', value: on },
  'dnskey-ttl': { type: 'string', default: '1h', help: 'rollover: the TTL of the DNSKEY RRset resolvers may cache', value: flagDuration },
  propagation: { type: 'string', default: '1h', help: 'rollover: time for a change to reach every nameserver of the zone', value: flagDuration },
  'signature-validity': { type: 'string', default: '14d', help: 'rollover: the zone\'s dnssec.validity (how long an old key\'s signatures stay valid)', value: duration },
  output: outputFlag,
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const dnssecHelp = `Usage: sitedns dnssec <keygen | ds | status | rollover> <zone> [flags]

The keys of a signed zone (dnssec: in its zone file; docs/dnssec.md), one file per key in the
key directory. Every nameserver of the zone reads the same keys: copy the directory to each.
  keygen <zone>     a new key (--role, --algorithm, --publish, --activate); prints its file and DS
  ds <zone>         the DS records (SHA-256) to give the parent, each after the DNSKEY it hashes
                    (as a comment): the keys the zone signals as CDS/CDNSKEY now
  status <zone>     every key with its role, state and timing
  rollover <zone> --role zsk|ksk|csk
                    schedule a rollover: a ZSK pre-publishes (the new key signs once the
                    DNSKEY TTL and the propagation time have passed, and the old one goes a
                    signature validity later);
                    a KSK or CSK starts a double-DS rollover: the new key is published and
                    signalled to the parent; give the parent its DS, then run
                    "rollover <zone> --role ksk|csk --complete"
A running serve reads key changes at its next reload (SIGHUP, or the next time in the timing).

${flagHelp(dnssecFlags)}`;

const USAGE = 'usage: sitedns dnssec <keygen | ds | status | rollover> <zone> [flags]';

export async function runDnssec(argv: string[], now = Date.now()): Promise<number> {
  const read = readFlags(argv, dnssecFlags);
  if (read.help) {
    console.log(dnssecHelp);
    return 0;
  }
  const { flags, positionals } = read;
  const [action, zoneArgument, ...extra] = positionals;
  if (zoneArgument === undefined || extra.length > 0) throw new Error(USAGE);
  const zone = zoneName(zoneArgument);
  const dir = flags.keys;
  if (action === 'keygen') return keygen(dir, zone, flags, now);
  if (action === 'ds') return ds(dir, zone, flags.output, now);
  if (action === 'status') return status(dir, zone, flags.output, now);
  if (action === 'rollover') return rollover(dir, zone, flags, now);
  throw new Error(USAGE);
}

type DnssecFlags = FlagValues<typeof dnssecFlags>;

/** A zone as key files name it: lower case, no trailing dot. */
function zoneName(text: string): string {
  const problem = nameProblem(text);
  if (problem !== undefined || text === '@' || text === '.') throw new Error(`zone "${text}": ${problem ?? 'not a zone name'}`);
  return text.toLowerCase().replace(/\.$/, '');
}

/** `now`, an ISO 8601 time, or `+<duration>` from now -> ms since the epoch. */
function timeValue(flag: string, value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (value === 'now') return now;
  if (value.startsWith('+')) return now + durationMs(value.slice(1));
  const ms = z.iso.datetime({ offset: true }).safeParse(value).success ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw new Error(`--${flag}: "${value}" is not now, an ISO 8601 time (2026-06-01T12:00:00Z) or +duration`);
  return ms;
}

/** A key as status and ds report it. */
function keyReport(key: StoredKey, now: number) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    keyTag: key.key.keyTag,
    role: key.role,
    algorithm: key.key.algorithm,
    flags: key.key.flags,
    state: keyPhase(key.timing, now),
    publish: iso(key.timing.publish),
    activate: iso(key.timing.activate),
    retire: iso(key.timing.retire),
    remove: iso(key.timing.remove),
    file: key.key.file,
  };
}

function readKeys(dir: string, zone: string): StoredKey[] {
  const { keys, warnings } = readZoneKeys(dir, zone);
  for (const w of warnings) console.error(`warning: ${w.file}: ${w.message}`);
  return keys;
}

function keygen(dir: string, zone: string, flags: DnssecFlags, now: number): number {
  const role: KeyRole = flags.role ?? 'csk';
  const publish = timeValue('publish', flags.publish, now) ?? now;
  const activate = timeValue('activate', flags.activate, now) ?? publish;
  if (activate < publish) throw new Error('--activate: before --publish (a key signs only once it is published)');
  const algorithm = DNSSEC_ALGORITHM_NUMBERS[flags.algorithm];
  const made = generateKey(dir, zone, algorithm, role, { created: now, publish, activate, retire: null, remove: null });
  const report = { zone, ...keyReport(made, now), dnskey: dnskeyText(zone, made.key), ds: made.role === 'zsk' ? null : dsText(zone, made.key) };
  printReport(flags.output, report, (r) => [`${r.file}: ${r.role.toUpperCase()} ${r.keyTag} (${algorithmName(algorithm)}), published ${r.publish}, active ${r.activate}`, `; ${r.dnskey}`, ...(r.ds === null ? [] : [r.ds])].join('\n'));
  return 0;
}

function ds(dir: string, zone: string, output: DnssecFlags['output'], now: number): number {
  const keys = readKeys(dir, zone);
  const signalled = new Set(keySetAt(zone, keys, now).parentSignals);
  const records = keys.filter((k) => signalled.has(k.key)).map((k) => ({ ...keyReport(k, now), dnskey: dnskeyText(zone, k.key), ds: dsText(zone, k.key) }));
  if (records.length === 0) throw new KeyError('EKEY_NONE', dir, `no key of zone ${zone} is for the parent now (sitedns dnssec status ${zone})`);
  printReport(output, { zone, records }, (r) => r.records.flatMap((k) => [`; ${k.role.toUpperCase()} ${k.keyTag}, ${k.state}: ${k.dnskey}`, k.ds]).join('\n'));
  return 0;
}

function status(dir: string, zone: string, output: DnssecFlags['output'], now: number): number {
  const keys = readKeys(dir, zone);
  const set = keySetAt(zone, keys, now);
  const report = { zone, now: new Date(now).toISOString(), nextChangeAt: Number.isFinite(set.nextChangeAt) ? new Date(set.nextChangeAt).toISOString() : null, keys: keys.map((k) => ({ ...keyReport(k, now), parentSignal: set.parentSignals.includes(k.key) })) };
  printReport(output, report, (r) => {
    const rows = r.keys.map((k) => [String(k.keyTag), k.role.toUpperCase(), algorithmName(k.algorithm as 13 | 15), k.state + (k.parentSignal ? ', CDS' : ''), k.publish ?? '-', k.activate ?? '-', k.retire ?? '-', k.remove ?? '-']);
    const table = rows.length === 0 ? [`no keys of zone ${zone} in ${dir}`] : formatTable(['TAG', 'ROLE', 'ALGORITHM', 'STATE', 'PUBLISH', 'ACTIVATE', 'RETIRE', 'REMOVE'], rows);
    return [...table, ...(r.nextChangeAt === null ? [] : [`next change: ${r.nextChangeAt}`])].join('\n');
  });
  return 0;
}

function rollover(dir: string, zone: string, flags: DnssecFlags, now: number): number {
  if (flags.role === undefined) throw new Error('rollover: --role zsk, ksk or csk');
  const keys = readKeys(dir, zone);
  const times: RolloverTimes = { dnskeyTtlMs: flags['dnskey-ttl'], propagationMs: flags.propagation, signatureValidityMs: flags['signature-validity'] };
  const plan = flags.complete ? planRolloverCompletion(dir, keys, flags.role, now, times) : planRollover(dir, keys, flags.role, now, times);
  for (const change of plan.changes) writeKeyTiming(change.file, change.timing);
  const algorithm = keys.find((k) => k.role === flags.role)!.key.algorithm;
  const made = plan.newKey === undefined ? undefined : generateKey(dir, zone, algorithm, plan.newKey.role, plan.newKey.timing);
  const byFile = new Map(keys.map((k) => [k.key.file, k]));
  const changed = plan.changes.map((c) => keyReport({ ...byFile.get(c.file)!, timing: c.timing }, now));
  const report = { zone, role: flags.role, newKey: made === undefined ? null : keyReport(made, now), changed };
  printReport(flags.output, report, (r) => {
    const lines = r.newKey === null ? [] : [`new ${r.role.toUpperCase()} ${r.newKey.keyTag}: published ${r.newKey.publish}, ${r.newKey.activate === null ? 'signs after "--complete"' : `signs from ${r.newKey.activate}`} (${r.newKey.file})`];
    for (const k of r.changed) lines.push(`${k.role.toUpperCase()} ${k.keyTag}: ${k.activate !== null && k.retire === null ? `signs from ${k.activate}` : `retires ${k.retire}, removed ${k.remove}`}`);
    if (r.newKey !== null && r.role !== 'zsk') lines.push(`give the parent the DS of key ${r.newKey.keyTag} (sitedns dnssec ds ${zone}), then: sitedns dnssec rollover ${zone} --role ${r.role} --complete`);
    return lines.join('\n');
  });
  return 0;
}
