/** `sitedns dnssec keygen|ds|status|rollover`, `check --keys` and `serve --keys`, as run from a shell. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, startSitedns } from '../helpers/net.js';
import { tempZonesDir } from '../helpers/dns.js';

const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const json = (...args: string[]) => {
  const r = run(...args, '--output', 'json');
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};
const keyDir = () => join(mkdtempSync(join(tmpdir(), 'sitedns-cli-keys-')), 'keys');
const signedZone = (dnssec = 'dnssec: true') => `zone: signed.test
soa: { mname: ns1.signed.test, rname: h.signed.test }
nameservers: { ns1.signed.test: [192.0.2.1] }
records:
  www: { A: [192.0.2.10] }
${dnssec}
`;

t.test('help: sitedns help dnssec lists the four actions', async (t) => {
  const r = run('help', 'dnssec');
  t.equal(r.status, 0);
  for (const action of ['keygen', 'ds', 'status', 'rollover', '--complete', '--keys']) t.match(r.stdout, action);
});

t.test('keygen: a key file 0600 in a new 0700 directory; its DS and DNSKEY printed', async (t) => {
  const keys = keyDir();
  const r = run('dnssec', 'keygen', 'Signed.Test.', '--keys', keys);
  t.equal(r.status, 0, r.stderr);
  const [file] = readdirSync(keys);
  t.match(file, /^Ksigned\.test\+013\+\d{5}\.json$/);
  t.equal(statSync(keys).mode & 0o777, 0o700);
  t.equal(statSync(join(keys, file)).mode & 0o777, 0o600);
  const tag = Number(file.slice(-10, -5));
  t.match(r.stdout, new RegExp(`^; signed\\.test\\. IN DNSKEY 257 3 13 [A-Za-z0-9+/]{86}==$`, 'm'));
  t.match(r.stdout, new RegExp(`^signed\\.test\\. IN DS ${tag} 13 2 [0-9A-F]{64}$`, 'm'));
  const ed = json('dnssec', 'keygen', 'signed.test', '--keys', keys, '--algorithm', 'ed25519', '--role', 'zsk', '--publish', '+1h', '--activate', '2030-01-01T00:00:00Z');
  t.match(ed, { zone: 'signed.test', role: 'zsk', algorithm: 15, flags: 256, state: 'scheduled', activate: '2030-01-01T00:00:00.000Z', ds: null });
  t.match(ed.dnskey, /^signed\.test\. IN DNSKEY 256 3 15 [A-Za-z0-9+/]{43}=$/);
  const late = run('dnssec', 'keygen', 'signed.test', '--keys', keys, '--publish', '+2h', '--activate', '+1h');
  t.equal(late.status, 1);
  t.match(late.stderr, /--activate: before --publish/);
  t.match(run('dnssec', 'keygen', 'signed.test', '--keys', keys, '--publish', 'tomorrow').stderr, /--publish: "tomorrow" is not now, an ISO 8601 time/);
  t.match(run('dnssec', 'keygen', 'signed.test', '--keys', keys, '--role', 'boss').stderr, /--role: "boss" is not csk, ksk or zsk/);
  t.match(run('dnssec', 'keygen', 'bad..name', '--keys', keys).stderr, /zone "bad\.\.name"/);
  t.match(run('dnssec', 'nope', 'signed.test').stderr, /usage: sitedns dnssec/);
});

t.test('ds and status; a CSK rollover by double-DS: both DS, then --complete', async (t) => {
  const keys = keyDir();
  const first = json('dnssec', 'keygen', 'signed.test', '--keys', keys);
  t.same(json('dnssec', 'ds', 'signed.test', '--keys', keys).records.map((r: any) => r.keyTag), [first.keyTag]);
  const started = json('dnssec', 'rollover', 'signed.test', '--keys', keys, '--role', 'csk');
  t.match(started, { role: 'csk', newKey: { role: 'csk', state: 'published', activate: null }, changed: [] });
  const both = json('dnssec', 'ds', 'signed.test', '--keys', keys).records.map((r: any) => r.keyTag).sort();
  t.same(both, [first.keyTag, started.newKey.keyTag].sort(), 'ds shows the old and the new key');
  const ds = run('dnssec', 'ds', 'signed.test', '--keys', keys);
  t.equal(ds.stdout.split('\n').filter((l) => / IN DS /.test(l) && !l.startsWith(';')).length, 2);
  const early = run('dnssec', 'rollover', 'signed.test', '--keys', keys, '--role', 'csk', '--complete');
  t.equal(early.status, 1);
  t.match(early.stderr, /resolvers may not have it before/);
  const done = json('dnssec', 'rollover', 'signed.test', '--keys', keys, '--role', 'csk', '--complete', '--dnskey-ttl', '0', '--propagation', '0', '--signature-validity', '30d');
  t.match(done.changed, [{ keyTag: started.newKey.keyTag, state: 'active' }, { keyTag: first.keyTag, state: 'retired' }]);
  const status = json('dnssec', 'status', 'signed.test', '--keys', keys);
  t.match(status.keys.find((k: any) => k.keyTag === first.keyTag), { state: 'retired', parentSignal: false });
  t.match(status.keys.find((k: any) => k.keyTag === started.newKey.keyTag), { state: 'active', parentSignal: true });
  t.equal(Date.parse(status.nextChangeAt) - Date.parse(done.changed[1].retire), 30 * 86_400_000, 'the old key goes a signature validity later');
  t.same(json('dnssec', 'ds', 'signed.test', '--keys', keys).records.map((r: any) => r.keyTag), [started.newKey.keyTag]);
  const table = run('dnssec', 'status', 'signed.test', '--keys', keys).stdout;
  t.match(table, /^TAG\s+ROLE\s+ALGORITHM\s+STATE/);
  t.match(table, /active, CDS/);
});

t.test('a ZSK rollover pre-publishes: the new key signs after DNSKEY TTL + propagation', async (t) => {
  const keys = keyDir();
  json('dnssec', 'keygen', 'signed.test', '--keys', keys, '--role', 'ksk');
  const zsk = json('dnssec', 'keygen', 'signed.test', '--keys', keys, '--role', 'zsk');
  const r = json('dnssec', 'rollover', 'signed.test', '--keys', keys, '--role', 'zsk', '--dnskey-ttl', '2h', '--propagation', '30m');
  t.equal(Date.parse(r.newKey.activate) - Date.parse(r.newKey.publish), 2.5 * 3_600_000);
  t.match(r.changed, [{ keyTag: zsk.keyTag, retire: r.newKey.activate }]);
  t.equal(Date.parse(r.changed[0].remove) - Date.parse(r.changed[0].retire), 14 * 86_400_000);
  const again = run('dnssec', 'rollover', 'signed.test', '--keys', keys, '--role', 'zsk');
  t.equal(again.status, 1);
  t.match(again.stderr, /rollover is under way/);
});

t.test('errors name the file and exit 1; a key others may read is a warning', async (t) => {
  const keys = keyDir();
  const missing = run('dnssec', 'status', 'signed.test', '--keys', keys);
  t.equal(missing.status, 1);
  t.match(missing.stderr, `sitedns dnssec: ${keys}: no such key directory`);
  json('dnssec', 'keygen', 'signed.test', '--keys', keys);
  const [name] = readdirSync(keys);
  chmodSync(join(keys, name), 0o644);
  const warned = run('dnssec', 'status', 'signed.test', '--keys', keys);
  t.equal(warned.status, 0);
  t.match(warned.stderr, `warning: ${join(keys, name)}: group or others may read`);
  writeFileSync(join(keys, name), 'garbage');
  const corrupt = run('dnssec', 'ds', 'signed.test', '--keys', keys);
  t.equal(corrupt.status, 1);
  t.match(corrupt.stderr, `${join(keys, name)}: not a key file (not JSON)`);
});

t.test('check --keys: a signed zone without keys, or with keys of another algorithm, is a problem; never creates keys', async (t) => {
  const keys = keyDir();
  const zones = tempZonesDir({ 'signed.yaml': signedZone() });
  const none = run('check', zones, '--keys', keys);
  t.equal(none.status, 1);
  t.match(none.stderr, `${keys}:0: dnssec: zone signed.test: no such key directory`);
  t.throws(() => readdirSync(keys), 'nothing created');
  json('dnssec', 'keygen', 'signed.test', '--keys', keys, '--algorithm', 'ed25519');
  const mismatch = run('check', zones, '--keys', keys);
  t.equal(mismatch.status, 1);
  t.match(mismatch.stderr, /Ksigned\.test\+015\+\d{5}\.json:0: dnssec: zone signed\.test: key algorithm 15 \(ED25519\), but zone signed\.test signs with 13/);
  const ok = run('check', tempZonesDir({ 'signed.yaml': signedZone('dnssec: { algorithm: ed25519 }') }), '--keys', keys);
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /ok: zone signed\.test/);
});

t.test('serve --keys: a signed zone without keys gets them at start, logged on one line', async (t) => {
  const keys = keyDir();
  const zones = tempZonesDir({ 'signed.yaml': signedZone() });
  const server = await startSitedns(['serve', '--zones', zones, '--keys', keys, '--listen', '127.0.0.1:0', '--http', 'off', '--startup-limit', '0']);
  t.teardown(() => server.stop());
  const created = server.logs.filter((l) => /DNSSEC keys created/.test(l.msg ?? ''));
  t.equal(created.length, 1);
  const files = readdirSync(keys);
  t.equal(files.length, 1);
  t.match(created[0].msg, files[0]);
  t.equal(statSync(join(keys, files[0])).mode & 0o777, 0o600);
});
