#!/usr/bin/env node
/**
 * sitedns command line: dispatches to one module per command. A command's module is loaded when
 * it runs: `sitedns check` does not load the Redis client, the metrics registry or the server
 * (~0.4 s of start-up).
 */
import { SITEDNS_VERSION } from '../util/version.js';

type Run = (argv: string[]) => number | Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Run> }> = {
  serve: { summary: 'serve the zones on UDP and TCP', load: async () => (await import('./serve.js')).runServe },
  check: { summary: 'validate zone files (file:line: path: message)', load: async () => (await import('./check.js')).runCheck },
  probe: { summary: 'probe the sites and write their state to Redis', load: async () => (await import('./probe.js')).runProbe },
  status: { summary: 'site table: state, load, utilization, last check, why', load: async () => (await import('./status.js')).runStatus },
  drain: { summary: 'take a site out of the answers for a while (who/why/until)', load: async () => (await import('./drain.js')).runDrain },
  undrain: { summary: 'end a drain now', load: async () => (await import('./drain.js')).runUndrain },
  report: { summary: 'push a load report for a site (seed 002)', load: async () => (await import('./report.js')).runReport },
  audit: { summary: 'who drained, undrained or forced up what, when and why', load: async () => (await import('./audit.js')).runAudit },
  explain: { summary: 'the answer a running serve would give a name now, and why', load: async () => (await import('./explain.js')).runExplain },
  dnssec: { summary: 'DNSSEC keys of a signed zone: keygen, ds, status, rollover', load: async () => (await import('./dnssec.js')).runDnssec },
  demo: { summary: 'stop/start/load the demo backends of npm start', load: async () => (await import('./demo.js')).runDemo },
};

export const mainHelp = `Usage: sitedns <command> [flags]

sitedns is an authoritative DNS nameserver that load-balances and fails over web traffic
across independent sites (Pool, Group and Site Names).

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

Run "sitedns help <command>" (or "sitedns <command> --help") for a command's flags. Every flag
also reads SITEDNS_<FLAG>. "sitedns --version" (-V) prints the version.`;

async function main(argv: string[]): Promise<number> {
  const [first, ...afterFirst] = argv;
  if (first === '--version' || first === '-V') {
    console.log(SITEDNS_VERSION);
    return 0;
  }
  // `sitedns help <command>` is `sitedns <command> --help`.
  const [command, ...rest] = first === 'help' && afterFirst.length > 0 ? [afterFirst[0], '--help'] : argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(mainHelp);
    return command === undefined ? 1 : 0;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    console.error(`sitedns: unknown command "${command}"\n\n${mainHelp}`);
    return 1;
  }
  try {
    return await (await entry.load())(rest);
  } catch (error) {
    console.error(`sitedns ${command}: ${(error as Error).message}`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
