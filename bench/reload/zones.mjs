/**
 * Zone sets for bench/reload: the largest file the loader accepts (bench/scale/generate.mjs's
 * zone shape, as many names as fit under the 1 MiB limit of src/config/load.ts) beside
 * 1,000-name files up to the total, and the edits a reload is measured with.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate, zoneText } from '../scale/generate.mjs';

/** src/config/load.ts MAX_ZONE_FILE_BYTES. */
export const MAX_ZONE_FILE_BYTES = 1024 * 1024;
const LARGEST_ZONE = 999;

/** The zone text with the most names that stays under the loader's size limit. */
export function largestZone(limit = MAX_ZONE_FILE_BYTES) {
  let low = 1000;
  let high = 100_000;
  while (high - low > 1) {
    const mid = (low + high) >> 1;
    if (Buffer.byteLength(zoneText(LARGEST_ZONE, mid).text) < limit - 64) low = mid;
    else high = mid;
  }
  return { names: low, ...zoneText(LARGEST_ZONE, low) };
}

/** One wrong address: the last A record of the file gets an octet of 300. */
export function withError(text) {
  const at = text.lastIndexOf('{ A: [');
  const end = text.indexOf(']', at);
  return `${text.slice(0, at)}{ A: [10.0.0.300${text.slice(end)}`;
}

/** A valid edit: the last A record of the file gets another address (192.0.2.99). */
export function withNewAddress(text) {
  const at = text.lastIndexOf('{ A: [');
  const end = text.indexOf(']', at);
  return `${text.slice(0, at)}{ A: [192.0.2.99${text.slice(end)}`;
}

/** The same zone with an anchor on the first site's addresses and an alias to it on the last site's. */
export function withAlias(text) {
  const first = text.indexOf('addresses: [');
  const anchored = `${text.slice(0, first)}addresses: &first [${text.slice(first + 'addresses: ['.length)}`;
  const sites = anchored.indexOf('\ngroups:');
  const last = anchored.lastIndexOf('addresses: [', sites);
  const close = anchored.indexOf(']', last);
  return `${anchored.slice(0, last)}addresses: *first${anchored.slice(close + 1)}`;
}

/**
 * `names` names: the largest file (`largest.yaml`) and 1,000-name files for the rest.
 * Returns the directory, the largest file's path and text, and DNS query names.
 */
export function reloadZoneSet(dir, names) {
  const largest = largestZone();
  const rest = generate(dir, names - largest.names);
  const file = join(dir, 'largest.yaml');
  writeFileSync(file, largest.text);
  // The largest zone's names too: a set no larger than it has no other.
  const own = ['p0', 's0', 'g0', 'h0', 'nope'].map((label) => ({ name: `${label}.${largest.zone}`, type: 'A' }));
  return { dir, file, text: largest.text, zone: largest.zone, names: largest.names + Math.max(0, names - largest.names), queries: [...own, ...rest.queries] };
}
