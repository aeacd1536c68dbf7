/**
 * `import "sitedns/affinity"` in a web application loads the middleware and the zone compiler,
 * and nothing of the nameserver: no ioredis, prom-client, dns2 or pino, none of server/, state/,
 * metrics/, admin/, probe/, app/ or cli/. A child process imports the package export (as an
 * application would, by name) and lists every module it loaded: the ES modules through a resolve
 * hook, the CommonJS ones from the require cache.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const HOOKS = new URL('../helpers/module-graph-hooks.mjs', import.meta.url).href;

const CHILD = `
import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const loaded = new Set();
port1.on('message', (url) => loaded.add(url));
register(${JSON.stringify(HOOKS)}, { data: { port: port2 }, transferList: [port2] });
const affinity = await import('sitedns/affinity');
if (typeof affinity.siteAffinity !== 'function') throw new Error('no siteAffinity export');
// The hooks report from their own thread: let the last reports arrive.
await new Promise((resolve) => setTimeout(resolve, 300));
port1.close();
console.log(JSON.stringify([...loaded, ...Object.keys(createRequire(import.meta.url).cache)]));
`;

t.test('importing sitedns/affinity loads nothing of the server', async (t) => {
  const loaded: string[] = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', CHILD], { cwd: root, encoding: 'utf8' }));
  t.ok(loaded.some((m) => m.endsWith('/dist/affinity/index.js')), 'the package export itself is listed');
  t.ok(loaded.some((m) => m.includes('/node_modules/zod/')), 'ES modules of dependencies are listed');
  t.ok(loaded.some((m) => m.includes('/node_modules/ipaddr.js/')), 'CommonJS ones too');
  for (const dependency of ['ioredis', 'prom-client', 'dns2', 'pino']) {
    t.same(loaded.filter((m) => m.includes(`/node_modules/${dependency}/`)), [], `no ${dependency}`);
  }
  for (const layer of ['server', 'state', 'metrics', 'admin', 'probe', 'app', 'cli', 'demo']) {
    t.same(loaded.filter((m) => m.includes(`/dist/${layer}/`)), [], `nothing of ${layer}/`);
  }
});
