/**
 * pino JSON logs, one child logger per component (`{"component":"reload",...}`). The level comes
 * from --log-level or SITEDNS_LOG_LEVEL (LOG_LEVEL also works). What is logged, and how often
 * (transitions, reloads and errors once each; queries only when sampled): docs/metrics.md#logs.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { LOG_LEVELS } from './log-levels.js';
import { REDACTED_LOG_PATHS } from './redact.js';

export type { Logger };

/** A logger at `level`, writing to `destination` (stdout by default). */
export function createLogger(level = process.env.SITEDNS_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`--log-level: "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"warn" reads better in `docker logs` and greps than pino's numbers.
    formatters: { level: (label) => ({ level: label }) },
    // A credential in a logged object is written as "[redacted]", never in clear.
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
  }, destination);
}

/** The logger of one component: every line carries `component`, so one can filter by it. */
export function componentLogger(parent: Logger, component: string): Logger {
  return parent.child({ component });
}
