/** `sitedns demo`: list, stop, start or load the demo backends of `npm start` (serve --demo-backends). */
import { LOAD_VALUE_RULE, loadValue } from '../state/load-value.js';
import { flagHelp, readFlags, type Flags } from './args.js';
import { formatTable, outputFlag, printReport } from './output.js';
import { admin, targetFlags } from './state-target.js';

export const demoFlags = {
  http: targetFlags.http,
  'http-token': targetFlags['http-token'],
  output: outputFlag,
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const demoHelp = `Usage: sitedns demo [list | stop <site> | start <site> | load <site> <n|drift>]

Controls the demo health endpoints that \`npm start\` runs (serve --demo-backends): "stop boston"
closes Boston's endpoint (its probes get "connection refused", boston.app.example.com fails over
to Chicago within about a second); "start boston" brings it back; "load boston 80" fixes the load
it reports ("drift" lets it wander again).

${flagHelp(demoFlags)}`;

const USAGE = 'usage: sitedns demo [list | stop <site> | start <site> | load <site> <n|drift>]';

/** One demo backend, as GET /v1/demo lists it (src/demo/backends.ts). */
interface DemoBackendInfo {
  site: string;
  address: string;
  running: boolean;
  load: number;
  fixed: boolean;
}

export async function runDemo(argv: string[]): Promise<number> {
  const read = readFlags(argv, demoFlags);
  if (read.help) {
    console.log(demoHelp);
    return 0;
  }
  const { flags, positionals } = read;
  const [action = 'list', site, arg, ...extra] = positionals;
  if (extra.length > 0 || (action === 'list' && site !== undefined)) throw new Error(USAGE);
  if (action === 'list') {
    const body = (await admin(flags, 'GET', '/v1/demo')) as { backends: DemoBackendInfo[] };
    printReport(flags.output, body, formatBackends);
    return 0;
  }
  if (!['stop', 'start', 'load'].includes(action) || !site) throw new Error(USAGE);
  let body: unknown;
  if (action === 'load') {
    if (arg === undefined) throw new Error('usage: sitedns demo load <site> <n|drift>');
    const load = arg === 'drift' ? null : loadValue(arg);
    if (load === undefined) throw new Error(`load: "${arg}" is not a load (${LOAD_VALUE_RULE}) or drift`);
    body = { load };
  } else if (arg !== undefined) throw new Error(USAGE);
  const backend = (await admin(flags, 'POST', `/v1/demo/${encodeURIComponent(site)}/${action}`, body)) as DemoBackendInfo;
  printReport(flags.output, backend, (b) => `${b.site}: ${b.running ? 'running' : 'stopped'}, load ${b.load}${b.fixed ? ' (fixed)' : ''}`);
  return 0;
}

function formatBackends(body: { backends: DemoBackendInfo[] }): string {
  const rows = body.backends.map((b) => [b.site, b.address, b.running ? 'running' : 'STOPPED', `${b.load}${b.fixed ? ' (fixed)' : ''}`]);
  return formatTable(['SITE', 'ADDRESS', 'STATE', 'LOAD'], rows).join('\n');
}
