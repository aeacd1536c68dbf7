/**
 * `--output table|json` for every command that prints a table (status, probe --once, explain,
 * demo): json prints the report the table is made from, for scripts; table is for people.
 */
import { z } from 'zod';
import type { FlagSpec } from './args.js';

const outputFormat = z.enum(['table', 'json'], { error: 'is not table or json' });
type OutputFormat = z.output<typeof outputFormat>;

export const outputFlag = { type: 'string', short: 'o', default: 'table', help: 'table, or json: the report the table is made from', value: outputFormat } satisfies FlagSpec;

/** Prints `report` as JSON, or as the text `table` makes of it. */
export function printReport<R>(format: OutputFormat, report: R, table: (report: R) => string): void {
  console.log(format === 'json' ? JSON.stringify(report, null, 2) : table(report));
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)];
}
