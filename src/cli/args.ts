/**
 * Flag parsing for every subcommand (node:util parseArgs). Each flag also reads an environment
 * variable SITEDNS_<FLAG> (e.g. --redis -> SITEDNS_REDIS, also SITEDNS_REDIS_URL), so containers
 * can be configured without a command line. `readFlags` checks every value once, against the
 * flag's zod type, and hands the command one typed object.
 */
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { CodedError } from '../util/coded-error.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  default?: string | boolean | string[];
  help: string;
  /** Extra environment variable names, besides SITEDNS_<FLAG>. */
  env?: string[];
  /** What the value (argv, else environment, else default) must be, and what it becomes (flag-values.ts). */
  value?: z.ZodType;
}

export type Flags = Record<string, FlagSpec>;

/** The typed flags of a command: each flag's name -> the output of its `value` type. */
export type FlagValues<F extends Flags> = { readonly [K in keyof F as K extends 'help' ? never : K]: F[K] extends { value: infer V extends z.ZodType } ? z.output<V> : never };

/** A flag value its type refuses: `--flag: "value" why`. */
export class FlagError extends CodedError<'EFLAG'> {
  constructor(message: string) {
    super('EFLAG', message);
  }
}

/** Environment names people expect besides SITEDNS_<FLAG> (12-factor style URLs). */
const ENV_ALIASES: Record<string, string[]> = { redis: ['SITEDNS_REDIS_URL'] };

export function envNames(flag: string, spec: FlagSpec): string[] {
  // --help is for people at a terminal; SITEDNS_HELP=1 in a container would only stop it serving.
  if (flag === 'help') return [];
  return [...new Set([envName(flag), ...(ENV_ALIASES[flag] ?? []), ...(spec.env ?? [])])];
}

export function envName(flag: string): string {
  return `SITEDNS_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/**
 * `fromArgv`: the flags given on the command line, as opposed to SITEDNS_<FLAG> or a default. A
 * conflict on the command line is a mistake worth refusing; the same setting from an environment
 * shared by several kinds of process may only be irrelevant to this one.
 */
export function parseFlags(argv: string[], flags: Flags): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[]; fromArgv: ReadonlySet<string>; fromEnv: ReadonlyMap<string, string> } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, spec] of Object.entries(flags)) {
    options[name] = { type: spec.type };
    if (spec.multiple) options[name].multiple = true;
    if (spec.short) options[name].short = spec.short;
  }
  const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  const values = { ...parsed.values } as Record<string, string | boolean | string[] | undefined>;
  const fromArgv = new Set(Object.keys(parsed.values));
  const fromEnv = new Map<string, string>();
  for (const [name, spec] of Object.entries(flags)) {
    if (values[name] !== undefined) continue;
    for (const variable of envNames(name, spec)) {
      const raw = process.env[variable];
      if (raw === undefined || raw === '') continue;
      values[name] = spec.type === 'boolean' ? /^(1|true|yes|on)$/i.test(raw) : spec.multiple ? raw.split(/[\s,]+/).filter(Boolean) : raw;
      fromEnv.set(name, variable);
      break;
    }
    if (values[name] === undefined && spec.default !== undefined) values[name] = spec.default;
  }
  return { values, positionals: parsed.positionals, fromArgv, fromEnv };
}

export type ReadFlags<F extends Flags> = { readonly help: true } | { readonly help: false; readonly flags: FlagValues<F>; readonly positionals: string[]; readonly fromArgv: ReadonlySet<string> };

/**
 * Parses a command's flags once into one typed object; a value its flag's type refuses throws a
 * FlagError. With --help nothing else is checked: help must print whatever the environment holds.
 */
export function readFlags<F extends Flags>(argv: string[], flags: F): ReadFlags<F> {
  const { values, positionals, fromArgv, fromEnv } = parseFlags(argv, flags);
  if (values.help === true) return { help: true };
  const typed: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(flags)) if (name !== 'help' && spec.value !== undefined) typed[name] = flagValue(name, values[name], spec.value, fromEnv.get(name));
  return { help: false, flags: typed as FlagValues<F>, positionals, fromArgv };
}

/**
 * One flag's value through its type, or a FlagError naming the flag (and the environment variable
 * it came from) and the value. A type's message says what is wrong ("is not a whole number"); one
 * that starts with a quoted value (a duration's; a Redis URL's, its password hidden) stands as it is.
 */
export function flagValue<V extends z.ZodType>(name: string, raw: unknown, type: V, variable?: string): z.output<V> {
  const parsed = type.safeParse(raw);
  if (parsed.success) return parsed.data;
  const message = parsed.error.issues[0]?.message ?? 'is not valid';
  const quoted = JSON.stringify(raw);
  const flag = variable === undefined ? `--${name}` : `--${name} (from ${variable})`;
  throw new FlagError(`${flag}: ${message.startsWith('"') ? message : `${quoted} ${message}`}`);
}

export function flagHelp(flags: Flags): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(flags)) {
    const arg = spec.type === 'string' ? ` <${name === 'listen' || name === 'http' ? 'host:port' : 'value'}>` : '';
    const def = spec.default !== undefined && spec.default !== false ? ` (default: ${Array.isArray(spec.default) ? spec.default.join(' ') : spec.default})` : '';
    const rep = spec.multiple ? ' (repeatable)' : '';
    const env = envNames(name, spec);
    const left = `  --${name}${arg}`;
    lines.push(left.padEnd(Math.max(34, left.length + 2)) + `${spec.help}${rep}${def}${env.length > 0 ? `  [env ${env.join(', ')}]` : ''}`);
  }
  return lines.join('\n');
}
