/**
 * Rollovers as timing metadata (docs/dnssec.md#rollover), each step checked at its time with an
 * injected clock: pre-publish for a ZSK (RFC 6781 §4.1.1.1), double-DS for a KSK or CSK (§4.1.2).
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DnssecSettings } from '../../src/model/zone-model.js';
import { generateKey, loadZoneKeySet, readZoneKeys, writeKeyTiming } from '../../src/dnssec/keys.js';
import { planRollover, planRolloverCompletion, type RolloverPlan, type RolloverTimes } from '../../src/dnssec/rollover.js';
import type { KeyRole } from '../../src/dnssec/key-file.js';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-06-01T00:00:00Z');
const TIMES: RolloverTimes = { dnskeyTtlMs: HOUR, propagationMs: HOUR, signatureValidityMs: 14 * 24 * HOUR };
const SPLIT: DnssecSettings = { algorithm: 13, keys: 'ksk+zsk', validityMs: TIMES.signatureValidityMs, refreshMs: 7 * 24 * HOUR, denial: 'nsec' };
const CSK: DnssecSettings = { ...SPLIT, keys: 'csk' };
const start = { created: T0 - 100 * HOUR, publish: T0 - 100 * HOUR, activate: T0 - 100 * HOUR, retire: null, remove: null };

/** Writes a plan the way `sitedns dnssec rollover` does; returns the new key's tag. */
function apply(dir: string, plan: RolloverPlan): number | undefined {
  for (const change of plan.changes) writeKeyTiming(change.file, change.timing);
  return plan.newKey === undefined ? undefined : generateKey(dir, 'example.com', 13, plan.newKey.role, plan.newKey.timing).key.keyTag;
}

function setAt(dir: string, settings: DnssecSettings, now: number) {
  const load = loadZoneKeySet(dir, 'example.com', settings, now);
  if (!('keySet' in load)) throw new Error(load.problem.message);
  const tags = (keys: readonly { keyTag: number }[]) => keys.map((k) => k.keyTag).sort((a, b) => a - b);
  const { published, zoneSigning, keySigning, parentSignals, nextChangeAt } = load.keySet;
  return { published: tags(published), zoneSigning: tags(zoneSigning), keySigning: tags(keySigning), parentSignals: tags(parentSignals), nextChangeAt };
}

const sorted = (...tags: number[]) => [...tags].sort((a, b) => a - b);
const plan = (dir: string, role: KeyRole, now: number) => planRollover(dir, readZoneKeys(dir, 'example.com').keys, role, now, TIMES);
const complete = (dir: string, role: KeyRole, now: number) => planRolloverCompletion(dir, readZoneKeys(dir, 'example.com').keys, role, now, TIMES);

t.test('ZSK pre-publish: published now, signs after DNSKEY TTL + propagation, the old one removed a signature validity later', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sitedns-roll-')), 'keys');
  const ksk = generateKey(dir, 'example.com', 13, 'ksk', start).key.keyTag;
  const oldZsk = generateKey(dir, 'example.com', 13, 'zsk', start).key.keyTag;
  const newZsk = apply(dir, plan(dir, 'zsk', T0))!;
  const switchAt = T0 + 2 * HOUR;
  const removeAt = switchAt + TIMES.signatureValidityMs;
  t.same(setAt(dir, SPLIT, T0), { published: sorted(ksk, oldZsk, newZsk), zoneSigning: [oldZsk], keySigning: [ksk], parentSignals: [ksk], nextChangeAt: switchAt }, 'step 1: the new ZSK is in the DNSKEY RRset, the old one signs');
  t.same(setAt(dir, SPLIT, switchAt - 1).zoneSigning, [oldZsk]);
  t.same(setAt(dir, SPLIT, switchAt), { published: sorted(ksk, oldZsk, newZsk), zoneSigning: [newZsk], keySigning: [ksk], parentSignals: [ksk], nextChangeAt: removeAt }, 'step 2: the new ZSK signs; the old one stays published');
  t.same(setAt(dir, SPLIT, removeAt), { published: sorted(ksk, newZsk), zoneSigning: [newZsk], keySigning: [ksk], parentSignals: [ksk], nextChangeAt: Infinity }, 'step 3: the old ZSK is gone');
  t.throws(() => plan(dir, 'zsk', T0 + HOUR), { code: 'EKEY_ROLLOVER', message: /rollover is under way: key \d+ is published and not active yet$/ }, 'one rollover at a time');
  t.throws(() => complete(dir, 'zsk', T0 + HOUR), { code: 'EKEY_ROLLOVER', message: /completes by its timing/ });
  t.ok(plan(dir, 'zsk', switchAt), 'the next rollover may start once the new key signs');
});

for (const role of ['ksk', 'csk'] as const) {
  t.test(`${role.toUpperCase()} double-DS: the new key published and signalled beside the old; --complete swaps them`, async (t) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'sitedns-roll-')), 'keys');
    const settings = role === 'csk' ? CSK : SPLIT;
    const old = generateKey(dir, 'example.com', 13, role, start).key.keyTag;
    const zsk = role === 'ksk' ? [generateKey(dir, 'example.com', 13, 'zsk', start).key.keyTag] : [];
    t.throws(() => complete(dir, role, T0), { code: 'EKEY_ROLLOVER', message: /no [CK]SK rollover to complete/ });
    const incoming = apply(dir, plan(dir, role, T0))!;
    const signing = role === 'csk' ? [old] : zsk;
    t.same(setAt(dir, settings, T0), { published: sorted(old, incoming, ...zsk), zoneSigning: signing, keySigning: [old], parentSignals: sorted(old, incoming), nextChangeAt: Infinity }, 'step 1: both keys signalled (CDS/CDNSKEY), the old one signs');
    t.throws(() => plan(dir, role, T0 + HOUR), { code: 'EKEY_ROLLOVER', message: /under way.*--complete/ });
    t.throws(() => complete(dir, role, T0 + HOUR), { code: 'EKEY_ROLLOVER', message: /resolvers may not have it before 2026-06-01T02:00:00\.000Z/ }, 'not before the new key reached every resolver');
    const done = T0 + 30 * HOUR;
    t.equal(apply(dir, complete(dir, role, done)), undefined);
    const removeAt = done + TIMES.signatureValidityMs;
    t.same(setAt(dir, settings, done), { published: sorted(old, incoming, ...zsk), zoneSigning: role === 'csk' ? [incoming] : zsk, keySigning: [incoming], parentSignals: [incoming], nextChangeAt: removeAt }, 'step 2: the new key signs and alone is signalled');
    t.same(setAt(dir, settings, removeAt).published, sorted(incoming, ...zsk), 'step 3: the old key is gone');
  });
}

t.test('a rollover needs an active key of the role', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sitedns-roll-')), 'keys');
  generateKey(dir, 'example.com', 13, 'csk', start);
  t.throws(() => plan(dir, 'zsk', T0), { code: 'EKEY_ROLLOVER', file: dir, message: /no active ZSK to roll over/ });
});
