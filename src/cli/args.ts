/**
 * Flag parsing for every subcommand (node:util parseArgs). Each flag also reads an environment
 * variable SITEDNS_<FLAG> (e.g. --redis -> SITEDNS_REDIS, also SITEDNS_REDIS_URL), so containers
 * can be configured without a command line.
 */
import { parseArgs } from 'node:util';

export interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  default?: string | boolean | string[];
  help: string;
  /** Extra environment variable names, besides SITEDNS_<FLAG>. */
  env?: string[];
}

export type Flags = Record<string, FlagSpec>;

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
export function parseFlags(argv: string[], flags: Flags): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[]; fromArgv: ReadonlySet<string> } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, spec] of Object.entries(flags)) {
    options[name] = { type: spec.type };
    if (spec.multiple) options[name].multiple = true;
    if (spec.short) options[name].short = spec.short;
  }
  const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  const values = { ...parsed.values } as Record<string, string | boolean | string[] | undefined>;
  const fromArgv = new Set(Object.keys(parsed.values));
  for (const [name, spec] of Object.entries(flags)) {
    if (values[name] !== undefined) continue;
    for (const variable of envNames(name, spec)) {
      const raw = process.env[variable];
      if (raw === undefined || raw === '') continue;
      values[name] = spec.type === 'boolean' ? /^(1|true|yes|on)$/i.test(raw) : spec.multiple ? raw.split(/[\s,]+/).filter(Boolean) : raw;
      break;
    }
    if (values[name] === undefined && spec.default !== undefined) values[name] = spec.default;
  }
  return { values, positionals: parsed.positionals, fromArgv };
}

export function flagHelp(flags: Flags): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(flags)) {
    const arg = spec.type === 'string' ? ` <${name === 'listen' || name === 'http' ? 'host:port' : 'value'}>` : '';
    const def = spec.default !== undefined && spec.default !== false ? ` (default: ${Array.isArray(spec.default) ? spec.default.join(' ') : spec.default})` : '';
    const rep = spec.multiple ? ' (repeatable)' : '';
    const env = envNames(name, spec);
    lines.push(`  --${name}${arg}`.padEnd(34) + `${spec.help}${rep}${def}${env.length > 0 ? `  [env ${env.join(', ')}]` : ''}`);
  }
  return lines.join('\n');
}
