import type { KeyErrorCode } from '../dnssec/key-file.js';

/** A problem in a zone file, always reported as `file:line: path: message`. */
export interface ConfigProblem {
  file: string;
  line: number;
  /** Dotted path in the document, e.g. `sites.boston.probe.interval`. */
  path: string;
  message: string;
  /** Stable code for tooling and metrics. */
  code: ConfigErrorCode;
}

export type ConfigErrorCode =
  | 'EZONE_READ' // the file could not be read
  | 'EZONE_SIZE' // the file is larger than the loader accepts
  | 'EZONE_YAML' // YAML syntax
  | 'EZONE_SCHEMA' // a value or key the schema rejects
  | 'EZONE_REF' // a reference to an unknown site/group
  | 'EZONE_CONFLICT' // two definitions of one name, CNAME beside other data, ...
  | 'EZONE_LIMIT' // too many names, absurd values, nesting too deep
  | 'EZONE_LOADER' // the loader thread failed (the last good zones stay)
  | 'EZONE_RESIGN' // a kept signed zone cannot be signed again (refused before its signatures expire)
  | KeyErrorCode; // a signed zone's keys (file: the key file or directory; dnssec/key-file.ts)

export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z0-9_@*-]+$/.test(p) ? (i === 0 ? p : `.${p}`) : `[${JSON.stringify(p)}]`))
    .join('');
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}: ${p.path}: ${p.message}`;
}

export class ConfigLoadError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigLoadError';
    this.problems = problems;
  }
}
