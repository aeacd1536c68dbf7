#!/usr/bin/env node
/** sitedns command line: dispatches to one module per command. */
import { checkHelp, runCheck } from './check.js';
import { demoHelp, runDemo } from './demo.js';
import { drainHelp, runDrain, runUndrain, undrainHelp } from './drain.js';
import { probeHelp, runProbe } from './probe.js';
import { reportHelp, runReport } from './report.js';
import { runServe, serveHelp } from './serve.js';
import { runStatus, statusHelp } from './status.js';

const COMMANDS: Record<string, { summary: string; help: string; run: (argv: string[]) => number | Promise<number> }> = {
  serve: { summary: 'serve the zones on UDP and TCP', help: serveHelp, run: runServe },
  check: { summary: 'validate zone files (file:line: path: message)', help: checkHelp, run: runCheck },
  probe: { summary: 'probe the sites and write their state to Redis', help: probeHelp, run: runProbe },
  status: { summary: 'site table: state, load, utilization, last check, why', help: statusHelp, run: runStatus },
  drain: { summary: 'take a site out of the answers for a while (who/why/until)', help: drainHelp, run: runDrain },
  undrain: { summary: 'end a drain now', help: undrainHelp, run: runUndrain },
  report: { summary: 'push a load report for a site (seed 002)', help: reportHelp, run: runReport },
  demo: { summary: 'stop/start/load the demo backends of npm start', help: demoHelp, run: runDemo },
};

export const mainHelp = `Usage: sitedns <command> [flags]

sitedns is an authoritative DNS nameserver that load-balances and fails over web traffic
across independent sites (Pool, Group and Site Names).

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

Run "sitedns <command> --help" for a command's flags. Every flag also reads SITEDNS_<FLAG>.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
    return await entry.run(rest);
  } catch (error) {
    console.error(`sitedns ${command}: ${(error as Error).message}`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
