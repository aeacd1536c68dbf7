#!/usr/bin/env node
/** sitedns command line: dispatches to one module per command. */
import { checkHelp, runCheck } from './check.js';
import { runServe, serveHelp } from './serve.js';

const COMMANDS: Record<string, { summary: string; help: string; run: (argv: string[]) => number | Promise<number> }> = {
  serve: { summary: 'serve the zones on UDP and TCP', help: serveHelp, run: runServe },
  check: { summary: 'validate zone files (file:line: path: message)', help: checkHelp, run: runCheck },
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
