/**
 * How sitedns finds node-gyp and Node's headers without downloading anything: used by
 * install.mjs (the batched UDP addon) and by bench/qps/cpu.mjs (a bench-only addon).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** node-gyp's script: npm's (npm_config_node_gyp), a resolvable one, the one next to the running npm, or the one next to this Node. */
export function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const require = createRequire(import.meta.url);
  for (const candidate of ['node-gyp/bin/node-gyp.js', 'npm/node_modules/node-gyp/bin/node-gyp.js']) {
    try {
      return require.resolve(candidate);
    } catch {
      /* try the next */
    }
  }
  // npm's own copy, next to the npm that runs this script.
  const npmDir = process.env.npm_execpath ? path.resolve(path.dirname(process.env.npm_execpath), '..') : null;
  const bundled = npmDir ? path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : null;
  if (bundled && existsSync(bundled)) return bundled;
  // Run outside npm (a bench started with `node`): the npm installed next to this Node.
  const global = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(global) ? global : null;
}

/** Headers of the running Node: npm's nodedir, else the distribution's /usr when it has them. */
export function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [`--nodedir=${process.env.npm_config_nodedir}`];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) && existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) {
    return [`--nodedir=${prefix}`];
  }
  return []; // node-gyp falls back to its header cache (may download)
}
