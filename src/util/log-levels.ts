/**
 * The levels --log-level and SITEDNS_LOG_LEVEL accept (pino's, and `silent`). A module of its own:
 * every command reads its flags (cli/flag-values.ts), and only the ones that log load pino.
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
