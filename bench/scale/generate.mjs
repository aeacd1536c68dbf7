/**
 * A generated zone set for bench/scale: `names` names spread over zones of ~1,000 names each.
 * Per zone: 100 sites (Site Names), 50 groups (Group Names, 3 sites each), 50 pools (Pool
 * Names, 4 sites each, least-busy or first), and static records for the rest (A, AAAA, CNAME,
 * MX, TXT), so every kind of name a query can hit is represented.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PER_ZONE = 1000;

/**
 * `probe` (a YAML flow mapping, e.g. `{ tcp: "127.0.0.1:47999", interval: 60s }`) gives every
 * site that probe (bench/scale/probed.mjs: 10,000 probed sites).
 */
export function zoneText(z, count, probe) {
  const zone = `z${z}.scale.test`;
  const sites = Math.min(100, Math.floor(count / 10));
  const groups = Math.min(50, Math.floor(sites / 2));
  const pools = Math.min(50, Math.floor(sites / 2));
  const lines = [`zone: ${zone}`, 'ttl: 300', `soa: { mname: ns1.${zone}, rname: hostmaster.${zone} }`, 'nameservers:', `  ns1.${zone}: [192.0.2.1]`, `  ns2.${zone}: [192.0.2.2]`, 'sites:'];
  const ip = (i) => `10.${z % 256}.${Math.floor(i / 256)}.${i % 256}`;
  for (let s = 0; s < sites; s++) lines.push(`  s${s}: { addresses: [${ip(s)}${s % 3 === 0 ? `, "2001:db8:${z.toString(16)}::${s.toString(16)}"` : ''}]${probe ? `, probe: ${probe}` : ''} }`);
  if (groups > 0) lines.push('groups:');
  for (let g = 0; g < groups; g++) lines.push(`  g${g}: [s${(g * 2) % sites}, s${(g * 2 + 1) % sites}, s${(g * 2 + 2) % sites}]`);
  if (pools > 0) lines.push('pools:');
  for (let p = 0; p < pools; p++) {
    lines.push(`  - { name: p${p}, policy: ${p % 2 ? 'first' : 'least-busy'}, sites: [s${(p * 2) % sites}, s${(p * 2 + 1) % sites}, s${(p * 2 + 5) % sites}, s${(p * 2 + 9) % sites}] }`);
  }
  lines.push('records:');
  let used = sites + groups + pools + 2;
  for (let r = 0; used < count; r++, used++) {
    switch (r % 5) {
      case 0: lines.push(`  h${r}: { A: [${ip(r % 60000)}] }`); break;
      case 1: lines.push(`  h${r}: { AAAA: ["2001:db8::${(r % 65535).toString(16)}"] }`); break;
      case 2: lines.push(`  h${r}: { CNAME: p${r % Math.max(1, pools)}.${zone}. }`); break;
      case 3: lines.push(`  h${r}: { MX: ["10 h${r - 3}.${zone}."] }`); break;
      default: lines.push(`  h${r}: { TXT: ["record ${r}"] }`);
    }
  }
  return { zone, text: lines.join('\n') + '\n' };
}

/** Writes the zone files; returns the directory and a sample of query names per kind. */
export function generate(dir, names, { probe } = {}) {
  mkdirSync(dir, { recursive: true });
  const zones = Math.ceil(Math.max(0, names) / PER_ZONE);
  const queries = [];
  for (let z = 0; z < zones; z++) {
    const count = Math.min(PER_ZONE, names - z * PER_ZONE);
    const { zone, text } = zoneText(z, count, probe);
    writeFileSync(join(dir, `${zone}.yaml`), text);
    if (queries.length < 20000) {
      queries.push({ name: `p${z % 50}.${zone}`, type: 'A' }, { name: `s${z % 100}.${zone}`, type: 'A' }, { name: `g${z % 50}.${zone}`, type: 'A' }, { name: `h${(z * 5) % 800}.${zone}`, type: 'A' }, { name: `nope${z}.${zone}`, type: 'A' });
    }
  }
  return { dir, zones, queries };
}
