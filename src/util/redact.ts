/**
 * Secrets kept out of logs and error messages: the password of a URL (redis://:pw@host) and,
 * through the logger's `redact` paths, tokens and authorization headers in logged objects.
 */

/** The URL with its password replaced by `***` (the user name stays: it helps and is no secret); text that is no URL is returned as it is, unless it looks like it holds one. */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not a URL: still hide what looks like `:password@` in it.
    return text.replace(/:[^:@/\s]*@/, ':***@');
  }
  if (url.password === '') return text;
  url.password = '***';
  return url.toString();
}

/** Free text (a drain's reason, say) with the password of every URL in it hidden, as redactUrl hides it. */
export function redactSecrets(text: string): string {
  return text.split(/(\s+)/).map((word) => (word.includes('@') ? redactUrl(word) : word)).join('');
}

/** What pino censors in every logged object (util/logger.ts): credentials under their usual names. */
export const REDACTED_LOG_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'token',
  '*.token',
  'password',
  '*.password',
  'httpToken',
  '*.httpToken',
  'redisPassword',
  '*.redisPassword',
  'sentinelPassword',
  '*.sentinelPassword',
];
