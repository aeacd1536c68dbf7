/** Shared bits of the ops tests: parse the Prometheus text, a logger that collects lines. */
import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';

/** `name{labels} value` lines -> value by the line's name and labels, as written. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The value of `name` whose labels include every given pair (summed over the rest). */
export function metric(metrics: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of metrics) {
    const brace = key.indexOf('{');
    const metricName = brace < 0 ? key : key.slice(0, brace);
    if (metricName !== name) continue;
    const labelText = brace < 0 ? '' : key.slice(brace);
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}

export function memoryLogger(level = 'debug'): { logger: Logger; lines: any[] } {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}
