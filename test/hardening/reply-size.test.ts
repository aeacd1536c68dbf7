/**
 * Amplification: a UDP reply is never larger than the query allows (RFC 1035 §4.2.1: 512 without
 * EDNS; RFC 6891 §6.2.5: the requestor's size, raised to 512, capped at our 1232), for every
 * name and type of the fuzz zones, including ANY (RFC 8482: never the whole node).
 */
import t from 'tap';
import { fuzzZones } from '../../bench/fuzz/handler-fuzz.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { decode, query } from '../helpers/dns.js';

const handler = new Handler(new Runtime(fuzzZones()));
const NAMES = ['app.example.com', 'mail.app.example.com', 'legacy.app.example.com', 'x.legacy.app.example.com', 'nope.app.example.com', 'fuzz.test', 'many.fuzz.test', 'big.fuzz.test', 'x.sub.fuzz.test', 'chain.fuzz.test', 'www.fuzz.test', 'example.org'];
const TYPES = ['A', 'AAAA', 'ANY', 'TXT', 'MX', 'NS', 'SOA', 'CAA', 'SRV'];
const SIZES: (number | null)[] = [null, 0, 100, 512, 513, 600, 700, 1000, 1232, 1233, 4096, 65535];

t.test('UDP replies fit the size the query allows', async (t) => {
  let checked = 0;
  let truncated = 0;
  for (const name of NAMES) {
    for (const type of TYPES) {
      for (const size of SIZES) {
        const q = query(name, type, size === null ? {} : { edns: { udpSize: size } });
        const out = handler.handle(q, { transport: 'udp', clientAddress: '198.51.100.1' })!;
        const allowed = size === null ? 512 : Math.min(Math.max(size, 512), 1232);
        if (out.length > allowed) t.fail(`${name} ${type} size ${size}: ${out.length} bytes > ${allowed}`);
        const d = decode(out);
        if (d.tc) truncated++;
        checked++;
      }
    }
  }
  t.pass(`${checked} replies within their limit`);
  t.ok(truncated > 0, `the big RRsets were truncated rather than sent oversized (${truncated} TC replies)`);
});

t.test('ANY gets one RRset, not the node (RFC 8482)', async (t) => {
  const d = decode(handler.handle(query('fuzz.test', 'ANY'), { transport: 'udp', clientAddress: '198.51.100.1' })!);
  t.equal(new Set(d.answers.map((a: any) => a.type)).size, 1, 'one type answered');
});

t.test('names outside our zones: REFUSED, no recursion', async (t) => {
  const d = decode(handler.handle(query('www.example.net', 'A', { rd: true }), { transport: 'udp', clientAddress: '198.51.100.1' })!);
  t.equal(d.rcode, 5);
  t.notOk(d.ra, 'RA clear');
  t.equal(d.answers.length + d.authorities.length, 0);
});

t.test('a long query (EDNS Padding, RFC 7830) is answered, and its reply still fits the limit', async (t) => {
  for (const size of [2049, 65_000, 65_507]) {
    const bare = query('app.example.com', 'A', { edns: { udpSize: 4096 } });
    const padding = Buffer.alloc(size - bare.length);
    padding.writeUInt16BE(12, 0);
    padding.writeUInt16BE(padding.length - 4, 2);
    const q = query('app.example.com', 'A', { edns: { udpSize: 4096, options: padding } });
    t.equal(q.length, size);
    const out = handler.handle(q, { transport: 'udp', clientAddress: '198.51.100.1' });
    t.ok(out !== null, `${size} bytes: answered`);
    t.equal(out && decode(out).rcode, 0, `${size} bytes: NOERROR`);
    t.ok(out !== null && out.length <= 1232, `${size} bytes: the reply (${out?.length} bytes) does not echo the padding`);
  }
});
