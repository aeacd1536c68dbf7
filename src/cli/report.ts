/** `sitedns report <site> <load>`: push a load report (seed 002) the way a site would. */
import os from 'node:os';
import { splitSiteKey } from '../state/keys.js';
import { LOAD_VALUE_RULE, loadValue } from '../state/load-value.js';
import { reportLoad } from '../state/service.js';
import { resolveSiteRef } from '../state/site-ref.js';
import { flagHelp, readFlags, type Flags } from './args.js';
import { fetchStatus } from './status.js';
import { admin, cliOrigin, openRedis, targetFlags } from './state-target.js';

export const reportFlags = {
  ...targetFlags,
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

export const reportHelp = `Usage: sitedns report <site> <load> [--redis <url> | --http <host:port>]

Pushes one load report for a site, as the site itself would with
POST /v1/sites/<zone>/<site>/load {"load": 0.42}. Reports count as liveness too: a site whose
probe sets push_interval and whose reports stop for 3 intervals counts as down.

${flagHelp(reportFlags)}`;

export async function runReport(argv: string[]): Promise<number> {
  const read = readFlags(argv, reportFlags);
  if (read.help) {
    console.log(reportHelp);
    return 0;
  }
  const { flags, positionals } = read;
  const [ref, loadText] = positionals;
  if (!ref || loadText === undefined) throw new Error('usage: sitedns report <site> <load>');
  const load = loadValue(loadText);
  if (load === undefined) throw new Error(`"${loadText}" is not a load (${LOAD_VALUE_RULE})`);
  const status = await fetchStatus(flags);
  const found = resolveSiteRef(ref, status.sites.map((s) => s.site));
  if ('error' in found) throw new Error(found.error);
  // The reporter is this host, whichever way the report goes.
  const by = os.hostname();
  const store = await openRedis(flags);
  if (store) {
    try {
      await reportLoad(store, found.key, load, by, (await store.readAll()).reports.get(found.key), cliOrigin());
    } finally {
      await store.close();
    }
  } else {
    const { zone, site } = splitSiteKey(found.key);
    await admin(flags, 'POST', `/v1/sites/${encodeURIComponent(zone)}/${encodeURIComponent(site)}/load?by=${encodeURIComponent(by)}`, { load });
  }
  console.log(`${found.key}: load ${load} reported`);
  return 0;
}
