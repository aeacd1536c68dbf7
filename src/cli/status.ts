/** `sitedns status`: the site table (site, state, load, utilization, last check, why). */
import { formatStatus, statusFromContents, type StatusReport } from '../state/status.js';
import { flagHelp, parseFlags, type Flags } from './args.js';
import { admin, openRedis, targetFlags } from './state-target.js';

export const statusFlags: Flags = {
  ...targetFlags,
  json: { type: 'boolean', help: 'print the report as JSON' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const statusHelp = `Usage: sitedns status [--redis <url> | --http <host:port>] [--json]

Shows every site: state (up, down, drained, forced-up, unknown), load, utilization, last check
and why, then the state store and the probers. With --redis it reads Redis directly; otherwise
it asks a running \`sitedns serve\` on its admin listener.

${flagHelp(statusFlags)}`;

export async function fetchStatus(values: Record<string, unknown>): Promise<StatusReport> {
  if (values.redis) {
    const store = await openRedis(values as never);
    try {
      return statusFromContents(await store.readAll(), Date.now(), 'redis');
    } finally {
      await store.close();
    }
  }
  return (await admin(values as never, 'GET', '/v1/status')) as StatusReport;
}

export async function runStatus(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, statusFlags);
  if (values.help) {
    console.log(statusHelp);
    return 0;
  }
  const report = await fetchStatus(values);
  console.log(values.json ? JSON.stringify(report, null, 2) : formatStatus(report));
  return 0;
}
