/** `sitedns explain <name>`: the answer a running `sitedns serve` would give now, and why (GET /v1/explain). */
import { flagHelp, readFlags, type Flags } from './args.js';
import { optionalText, text } from './flag-values.js';
import { formatTable, outputFlag, printReport } from './output.js';
import { admin, targetFlags } from './state-target.js';

export const explainFlags = {
  type: { type: 'string', default: 'A', help: 'the query type (A, AAAA, TXT, MX, TYPE65, ...)', value: text },
  client: { type: 'string', default: '127.0.0.1', help: "the resolver's address the answer is for (a pool's topology matches on it)", value: text },
  ecs: { type: 'string', help: 'an EDNS Client Subnet, address/prefix, as a resolver would send it', value: optionalText },
  http: targetFlags.http,
  'http-token': targetFlags['http-token'],
  output: outputFlag,
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const explainHelp = `Usage: sitedns explain <name> [--type <type>] [--client <ip>] [--http <host:port>] [--output json]

Asks a running \`sitedns serve\` (its admin listener, GET /v1/explain) which answer it would give
now to <name> from --client, and why: the zone, the records, for a Pool, Group or Site Name the
policy, the client's topology group and every candidate site with its state, load and whether it
was chosen. Asking changes nothing: the next real answer is the same as without it.

${flagHelp(explainFlags)}`;

/** The body of GET /v1/explain (src/admin/explain.ts). */
interface Explained {
  question: { name: string; type: string; client: string; ecs: string | null };
  rcode: string;
  zone?: string;
  why: string;
  answer?: ExplainedRecord[];
  authority?: ExplainedRecord[];
  additional?: ExplainedRecord[];
  policy?: string;
  family?: string;
  topology?: { group: string | null; sites: string[] } | null;
  candidates?: Candidate[];
  state: { version: number; fresh: boolean; ageSeconds: number | null; zonesGeneration: number };
}

interface ExplainedRecord {
  name: string;
  type: string;
  ttl: number;
  data: string;
}

interface Candidate {
  site: string;
  chosen: boolean;
  hasFamily: boolean;
  addresses: string[];
  state: string;
  load: number | null;
  utilization: number | null;
  loadStale: boolean | null;
  /** The chance that this site is the answer (1 when the policy draws nothing). */
  probability?: number;
  reason: string;
}

export async function runExplain(argv: string[]): Promise<number> {
  const read = readFlags(argv, explainFlags);
  if (read.help) {
    console.log(explainHelp);
    return 0;
  }
  const { flags, positionals } = read;
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0) throw new Error('usage: sitedns explain <name> [--type <type>] [--client <ip>]');
  const query = new URLSearchParams({ name, type: flags.type, client: flags.client });
  if (flags.ecs !== undefined) query.set('ecs', flags.ecs);
  const body = (await admin(flags, 'GET', `/v1/explain?${query}`)) as Explained;
  printReport(flags.output, body, formatExplain);
  return 0;
}

/** The question and rcode, the records by section, why, and the candidate sites as a table. */
export function formatExplain(e: Explained): string {
  const q = e.question;
  const lines = [`${q.name} ${q.type} from ${q.client}${q.ecs ? ` (ECS ${q.ecs})` : ''}: ${e.rcode}${e.zone ? ` (zone ${e.zone})` : ''}`];
  for (const section of ['answer', 'authority', 'additional'] as const) {
    const records = e[section];
    if (records === undefined || records.length === 0) continue;
    lines.push(`${section}:`, ...formatTable(['NAME', 'TTL', 'TYPE', 'DATA'], records.map((r) => [r.name, String(r.ttl), r.type, r.data])).slice(1).map((l) => `  ${l}`));
  }
  lines.push(`why: ${e.why}`);
  if (e.policy !== undefined) {
    const topology = e.topology ? `, topology group ${e.topology.group ?? '(none)'}${e.topology.sites.length > 0 ? ` (${e.topology.sites.join(', ')})` : ''}` : '';
    lines.push(`policy: ${e.policy}, ${e.family}${topology}`);
  }
  if (e.candidates !== undefined && e.candidates.length > 0) {
    const rows = e.candidates.map((c) => [
      c.site,
      c.state,
      c.load === null ? '-' : String(Math.round(c.load * 1000) / 1000),
      c.utilization === null ? '-' : `${Math.round(c.utilization * 100)}%${c.loadStale ? ' stale' : ''}`,
      c.hasFamily ? c.addresses.join(' ') : `(no ${e.family} address)`,
      c.chosen ? 'yes' : '',
      c.probability === undefined ? '-' : `${Math.round(c.probability * 1000) / 10}%`,
      c.reason,
    ]);
    lines.push('', ...formatTable(['SITE', 'STATE', 'LOAD', 'UTIL', 'ADDRESSES', 'CHOSEN', 'CHANCE', 'WHY'], rows));
  }
  const s = e.state;
  lines.push('', `state: version ${s.version}, ${s.fresh ? 'fresh' : 'NOT FRESH (no live prober: last known state)'}${s.ageSeconds === null ? '' : `, ${s.ageSeconds.toFixed(1)}s old`}; zones generation ${s.zonesGeneration}`);
  return lines.join('\n');
}
