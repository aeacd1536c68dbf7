/**
 * IPv4 dotted-quad text read by hand: transports hand client addresses over as text, and
 * topology (per query) and response rate limiting (per response) read them on the hot path,
 * where ipaddr.js's general parser costs microseconds.
 */

/** "a.b.c.d" with each part 0-255 as an unsigned 32-bit number; -1 for anything else. */
export function parseDottedQuad(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 0x2e && digits > 0 && dots < 3) {
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}
