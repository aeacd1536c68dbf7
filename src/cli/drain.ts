/** `sitedns drain <site>` / `sitedns undrain <site>`: operator-forced states with who/why/until. */
import { splitSiteKey } from '../state/keys.js';
import { drain, drainDuration, undrain } from '../state/service.js';
import { resolveSiteRef } from '../state/site-ref.js';
import type { SiteView } from '../state/status.js';
import type { ForcedState } from '../state/types.js';
import { flagHelp, readFlags, type Flags } from './args.js';
import { on, optionalText, text } from './flag-values.js';
import { fetchStatus } from './status.js';
import { admin, cliOrigin, cliUser, openRedis, targetFlags, type Target } from './state-target.js';

export const drainFlags = {
  ...targetFlags,
  for: { type: 'string', default: '1h', help: 'how long (the drain expires by itself)', value: drainDuration },
  reason: { type: 'string', default: 'drained by an operator', help: 'why (shown in status)', value: text },
  by: { type: 'string', help: 'who (default: user@host)', value: optionalText },
  up: { type: 'boolean', help: 'force the site UP instead (e.g. a probe that is wrong)', value: on },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Flags;

const undrainFlags = { ...targetFlags, by: drainFlags.by, help: drainFlags.help } satisfies Flags;

export const drainHelp = `Usage: sitedns drain <site> [--for 30m] [--reason "..."] [--redis <url> | --http <host:port>]

Takes a site out of every answer until --for has passed (or \`sitedns undrain <site>\`). <site> is
a site id (boston), its Site Name (boston.app.example.com) or zone/site (app.example.com/boston).

${flagHelp(drainFlags)}`;

export const undrainHelp = `Usage: sitedns undrain <site> [--redis <url> | --http <host:port>]

Ends a drain (or forced state) now; the probes decide again. The audit trail keeps who ended
which drain (\`sitedns audit\`).

${flagHelp(undrainFlags)}`;

/** The site `ref` names, as the target shows it now. */
async function resolveSite(target: Target, ref: string | undefined): Promise<SiteView> {
  if (!ref) throw new Error('name the site (e.g. boston)');
  const status = await fetchStatus(target);
  const found = resolveSiteRef(ref, status.sites.map((s) => s.site));
  if ('error' in found) throw new Error(found.error);
  return status.sites.find((s) => s.site === found.key)!;
}

function describe(key: string, forced: ForcedState): string {
  return `${key}: ${forced.state === 'down' ? 'drained' : 'forced up'} until ${new Date(forced.until).toISOString()} by ${forced.by}: ${forced.reason}`;
}

export async function runDrain(argv: string[]): Promise<number> {
  const read = readFlags(argv, drainFlags);
  if (read.help) {
    console.log(drainHelp);
    return 0;
  }
  const { flags, positionals } = read;
  const key = (await resolveSite(flags, positionals[0])).site;
  // The flag was checked here; the store and the admin API take it as a duration with its unit.
  const request = { for: `${flags.for}ms`, reason: flags.reason, by: flags.by ?? cliUser(), state: flags.up ? ('up' as const) : ('down' as const) };
  const store = await openRedis(flags);
  if (store) {
    try {
      const forced = await drain(store, key, request, cliOrigin());
      if ('error' in forced) throw new Error(forced.error);
      console.log(describe(key, forced));
    } finally {
      await store.close();
    }
  } else {
    const { zone, site } = splitSiteKey(key);
    const body = await admin(flags, 'POST', `/v1/sites/${encodeURIComponent(zone)}/${encodeURIComponent(site)}/drain`, request);
    console.log(describe(key, body.forced));
  }
  return 0;
}

export async function runUndrain(argv: string[]): Promise<number> {
  const read = readFlags(argv, undrainFlags);
  if (read.help) {
    console.log(undrainHelp);
    return 0;
  }
  const { flags, positionals } = read;
  const view = await resolveSite(flags, positionals[0]);
  const key = view.site;
  const by = flags.by ?? cliUser();
  const store = await openRedis(flags);
  if (store) {
    try {
      await undrain(store, key, by, view.forced, cliOrigin());
    } finally {
      await store.close();
    }
  } else {
    const { zone, site } = splitSiteKey(key);
    await admin(flags, 'DELETE', `/v1/sites/${encodeURIComponent(zone)}/${encodeURIComponent(site)}/drain`, { by });
  }
  console.log(`${key}: undrained; the probes decide again`);
  return 0;
}
