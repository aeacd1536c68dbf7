import t from 'tap';
import { formatHostPort, parseHostPort } from '../../src/util/listen.js';

t.test('host and port to text and back: IPv6 in brackets', async (t) => {
  const cases: [string, number, string][] = [
    ['127.0.0.1', 5353, '127.0.0.1:5353'],
    ['::1', 53, '[::1]:53'],
    ['2001:db8::5', 0, '[2001:db8::5]:0'],
    ['ns1.example.net', 26379, 'ns1.example.net:26379'],
  ];
  for (const [host, port, text] of cases) {
    t.equal(formatHostPort(host, port), text, text);
    t.same(parseHostPort(text), { host, port }, `${text} parses back`);
  }
});

t.test('parseHostPort: the default host, and what it refuses', async (t) => {
  t.same(parseHostPort(':5353'), { host: '127.0.0.1', port: 5353 });
  t.throws(() => parseHostPort('::1:53'), /not host:port/);
  t.throws(() => parseHostPort('127.0.0.1:70000'), /out of range/);
});
