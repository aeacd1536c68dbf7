/** `sitedns check <zones>`: validate; exit 1 with one line per problem (file:line: path: message). */
import { compileZoneFiles } from '../config/compile.js';
import { formatProblem } from '../config/errors.js';
import { loadZoneDirectory } from '../config/load.js';
import { flagHelp, readFlags, type Flags } from './args.js';
import { optionalText } from './flag-values.js';

export const checkFlags = {
  zones: { type: 'string', help: 'zone file or directory (or give it as the argument)', value: optionalText },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const checkHelp = `Usage: sitedns check [<zones-dir-or-file>] [--zones <path>]

Validates zone files without serving them. Prints one line per problem,
"file:line: path: message", and exits 1 if there is any; prints a summary and exits 0 otherwise.

${flagHelp(checkFlags)}`;

export function runCheck(argv: string[]): number {
  const read = readFlags(argv, checkFlags);
  if (read.help) {
    console.log(checkHelp);
    return 0;
  }
  const path = read.positionals[0] ?? read.flags.zones ?? 'zones';
  const loaded = loadZoneDirectory(path);
  const compiled = compileZoneFiles(loaded.files);
  const problems = [...loaded.problems, ...compiled.problems];
  for (const p of problems) console.error(formatProblem(p));
  if (problems.length > 0) return 1;
  if (compiled.zones.length === 0) {
    console.error(`${path}: no zone files (*.yaml) found`);
    return 1;
  }
  for (const z of compiled.zones) {
    console.log(`${z.file}: ok: zone ${z.origin}: ${z.nodes.size} names, ${z.sites.length} sites, ${z.groups.length} groups, ${z.pools.length} pools`);
  }
  return 0;
}
