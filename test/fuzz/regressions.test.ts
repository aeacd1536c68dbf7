/**
 * Packets the fuzzer found mishandled, kept as fixed cases. Each names the fix.
 */
import t from 'tap';
import { fuzzZones, checkReply } from '../../bench/fuzz/handler-fuzz.js';
import { Handler } from '../../src/server/handler.js';
import { Runtime } from '../../src/state/runtime.js';
import { decode } from '../helpers/dns.js';

const handler = new Handler(new Runtime(fuzzZones()));
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

t.test('a "." or "\\\\" inside a question label does not corrupt name compression (encode.ts MessageWriter.question)', async (t) => {
  // "x\\y.legacy.app.example.com" ANY: the escaped text is one character longer than the wire
  // label, so compression offsets taken from the text pointed into the middle of a label.
  const queries = [
    hex('8fe7 0000 0001 0000 0000 0000 03785c79 066c6567616379 03617070 076578616d706c65 03636f6d 00 00ff 0001'),
    hex('a015 0000 0001 0000 0000 0001 022e2e 03617070 076578616d706c65 03636f6d 00 0006 0001 0000290200000000000000'),
    hex('aba3 0000 0001 0000 0000 0001 05412e422e43 03617070 076578616d706c65 03636f6d 00 00ff 0001 0000290200000000000000'),
  ];
  for (const q of queries) {
    const out = handler.handle(q, { transport: 'udp', clientAddress: '192.0.2.1' })!;
    t.equal(checkReply(q, out, 'udp'), '', 'reply is well formed');
    const d = decode(out);
    t.equal(d.id, q.readUInt16BE(0));
    t.ok(d.authorities.length + d.answers.length > 0, 'with its records');
  }
});

t.test('NOTIMP echoes the query OPCODE (response.ts responseFlags; RFC 1035 §4.1.1)', async (t) => {
  for (const opcode of [1, 2, 4, 5, 15]) {
    const q = hex('1234 0000 0001 0000 0000 0000 03617070 076578616d706c65 03636f6d 00 0001 0001');
    q[2] = opcode << 3;
    const d = decode(handler.handle(q, { transport: 'udp', clientAddress: '192.0.2.1' })!);
    t.equal(d.rcode, 4, `opcode ${opcode}: NOTIMP`);
    t.equal(d.opcode, opcode, `opcode ${opcode} echoed`);
  }
});
