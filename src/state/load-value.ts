/**
 * The one rule for a load value, whatever its source: a probe's header or JSON field, the push
 * API, `sitedns report`. A load is a finite number >= 0, written as a number or a numeric string.
 * A negative load is refused rather than clamped: it would make a site look emptier than idle, and
 * least-busy (seed 004, "least busy") would send it more than its share until the next report.
 */
export const LOAD_VALUE_RULE = 'a number >= 0';

export function loadValue(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
}
