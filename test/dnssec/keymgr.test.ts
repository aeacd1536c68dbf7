/**
 * Key tags, DNSKEY and DS of generated keys as Knot's keymgr computes them from the same private
 * key (an independent implementation), for both algorithms and both flags.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dnskeyText, dsText } from '../../src/dnssec/dnskey.js';
import { generateKey } from '../../src/dnssec/keys.js';

const haveKeymgr = spawnSync('keymgr', ['-V']).status === 0;
const NOW = Date.parse('2026-06-01T00:00:00Z');

for (const [algorithm, name] of [[13, 'ecdsap256sha256'], [15, 'ed25519']] as const) {
  for (const role of ['csk', 'zsk'] as const) {
    (haveKeymgr ? t.test : t.skip)(`algorithm ${algorithm} ${role}: keymgr reads the same key tag, DNSKEY and DS`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'sitedns-keymgr-'));
      const { key } = generateKey(join(dir, 'keys'), 'example.com', algorithm, role, { created: NOW, publish: NOW, activate: NOW, retire: null, remove: null });
      const pem = join(dir, 'key.pem');
      writeFileSync(pem, key.privateKey.export({ format: 'pem', type: 'pkcs8' }));
      const keymgr = (...args: string[]) => spawnSync('keymgr', ['-D', join(dir, 'kasp'), 'example.com.', ...args], { encoding: 'utf8' });
      const imported = keymgr('import-pem', pem, `algorithm=${name}`, `ksk=${role === 'csk' ? 'yes' : 'no'}`);
      t.equal(imported.status, 0, imported.stderr);
      const listed = JSON.parse(spawnSync('keymgr', ['-D', join(dir, 'kasp'), '-j', 'example.com.', 'list'], { encoding: 'utf8' }).stdout) as { tag: number; algorithm: number }[];
      t.same(listed.map((k) => [k.tag, k.algorithm]), [[key.keyTag, algorithm]], `key tag ${key.keyTag}`);
      // keymgr prints the DNSKEY and DS of keys with the SEP flag (KSKs, CSKs) only.
      if (role === 'csk') {
        t.equal(keymgr('dnskey').stdout.trim(), dnskeyText('example.com', key).replace(' IN ', ' '));
        const sha256 = keymgr('ds').stdout.split('\n').find((line) => / DS \d+ \d+ 2 /.test(line));
        t.equal(sha256?.toUpperCase(), dsText('example.com', key).replace(' IN ', ' ').toUpperCase());
      }
    });
  }
}
