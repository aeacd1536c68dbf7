/** `sitedns audit`: the audit trail (drains, undrains, force-ups, report events), newest last. */
import { auditTime, auditWhy, selectAudit, type AuditQuery, type AuditReport } from '../state/audit.js';
import { flagHelp, readFlags, type Flags } from './args.js';
import { optionalText, wholeNumber } from './flag-values.js';
import { formatTable, outputFlag, printReport } from './output.js';
import { admin, openRedis, targetFlags, type Target } from './state-target.js';

export const auditFlags = {
  ...targetFlags,
  site: { type: 'string', help: 'only this site: an id (boston), its Site Name or zone/site', value: optionalText },
  limit: { type: 'string', default: '50', help: 'the newest N entries', value: wholeNumber.refine((n) => n > 0, 'is not above 0') },
  output: outputFlag,
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const auditHelp = `Usage: sitedns audit [--site <site>] [--limit N] [--redis <url> | --http <host:port>] [--output json]

Lists the audit trail, newest last: every drain, undrain and force-up (who, which site, until
when, why, and from where: the admin API client's address or the CLI's host/pid), and the load
report events worth keeping (a reporter's first report for a site, a change of reporter, a
refused report). Each trail keeps its last 1,000 entries: in Redis (--redis) or, in the embedded
default, in the memory of the \`sitedns serve\` whose admin listener is asked.

${flagHelp(auditFlags)}`;

export async function fetchAudit(target: Target, query: AuditQuery): Promise<AuditReport> {
  const store = await openRedis(target);
  if (store) {
    try {
      const entries = selectAudit(await store.readAudit(), query);
      if ('error' in entries) throw new Error(entries.error);
      return { store: 'redis', entries };
    } finally {
      await store.close();
    }
  }
  const params = new URLSearchParams();
  if (query.site !== undefined) params.set('site', query.site);
  if (query.limit !== undefined) params.set('limit', String(query.limit));
  return (await admin(target, 'GET', `/v1/audit?${params}`)) as AuditReport;
}

export async function runAudit(argv: string[]): Promise<number> {
  const read = readFlags(argv, auditFlags);
  if (read.help) {
    console.log(auditHelp);
    return 0;
  }
  const { flags } = read;
  const report = await fetchAudit(flags, { site: flags.site, limit: flags.limit });
  printReport(flags.output, report, formatAudit);
  return 0;
}

/** The table: time, action, site, by, from, until, why. */
export function formatAudit(report: AuditReport): string {
  if (report.entries.length === 0) return `audit trail (${report.store}): no entries`;
  const header = ['TIME', 'ACTION', 'SITE', 'BY', 'FROM', 'UNTIL', 'WHY'];
  const rows = report.entries.map((e) => [auditTime(e.at), e.action, e.site, e.by, e.from, auditTime(e.until), auditWhy(e)]);
  return formatTable(header, rows).join('\n');
}
