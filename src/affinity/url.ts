/**
 * The request URL, taken apart only as far as Appendix B needs ("Scheme", "Relative URI",
 * "Query") and put back together byte for byte: the path and every other query parameter are
 * copied as sent (no re-encoding by URLSearchParams, which would turn %20 into + and reorder
 * nothing but still change bytes an application may sign or compare). Only marker parameters
 * are removed, all of them, so old markers never pile up (Appendix B: "DELETE any pre-existing
 * /Distrib=").
 */

export interface RequestTarget {
  /** The path as sent, starting with "/" (seed: "Relative URI"). */
  readonly path: string;
  /** Query parameters other than markers, raw ("k=v"), in order (seed: "Query"). */
  readonly query: readonly string[];
  /** Values of the marker parameters found, decoded, in order. */
  readonly markers: readonly string[];
  /** The target the application should see: the original, minus marker parameters. */
  readonly clean: string;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/**
 * Splits a request target (origin-form "/p?q", or absolute-form "http://h/p?q" from a proxy).
 * Returns undefined for targets without a path ("*" of OPTIONS, authority-form of CONNECT):
 * those are not page requests and pass through untouched.
 */
export function parseTarget(url: string, param: string): RequestTarget | undefined {
  let target = url;
  if (!target.startsWith('/')) {
    const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
    if (!absolute) return undefined;
    target = target.slice(absolute[0].length) || '/';
    if (target.startsWith('?')) target = `/${target}`;
  }
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (q < 0) return { path, query: [], markers: [], clean: target };
  const query: string[] = [];
  const markers: string[] = [];
  for (const part of target.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key === param || safeDecode(key) === param) markers.push(safeDecode(eq < 0 ? '' : part.slice(eq + 1)));
    else query.push(part);
  }
  if (markers.length === 0) return { path, query, markers, clean: target };
  return { path, query, markers, clean: query.length > 0 ? `${path}?${query.join('&')}` : path };
}

export interface HostHeader {
  /** Lower-case, without a trailing dot; "[v6]" for an IPv6 literal (never a zone name). */
  readonly name: string;
  readonly port: string | undefined;
}

/** RFC 9110 §7.2: Host = uri-host [ ":" port ]. */
export function parseHost(header: string | undefined): HostHeader | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (text === '') return undefined;
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(text);
  if (!m) return { name: text.toLowerCase(), port: undefined };
  return { name: m[1].toLowerCase().replace(/\.$/, ''), port: m[2] };
}

const DEFAULT_PORT: Record<string, string> = { http: '80', https: '443' };

/** Builds an absolute redirect target: same scheme, path and query on another host. */
export function buildLocation(scheme: string, host: string, port: string | undefined, path: string, query: readonly string[], marker?: { param: string; value: string }): string {
  const parts = marker ? [...query, `${marker.param}=${marker.value}`] : query;
  const authority = port && port !== DEFAULT_PORT[scheme] ? `${host}:${port}` : host;
  return `${scheme}://${authority}${path}${parts.length > 0 ? `?${parts.join('&')}` : ''}`;
}
