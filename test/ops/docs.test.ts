/** docs/metrics.md lists every metric sitedns registers. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { registry } from '../../src/metrics/definitions.js';

t.test('every sitedns_* metric is documented', async (t) => {
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  const names = registry.getMetricsAsArray().map((m) => m.name).filter((n) => n.startsWith('sitedns_'));
  t.ok(names.length >= 15);
  for (const name of names) t.match(doc, `\`${name}\``, `${name} is in docs/metrics.md`);
});
