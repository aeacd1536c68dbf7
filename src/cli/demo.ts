/** `sitedns demo`: list, stop, start or load the demo backends of `npm start` (serve --demo-backends). */
import { flagHelp, readFlags, type Flags } from './args.js';
import { admin, targetFlags } from './state-target.js';

export const demoFlags = {
  http: targetFlags.http,
  'http-token': targetFlags['http-token'],
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const demoHelp = `Usage: sitedns demo [list | stop <site> | start <site> | load <site> <n|drift>]

Controls the demo health endpoints that \`npm start\` runs (serve --demo-backends): "stop boston"
closes Boston's endpoint (its probes get "connection refused", boston.app.example.com fails over
to Chicago within about a second); "start boston" brings it back; "load boston 80" fixes the load
it reports ("drift" lets it wander again).

${flagHelp(demoFlags)}`;

export async function runDemo(argv: string[]): Promise<number> {
  const read = readFlags(argv, demoFlags);
  if (read.help) {
    console.log(demoHelp);
    return 0;
  }
  const { flags, positionals } = read;
  const [action = 'list', site, arg] = positionals;
  if (action === 'list') {
    const body = await admin(flags, 'GET', '/v1/demo');
    for (const b of body.backends) console.log(`${b.site.padEnd(12)} ${b.address.padEnd(18)} ${b.running ? 'running' : 'STOPPED'}  load ${b.load}${b.fixed ? ' (fixed)' : ''}`);
    return 0;
  }
  if (!['stop', 'start', 'load'].includes(action) || !site) throw new Error(`usage: sitedns demo [list | stop <site> | start <site> | load <site> <n|drift>]`);
  let body: unknown;
  if (action === 'load') {
    if (arg === undefined) throw new Error('usage: sitedns demo load <site> <n|drift>');
    body = { load: arg === 'drift' ? null : Number(arg) };
  }
  const b = await admin(flags, 'POST', `/v1/demo/${encodeURIComponent(site)}/${action}`, body);
  console.log(`${b.site}: ${b.running ? 'running' : 'stopped'}, load ${b.load}${b.fixed ? ' (fixed)' : ''}`);
  return 0;
}
