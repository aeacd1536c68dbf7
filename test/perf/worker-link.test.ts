/**
 * The cluster worker's end (WorkerLink, workers.ts) of a rolling reload: a reload the primary
 * asks for while the worker still starts is done once it serves (it may have read the files
 * before they changed, and the primary's rolling reload waits for the reply), and one asked later
 * is done at once. The test forks test/fixtures/worker-link-child.mjs and plays the primary.
 */
import t from 'tap';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { EMPTY_SNAPSHOT } from '../../src/state/snapshot.js';
import { stateMessage } from '../../src/server/state-messages.js';
import type { PrimaryMessage, WorkerMessage } from '../../src/server/workers.js';
import { tempZonesDir } from '../helpers/dns.js';

const CHILD = fileURLToPath(new URL('../fixtures/worker-link-child.mjs', import.meta.url));
const ZONE = `zone: app.example.com
soa: { mname: ns1.app.example.com, rname: hostmaster.example.com }
nameservers: { ns1.app.example.com: [192.0.2.53] }
records:
  mail: { A: [192.0.2.25] }
`;

t.test('a reload asked while the worker starts is answered once it serves; a later one at once', async (t) => {
  const child = fork(CHILD, [tempZonesDir({ 'app.yaml': ZONE })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.teardown(() => child.kill('SIGKILL'));
  const seen: WorkerMessage[] = [];
  const next = (type: WorkerMessage['type']) =>
    new Promise<WorkerMessage>((resolve) => {
      const found = seen.find((m) => m.type === type);
      if (found !== undefined) return resolve(found);
      const onMessage = (m: WorkerMessage) => {
        if (m.type !== type) return;
        child.off('message', onMessage);
        resolve(m);
      };
      child.on('message', onMessage);
    });
  child.on('message', (m: WorkerMessage) => seen.push(m));
  const send = (m: PrimaryMessage) => child.send(m);

  await next('hello');
  send({ type: 'reload', id: 7 }); // before it holds a state: it cannot be serving yet
  send(stateMessage(EMPTY_SNAPSHOT));
  const ready = await next('ready');
  const early = await next('reloaded');
  t.ok(seen.indexOf(ready) < seen.indexOf(early), "'ready' first, then the reload's reply");
  t.match(early, { type: 'reloaded', id: 7, ok: true, problems: 0 }, 'the early reload is answered, by its id');

  seen.length = 0;
  send({ type: 'reload', id: 8 });
  t.match(await next('reloaded'), { type: 'reloaded', id: 8, ok: true }, 'a reload while serving is answered at once');

  send({ type: 'stop' });
  const [code] = await once(child, 'exit');
  t.equal(code, 0, "'stop': the worker ends cleanly");
});
