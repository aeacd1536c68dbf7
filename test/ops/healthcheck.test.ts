/**
 * The container's HEALTHCHECK (docker/healthcheck.mjs): healthy exactly when the admin listener's
 * /readyz says ready, found from SITEDNS_HTTP as `serve` reads it; and the Dockerfile and
 * docker-compose.yml use it on Node 24.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freeTcpPort, startSitedns } from '../helpers/net.js';

const SCRIPT = fileURLToPath(new URL('../../docker/healthcheck.mjs', import.meta.url));
const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

function check(http: string | undefined): Promise<{ code: number; stderr: string }> {
  const env = { ...process.env };
  delete env.SITEDNS_HTTP;
  if (http !== undefined) env.SITEDNS_HTTP = http;
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT], { env, encoding: 'utf8', timeout: 10_000 }, (error, _stdout, stderr) => resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? 1), stderr }));
  });
}

t.test('healthy once serve is ready, on the address SITEDNS_HTTP names; a wildcard is asked on loopback', async (t) => {
  const server = await startSitedns(['serve', '--zones', 'zones', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--startup-limit', '200ms']);
  t.teardown(() => server.stop());
  const { port } = await server.waitForLog((l) => l.msg === 'admin listening');
  let result = await check(`127.0.0.1:${port}`);
  // Readiness follows the listening line by an event-loop turn or two.
  for (let i = 0; i < 20 && result.code !== 0; i++) result = await check(`127.0.0.1:${port}`);
  t.equal(result.code, 0, `127.0.0.1:${port}: healthy ${result.stderr}`);
  t.equal((await check(`0.0.0.0:${port}`)).code, 0, '0.0.0.0 is asked on 127.0.0.1');
  await server.stop();
  const stopped = await check(`127.0.0.1:${port}`);
  t.equal(stopped.code, 1, 'stopped: unhealthy');
  t.match(stopped.stderr, /^not ready: http:\/\/127\.0\.0\.1:\d+\/readyz: ECONNREFUSED/);
});

t.test('unhealthy, saying why: nothing listening, no admin listener, an address that is not host:port', async (t) => {
  const port = await freeTcpPort();
  const refused = await check(`127.0.0.1:${port}`);
  t.equal(refused.code, 1);
  t.match(refused.stderr, `not ready: http://127.0.0.1:${port}/readyz: ECONNREFUSED`);
  const off = await check('off');
  t.equal(off.code, 1);
  t.match(off.stderr, /no admin listener/);
  const bad = await check('localhost');
  t.equal(bad.code, 1);
  t.match(bad.stderr, /"localhost" is not host:port/);
});

t.test('the image runs Node 24 and checks /readyz; compose uses the same check', async (t) => {
  const dockerfile = read('Dockerfile');
  const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
  t.ok(froms.length >= 2, 'a build stage and a runtime stage');
  for (const from of froms) t.match(from, /^node:24-[a-z]+-slim\b/, `${from}: Node 24 slim`);
  t.match(dockerfile, /^HEALTHCHECK .*CMD \["node", "docker\/healthcheck\.mjs"\]$/m);
  t.notMatch(read('.dockerignore'), /^docker\/?$/m, 'the script is in the build context');
  t.match(read('docker-compose.yml'), /test: \["CMD", "node", "docker\/healthcheck\.mjs"\]/);
});
