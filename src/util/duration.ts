/**
 * The one duration syntax of sitedns, for zone files, command-line flags, the admin API and the
 * affinity middleware's text options (docs/zones.md#durations):
 *
 * - text is one or more `<number><unit>` parts, units `d h m s ms`, largest first, each unit at
 *   most once: `500ms`, `1.5s`, `2m`, `1h30m`, `2d`. A part may hold a fraction (`1.5s`, `0.5h`);
 *   the sum is rounded to whole milliseconds.
 * - a number without a unit is refused (is `30` seconds or minutes?), whether text (`"30"`) or a
 *   number of the format (an unquoted YAML number, a JSON number), except `0`, which is zero in
 *   every unit.
 */
import { z } from 'zod';
import { CodedError } from './coded-error.js';

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
const UNITS = Object.keys(UNIT_MS) as (keyof typeof UNIT_MS)[];
const PART = '(\\d+(?:\\.\\d+)?)';
/** One optional group per unit, in the order of UNITS ("m" is tried before "ms"; backtracking sorts out "500ms"). */
const DURATION_RE = new RegExp(`^${UNITS.map((u) => `(?:${PART}${u})?`).join('')}$`);
const BARE_NUMBER_RE = /^\d+(?:\.\d+)?$/;
/** What parseDuration accepts, as one ECMA-262 pattern (for the zone format's JSON Schema). */
export const DURATION_PATTERN = `^\\s*(?:0|(?=\\d)${UNITS.map((u) => `(?:${PART}${u})?`).join('')})\\s*$`;
const EXAMPLES = 'e.g. 500ms, 1.5s, 1h30m, 2d';

export class DurationError extends CodedError<'EDURATION'> {
  constructor(message: string) {
    super('EDURATION', message);
  }
}

/** Text -> milliseconds, or undefined when the text is not a duration (durationMs says why). */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const m = trimmed === '' ? null : DURATION_RE.exec(trimmed);
  if (!m) return undefined;
  let ms = 0;
  for (const [i, unit] of UNITS.entries()) if (m[i + 1] !== undefined) ms += Number(m[i + 1]) * UNIT_MS[unit];
  const rounded = Math.round(ms);
  return Number.isSafeInteger(rounded) ? rounded : undefined;
}

/**
 * A duration -> milliseconds; a DurationError says what is wrong. A number (YAML, JSON) is held to
 * the same syntax as text: only `0` needs no unit.
 */
export function durationMs(value: string | number): number {
  const text = String(value);
  const ms = parseDuration(text);
  if (ms !== undefined) return ms;
  const shown = typeof value === 'number' ? text : `"${value}"`;
  const bare = text.trim();
  if (BARE_NUMBER_RE.test(bare)) throw new DurationError(`${shown} is not a duration: give it a unit (${UNITS.join(', ')}), e.g. ${bare}ms or ${bare}s`);
  throw new DurationError(`${shown} is not a duration (a number and a unit: ${UNITS.join(', ')}, largest first; ${EXAMPLES})`);
}

/**
 * The zod type every schema uses for a duration (zone files, flags, request bodies): milliseconds
 * out. It takes numbers too, so that a YAML or JSON number is refused with durationMs's message.
 */
export const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    return durationMs(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as DurationError).message });
    return z.NEVER;
  }
});

