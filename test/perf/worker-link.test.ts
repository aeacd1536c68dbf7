/**
 * The cluster worker's end (WorkerLink, workers.ts): it compiles the zone texts the primary sends
 * (never the files) and serves them with the primary's generation; a reload the primary asks for
 * while the worker still starts is done once it serves (its first zones may be older, and the
 * primary's rolling reload waits for the reply), and one asked later is done at once. The test
 * forks test/fixtures/worker-link-child.mjs and plays the primary.
 */
import t from 'tap';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { EMPTY_SNAPSHOT } from '../../src/state/snapshot.js';
import { stateMessage } from '../../src/server/state-messages.js';
import type { PrimaryMessage, WorkerMessage } from '../../src/server/workers.js';
import { decode, query, tempZonesDir } from '../helpers/dns.js';
import { udpQuery } from '../helpers/net.js';

const CHILD = fileURLToPath(new URL('../fixtures/worker-link-child.mjs', import.meta.url));
const ZONE = `zone: app.example.com
soa: { mname: ns1.app.example.com, rname: hostmaster.example.com }
nameservers: { ns1.app.example.com: [192.0.2.53] }
records:
  mail: { A: [192.0.2.25] }
`;

t.test('a reload asked while the worker starts is answered once it serves; a later one at once', async (t) => {
  // The files hold another zone: the worker must serve the texts it is sent, not these.
  const child = fork(CHILD, [tempZonesDir({ 'app.yaml': ZONE.replace(/app\.example\.com/g, 'disk.example.com') })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

  const texts = (mail: string): [string, string][] => [['app.yaml', ZONE.replace('192.0.2.25', mail)]];
  await next('hello');
  send({ type: 'zones', zones: { generation: 41, texts: texts('192.0.2.25') } });
  send({ type: 'reload', id: 7, zones: { generation: 42, texts: texts('192.0.2.26') } }); // before it holds a state: it cannot be serving yet
  send(stateMessage(EMPTY_SNAPSHOT));
  const ready = await next('ready');
  t.match(ready, { type: 'ready', generation: 41 }, "it serves the primary's zones, with the primary's generation");
  const early = await next('reloaded');
  t.ok(seen.indexOf(ready) < seen.indexOf(early), "'ready' first, then the reload's reply");
  t.match(early, { type: 'reloaded', id: 7, ok: true, problems: 0, generation: 42 }, 'the early reload is answered, by its id, with the generation it was sent');

  seen.length = 0;
  send({ type: 'reload', id: 8, zones: { generation: 43, texts: texts('192.0.2.27') } });
  t.match(await next('reloaded'), { type: 'reloaded', id: 8, ok: true, generation: 43 }, 'a reload while serving is answered at once');
  const port = (ready as Extract<WorkerMessage, { type: 'ready' }>).listening[0].port;
  t.equal(decode((await udpQuery(port, query('mail.app.example.com')))!).answers[0]?.address, '192.0.2.27', 'it answers from the texts of the last reload');

  send({ type: 'stop' });
  const [code] = await once(child, 'exit');
  t.equal(code, 0, "'stop': the worker ends cleanly");
});
