/**
 * SITEDNS_UDP_ADDON names the addon's file: a build against another Node's headers lives outside
 * native/udp-batch/build, so that the builds for two Nodes coexist (.ci/run tests a second Node
 * with it). Checked in child processes of the built code, each loading the addon once.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { addonFile, batchedUnavailable } from '../../src/server/udp-batched.js';

const MODULE = fileURLToPath(new URL('../../dist/server/udp-batched.js', import.meta.url));

/** What the built loader says in a process whose SITEDNS_UDP_ADDON is `file`: its file, and null or why it cannot load. */
function loadWith(file: string): { file: string; unavailable: string | null } {
  const script = `import(${JSON.stringify(MODULE)}).then((m) => console.log(JSON.stringify({ file: m.addonFile(), unavailable: m.batchedUnavailable() })))`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, SITEDNS_UDP_ADDON: file } });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

t.test('a file that is not there: the addon is not loaded, and the reason names the file', async (t) => {
  const missing = '/nonexistent/sitedns/udp_batch.node';
  const seen = loadWith(missing);
  t.equal(seen.file, missing);
  t.match(seen.unavailable, /^batched UDP addon not built .*\/nonexistent\/sitedns\/udp_batch\.node/);
});

const why = batchedUnavailable();
t.test('the build this process loaded, named explicitly, loads', { skip: why !== null && process.env.SITEDNS_REQUIRE_ADDON !== '1' ? why : false }, async (t) => {
  t.equal(why, null, 'the addon loads here');
  t.ok(existsSync(addonFile()), addonFile());
  const seen = loadWith(addonFile());
  t.equal(seen.file, addonFile());
  t.equal(seen.unavailable, null);
});
