/**
 * What the in-process benches (handler.mjs, rrl.mjs) share: the compiled modules from dist/
 * (`npm run build` first), bench/qps's zones compiled, and a query's bytes.
 */
import { sitednsZone } from './zones.mjs';

const dist = new URL('../../dist/', import.meta.url);
export const { Handler } = await import(new URL('server/handler.js', dist));
export const { PeerContext } = await import(new URL('server/request-context.js', dist));
export const { Runtime } = await import(new URL('state/runtime.js', dist));
export const { ResponseRateLimiter } = await import(new URL('server/rrl.js', dist));
export const { QueryMetrics } = await import(new URL('admin/query-metrics.js', dist));
const { parseZoneText } = await import(new URL('config/load.js', dist));
const { compileZoneFiles, makeZoneSet } = await import(new URL('config/compile.js', dist));

/** The ZoneSet of bench/qps/zones.mjs; signed (`denial`: nsec or nsec3) with bench/dnssec's keys when `signing`. */
export function benchZones(signing, denial = 'nsec') {
  const text = signing === undefined ? sitednsZone() : `${sitednsZone()}dnssec: { denial: ${denial} }\n`;
  return makeZoneSet(compileZoneFiles([parseZoneText(text, 'bench.yaml')], signing).zones);
}

/** A query for `name` A, RD set, with an OPT advertising 1232 bytes when `edns` (DO set when `dnssecOk`). */
export function queryBytes(name, edns, dnssecOk = false) {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  return Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0, ...labels, 0, 0, 1, 0, 1, ...(edns ? [0, 0, 41, 0x04, 0xd0, 0, 0, dnssecOk ? 0x80 : 0, 0, 0, 0] : [])]);
}
