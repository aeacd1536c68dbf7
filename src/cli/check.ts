/** `sitedns check <zones>...`: validate; exit 1 with one line per problem (file:line: path: message). */
import { zoneSetCompiler } from '../config/compile.js';
import { formatProblem, type ConfigProblem } from '../config/errors.js';
import { zoneFileLoads } from '../config/load.js';
import { DEFAULT_KEY_DIR } from '../dnssec/key-file.js';
import { loadZoneKeySet } from '../dnssec/keys.js';
import type { DnssecSettings } from '../model/zone-model.js';
import { flagHelp, readFlags, type Flags } from './args.js';
import { optionalText, text } from './flag-values.js';

export const checkFlags = {
  zones: { type: 'string', help: 'zone file or directory (or give it as the argument)', value: optionalText },
  keys: { type: 'string', default: DEFAULT_KEY_DIR, help: 'DNSSEC key directory: each signed zone\'s keys are checked (never created)', value: text },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const checkHelp = `Usage: sitedns check [<zones-dir-or-file>...] [--zones <path>]

Validates zone files without serving them, every file and directory given (checked as one zone
set: a zone defined twice is a problem), by default zones/, and the keys of signed zones in the
key directory as serve would read them now (never creating any). Prints one line per problem,
"file:line: path: message", and exits 1 if there is any, or if a path holds no zone file;
prints a summary and exits 0 otherwise.

${flagHelp(checkFlags)}`;

export function runCheck(argv: string[]): number {
  const read = readFlags(argv, checkFlags);
  if (read.help) {
    console.log(checkHelp);
    return 0;
  }
  const paths = read.positionals.length > 0 ? read.positionals : [read.flags.zones ?? 'zones'];
  if (read.positionals.length > 0 && read.flags.zones !== undefined) paths.unshift(read.flags.zones);
  // One file at a time: each is compiled as soon as it is read, and only its problems or its
  // summary line are kept (a 100,000-name set holds no more than its largest file in memory).
  const readProblems: ConfigProblem[] = [];
  const compileProblems: ConfigProblem[] = [];
  const summaries: string[] = [];
  const empty: string[] = [];
  const warnings: string[] = [];
  const compile = zoneSetCompiler();
  for (const path of paths) {
    let files = 0;
    for (const loaded of zoneFileLoads(path)) {
      files++;
      if ('problems' in loaded) {
        readProblems.push(...loaded.problems);
        continue;
      }
      const z = compile(loaded);
      if ('problems' in z) compileProblems.push(...z.problems);
      else if (z.dnssec === undefined || !keyProblem(read.flags.keys, z.origin, z.dnssec, compileProblems, warnings)) summaries.push(`${z.file}: ok: zone ${z.origin}: ${z.nodes.size} names, ${z.sites.length} sites, ${z.groups.length} groups, ${z.pools.length} pools`);
    }
    // A path that holds no zone file is a mistake (a typo, an empty glob), not a pass.
    if (files === 0) empty.push(`${path}: no zone files (*.yaml) found`);
  }
  const problems = [...readProblems, ...compileProblems];
  for (const p of problems) console.error(formatProblem(p));
  for (const line of empty) console.error(line);
  for (const line of warnings) console.error(line);
  if (problems.length > 0 || empty.length > 0) return 1;
  for (const line of summaries) console.log(line);
  return 0;
}

/** A signed zone's keys as serve would load them now: a problem is added (true), warnings kept. */
function keyProblem(dir: string, origin: string, settings: DnssecSettings, problems: ConfigProblem[], warnings: string[]): boolean {
  const load = loadZoneKeySet(dir, origin, settings, Date.now());
  for (const w of load.warnings) warnings.push(`warning: ${w.file}: ${w.message}`);
  if (!('problem' in load)) return false;
  problems.push({ file: load.problem.file, line: 0, path: 'dnssec', message: `zone ${origin}: ${load.problem.message}`, code: load.problem.code });
  return true;
}
