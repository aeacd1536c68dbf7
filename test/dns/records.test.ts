/** RDATA of addresses and text, byte for byte (RFC 1035 §3.4.1, RFC 3596 §2.2, RFC 1035 §3.3.14). */
import t from 'tap';
import ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';
import { ipv4Rdata, ipv6Rdata, txtRdata } from '../../src/dns/records.js';

t.test('addresses: the bytes ipaddr.js reads from every text form net.isIP accepts', async (t) => {
  const forms = ['0.0.0.0', '255.255.255.255', '192.0.2.1', '10.0.100.9', '::', '::1', '1::', '2001:db8::', '2001:DB8::A', 'fe80::1%eth0', '::ffff:192.0.2.1', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:1.2.3.4', '1::1.2.3.4', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '0001:0db8:0000:0000:0000:0000:0000:0001', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '1:2::7:8'];
  for (let i = 0; i < 200; i++) {
    const words = Array.from({ length: 8 }, (_, j) => ((i * 7919 + j * 104729) % 5 === 0 ? 0 : (i * 2654435761 + j * 40503) % 65536));
    forms.push(ipaddr.IPv6.parse(words.map((w) => w.toString(16)).join(':')).toString());
  }
  for (const form of forms) {
    const family = isIP(form);
    t.not(family, 0, `${form} is an address`);
    const bytes = (family === 4 ? ipv4Rdata(form) : ipv6Rdata(form))[0] as Buffer;
    t.same([...bytes], ipaddr.parse(form.replace(/%.*$/, '')).toByteArray(), form);
  }
});

t.test('an IPv4-compatible address (::a.b.c.d) is its 96 zero bits and the IPv4 address (RFC 4291 §2.5.5.1)', async (t) => {
  t.same([...(ipv6Rdata('::192.0.2.1')[0] as Buffer)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]);
});

t.test('TXT: character-strings of at most 255 bytes, each after its length', async (t) => {
  const encode = (text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length === 0) return [0];
    const out: number[] = [];
    for (let i = 0; i < bytes.length; i += 255) out.push(Math.min(255, bytes.length - i), ...bytes.subarray(i, i + 255));
    return out;
  };
  for (const text of ['', 'v=spf1 -all', 'x'.repeat(85), 'é'.repeat(85), '😀'.repeat(42), 'y'.repeat(86), 'z'.repeat(600), 'é'.repeat(200)]) {
    t.same([...(txtRdata([text])[0] as Buffer)], encode(text), `${text.length} characters`);
  }
  t.same([...(txtRdata(['a', 'bc'])[0] as Buffer)], [1, 0x61, 2, 0x62, 0x63], 'two strings');
});
