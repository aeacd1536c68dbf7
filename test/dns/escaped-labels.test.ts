/**
 * A question label may hold a "." or "\\" byte; the question's text holds it escaped (decode.ts
 * readQuestionName). The zone walk steps over labels, not over every dot (findZone, atDelegation,
 * wildcardFor in model/resolve.ts), and the writer writes and compresses such a name by its wire
 * labels (MessageWriter in dns/encode.ts).
 */
import t from 'tap';
import { RCODE } from '../../src/dns/constants.js';
import { MessageWriter, encodeName, firstLabelEnd, parentName } from '../../src/dns/encode.js';
import { findZone, wildcardFor } from '../../src/model/resolve.js';
import { lookup } from '../../src/server/lookup.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { compileText, decode } from '../helpers/dns.js';

const zoneText = `zone: example.net
soa: { mname: ns1.example.net, rname: hostmaster.example.net }
nameservers: { ns1.example.net: [192.0.2.1] }
records:
  b: { A: [192.0.2.2] }
  "*.w": { A: [192.0.2.3] }
`;

/** A query for `labels` (each a label's bytes, latin1), type A, DO=0, built by hand: the helpers take text names. */
function queryOfLabels(labels: string[], type = 1): Buffer {
  const parts = [Buffer.from([0x12, 0x34, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0])];
  for (const label of labels) parts.push(Buffer.from([label.length]), Buffer.from(label, 'latin1'));
  parts.push(Buffer.from([0, 0, type, 0, 1]));
  return Buffer.concat(parts);
}

t.test('the text of a name steps label by label over escaped dots and backslashes', async (t) => {
  t.equal(firstLabelEnd('a\\.b.example.net'), 4);
  t.equal(firstLabelEnd('a\\\\.b'), 3, 'an escaped backslash ends before the dot after it');
  t.equal(parentName('a\\.example.net'), 'net');
  t.equal(parentName('net'), '');
});

t.test('the zone walk: a label holding a dot is one label', async (t) => {
  const zones = compileText(zoneText);
  t.equal(findZone(zones, 'a\\.example.net'), undefined, 'labels "a.example" + "net": no zone of ours');
  t.equal(lookup(zones, 'a\\.example.net', 1).kind, 'refused');
  t.equal(findZone(zones, 'a\\.b.example.net')?.origin, 'example.net');
  t.equal(lookup(zones, 'a\\.b.example.net', 1).kind, 'nxdomain', '"a.b" under example.net does not exist (b does, as a label of its own)');
  const zone = findZone(zones, 'x\\.y.w.example.net')!;
  t.equal(wildcardFor(zone, 'x\\.y.w.example.net')?.name, '*.w.example.net', 'the wildcard of w answers "x.y" below it');
  t.equal(wildcardFor(zone, 'a\\.w.example.net'), undefined, 'but not "a.w" below the apex, which holds no wildcard (w is no label of it)');
});

t.test('the writer writes and compresses an escaped name by its wire labels', async (t) => {
  const writer = new MessageWriter(Buffer.alloc(512));
  writer.header(0, 0, 0, 0, 0, 0);
  t.ok(writer.name('a\\.b.example.net', true));
  const written = writer.buf.subarray(12, writer.length);
  t.same(written, encodeName('a\\.b.example.net'), 'the label "a.b" as 3 bytes, as encodeName writes it');
  const at = writer.length;
  t.ok(writer.name('example.net', true));
  t.same(writer.buf.subarray(at, writer.length), Buffer.from([0xc0, 12 + 4]), 'a later name points at the suffix after the escaped label');
});

t.test('a query whose label holds a dot: REFUSED outside our zones, a wildcard answer owned by the name asked', async (t) => {
  for (const prebuilt of [false, true]) {
    const path = prebuilt ? 'prebuilt answers' : 'general path';
    const handler = new Handler(new Runtime(compileText(zoneText)), undefined, {}, { prebuilt });
    const refused = decode(handler.handle(queryOfLabels(['a.example', 'net']), { transport: 'udp', clientAddress: '192.0.2.9' })!);
    t.equal(refused.rcode, RCODE.REFUSED, `${path}: labels "a.example" + "net" are no name of ours`);
    const q = queryOfLabels(['x.y', 'w', 'example', 'net']);
    const out = handler.handle(q, { transport: 'udp', clientAddress: '192.0.2.9' })!;
    const reply = decode(out);
    t.equal(reply.rcode, RCODE.NOERROR, `${path}: answered`);
    t.equal(reply.answers.length, 1, `${path}: by the wildcard`);
    // The answer's owner is a pointer to the question's name, which starts at offset 12.
    t.same(out.subarray(q.length, q.length + 2), Buffer.from([0xc0, 12]), `${path}: the owner is the question's name, compressed`);
  }
});
