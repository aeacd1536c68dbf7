/** `sitedns status`: the site table (site, state, load, utilization, last check, why). */
import { statusFromContents, type SiteView, type StatusReport } from '../state/status.js';
import { flagHelp, readFlags, type Flags } from './args.js';
import { on } from './flag-values.js';
import { formatTable, outputFlag, printReport } from './output.js';
import { admin, openRedis, targetFlags, type Target } from './state-target.js';

export const statusFlags = {
  ...targetFlags,
  output: outputFlag,
  json: { type: 'boolean', help: 'short for --output json', value: on },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const statusHelp = `Usage: sitedns status [--redis <url> | --http <host:port>] [--output json]

Shows every site: state (up, down, drained, forced-up, unknown), load, utilization ("stale" when
older than the site's limit: the policies then ignore it), last check and why (a drain's who,
why and time left), then the state store and the probers. With --redis it reads Redis directly
(the sites that have a state there); otherwise it asks a running \`sitedns serve\` on its admin
listener (every site of its zones).

${flagHelp(statusFlags)}`;

export async function fetchStatus(target: Target): Promise<StatusReport> {
  const store = await openRedis(target);
  if (store) {
    try {
      return statusFromContents(await store.readAll(), Date.now(), 'redis');
    } finally {
      await store.close();
    }
  }
  return (await admin(target, 'GET', '/v1/status')) as StatusReport;
}

export async function runStatus(argv: string[]): Promise<number> {
  const read = readFlags(argv, statusFlags);
  if (read.help) {
    console.log(statusHelp);
    return 0;
  }
  const report = await fetchStatus(read.flags);
  printReport(read.flags.json ? 'json' : read.flags.output, report, formatStatus);
  return 0;
}

function ago(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s ago`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s ago`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m ago`;
  return `${Math.round(ms / 3_600_000)}h ago`;
}

function left(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

function why(site: SiteView, now: number): string {
  if (!site.forced) return site.reason;
  // An expired drain the snapshot still holds: answers avoid the site until it is re-evaluated.
  return `${site.reason} (${site.forced.expired ? 'expired' : `${left(site.forced.until - now)} left`})`;
}

/** The table: site, state, load, utilization, last check, why; then the store and the probers. */
export function formatStatus(report: StatusReport): string {
  const header = ['SITE', 'STATE', 'LOAD', 'UTIL', 'LAST CHECK', 'WHY'];
  const lines = report.sites.map((r) => [
    r.site,
    r.state,
    r.load === undefined ? '-' : String(Math.round(r.load * 1000) / 1000),
    r.utilization === undefined ? '-' : `${Math.round(r.utilization * 100)}%${r.loadStale ? ' stale' : ''}`,
    r.checkedAt === undefined ? '-' : ago(report.now - r.checkedAt),
    why(r, report.now),
  ]);
  const store = report.store;
  const storeLine = `state store: ${store.kind}${store.connected ? '' : ' (UNREACHABLE: last known state)'}${store.selfProbing === true ? ' (no live prober: this nameserver probes the sites itself)' : store.fresh === false ? ' (no live prober: last known state)' : ''}`;
  const probers = report.probers.length === 0 ? 'probers: none' : `probers: ${report.probers.map((p) => `${p.id} (${p.live ? 'live' : 'STALE'}, ${ago(p.heartbeatAgeMs)})`).join(', ')}`;
  return [...formatTable(header, lines), '', storeLine, probers, ...report.warnings.map((w) => `warning: ${w}`)].join('\n');
}
