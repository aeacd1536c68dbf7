/**
 * The status page of the admin listener: GET / is one static HTML+JS file (web/status.html, no
 * external resource, so it works offline) that polls GET /v1/status and GET /v1/history on the
 * same listener; both are ordinary routes, so the listener's token rules apply to the page and its
 * data alike (docs/status-page.md).
 */
import { readFileSync } from 'node:fs';
import type { AnswerHistory } from './answer-history.js';
import type { AdminRouter } from './http.js';

/** Two directories up from src/admin/ and from dist/admin/ alike: the package root. */
const PAGE_URL = new URL('../../web/status.html', import.meta.url);

let page: string | undefined;
/** The page's text, read once. */
export function statusPageHtml(): string {
  return (page ??= readFileSync(PAGE_URL, 'utf8'));
}

export function registerStatusPage(router: AdminRouter, history: AnswerHistory): void {
  const html = statusPageHtml();
  router.add('GET', '/', () => ({
    status: 200,
    body: html,
    contentType: 'text/html; charset=utf-8',
    // The page loads nothing from elsewhere, and may not.
    headers: { 'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'", 'x-frame-options': 'DENY' },
  }), { page: true });
  router.add('GET', '/v1/history', () => ({ status: 200, body: history.view() }));
}
