#!/usr/bin/env node
/**
 * `npm install` / `npm ci` hook: tries to build the optional batched UDP addon and
 * NEVER fails the install (the way `ws` treats `bufferutil`). Without the addon sitedns serves
 * UDP with node:dgram and logs that it does.
 *
 * Why an install script and not an optionalDependencies package: the addon is a few hundred
 * lines of C that must change together with src/server/udp-batched.ts, so it lives in the repo;
 * a `file:` optional dependency would add a symlinked package and lockfile entry for no gain.
 *
 * node-gyp is the one npm bundles (npm passes its path as npm_config_node_gyp); headers come from
 * `nodedir` (npm config or --nodedir), so nothing is downloaded when the distribution's Node
 * headers are installed (Debian: /usr/include/node from the nodejs/libnode-dev package).
 *
 * Environment: SITEDNS_SKIP_ADDON=1 skips the build.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeGyp, nodedirArgs } from './node-gyp.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const say = (message) => console.error(`sitedns: ${message}`);

function main() {
  if (process.env.SITEDNS_SKIP_ADDON === '1') return say('SITEDNS_SKIP_ADDON=1: not building the batched UDP addon; UDP uses node:dgram');
  if (process.platform !== 'linux') return say(`batched UDP addon is Linux-only (this is ${process.platform}); UDP uses node:dgram`);
  const nodeGyp = findNodeGyp();
  if (nodeGyp === null) return say('node-gyp not found: batched UDP addon not built; UDP uses node:dgram');
  const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--directory', here, ...nodedirArgs()], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (result.status === 0) return say('batched UDP addon built (native/udp-batch/build/Release/udp_batch.node)');
  const tail = (result.stderr ?? '').split('\n').filter((l) => /\berror:|ERR! (stack|find)|not found/i.test(l)).slice(0, 8).join('\n');
  say(`batched UDP addon did not build (${result.error?.message ?? `node-gyp exit ${result.status}`}); UDP uses node:dgram.\n${tail}`);
}

try {
  main();
} catch (error) {
  say(`batched UDP addon build skipped: ${error.message}`);
}
process.exitCode = 0;
