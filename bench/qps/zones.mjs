/**
 * The equivalent zones bench/qps serves from sitedns and gdnsd: a static A, a Pool of 3 sites,
 * a Site Name, and NXDOMAIN. Kept in one place so both servers get the same data.
 */
export const ZONE = 'bench.test';

/** Name kinds measured, with the query dnsperf sends. */
export const KINDS = [
  { kind: 'static', name: `static.${ZONE}`, type: 'A' },
  { kind: 'pool', name: `pool.${ZONE}`, type: 'A' },
  { kind: 'site', name: `boston.${ZONE}`, type: 'A' },
  { kind: 'nxdomain', name: `nope.${ZONE}`, type: 'A' },
];

export const SITES = { boston: '192.0.2.10', chicago: '192.0.2.20', geneva: '192.0.2.30' };

export function sitednsZone() {
  return `zone: ${ZONE}
ttl: 300
dynamic_ttl: 0
soa: { mname: ns1.${ZONE}, rname: hostmaster.${ZONE}, minimum: 60 }
nameservers:
  ns1.${ZONE}: [192.0.2.53]
  ns2.${ZONE}: [192.0.2.54]
sites:
${Object.entries(SITES).map(([id, a]) => `  ${id}: { addresses: [${a}] }`).join('\n')}
groups:
  americas: [boston, chicago, geneva]
pool: { name: pool, policy: least-busy }
records:
  static: { A: [192.0.2.80] }
`;
}

/**
 * gdnsd 3 config + zone: the pool as a `multifo` DYNA (every site up, answers all three like
 * gdnsd does; sitedns answers one: fewer bytes, so the comparison does not favour gdnsd),
 * the Site Name as a `simplefo` (primary boston, secondary chicago). Monitoring is off
 * (`up_thresh` irrelevant without service_types: the addresses count as up), as in sitedns
 * before any probe.
 */
export function gdnsdConfig(port, threads, runDir, stateDir) {
  return `options => {
  listen => [ 127.0.0.1 ]
  dns_port => ${port}
  udp_threads => ${threads}
  tcp_threads => ${threads}
  run_dir => ${runDir}
  state_dir => ${stateDir}
  zones_strict_data => true
  min_ttl => 0
}
plugins => {
  multifo => {
    pool => { boston => ${SITES.boston}, chicago => ${SITES.chicago}, geneva => ${SITES.geneva} }
  }
  simplefo => {
    bostonfo => { primary => ${SITES.boston}, secondary => ${SITES.chicago} }
  }
}
`;
}

export function gdnsdZone() {
  return `$TTL 300
@ 60 SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
@ NS ns2
ns1 A 192.0.2.53
ns2 A 192.0.2.54
static A 192.0.2.80
pool 0 DYNA multifo!pool
boston 0 DYNA simplefo!bostonfo
`;
}
