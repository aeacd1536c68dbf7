/**
 * The zone file schema: the only file that knows the YAML shape (docs/zones.md documents every key).
 *
 * Every object is `.strict()` so a misspelt key is an error, not a silently ignored setting.
 * Values are validated here (addresses, names, durations, ranges); cross-references between
 * parts of a zone (a group naming an unknown site, a pool's primary) are checked in compile.ts,
 * which reports them with the same file:line: path: message shape.
 */
import { z } from 'zod';
import { isIP } from 'node:net';
import { duration } from '../util/duration.js';
import { nameProblem } from './names.js';
import { ALL_DOWN_RULES, POLICY_NAMES, type ProbeConfig } from '../model/zone-model.js';

export const ipv4 = z.string().refine((s) => isIP(s) === 4, { message: 'not an IPv4 address' });
// A zone index (fe80::1%eth0) names a link of this host: it has no meaning in DNS data (RFC 4007 §11).
export const ipv6 = z.string().refine((s) => isIP(s) === 6 && !s.includes('%'), { message: 'not an IPv6 address' });
export const ipAddress = z.string().refine((s) => isIP(s) !== 0 && !s.includes('%'), { message: 'not an IPv4 or IPv6 address' });

export const dnsName = z.string().superRefine((s, ctx) => {
  const problem = nameProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** RFC 2181 §8: TTLs are 0 .. 2^31 - 1 seconds. */
const ttl = z.number().int().min(0).max(2_147_483_647);
export const MAX_ADDRESSES_PER_SITE = 100;
export const MAX_NAMESERVER_ADDRESSES = 100;
const fraction = z.number().min(0).max(10);

export const soaSchema = z
  .object({
    mname: dnsName,
    rname: dnsName,
    serial: z.number().int().min(0).max(4_294_967_295).optional(),
    refresh: ttl.default(3600),
    retry: ttl.default(600),
    expire: ttl.default(604800),
    minimum: ttl.default(60),
  })
  .strict();

/** How often a site is probed or pushes its load: a schedule below 100ms is a busy loop, not a probe. */
const probeInterval = duration.pipe(z.number().min(100, 'at least 100ms').max(3_600_000, 'at most 1h'));

/** Health probe of a site. The target need not be the site's answered address. */

export const probeSchema = z
  .object({
    http: z.string().url().optional(),
    https: z.string().url().optional(),
    tcp: z.string().regex(/^(?:\[[0-9A-Fa-f:.]+\]|[^:\s]+):\d{1,5}$/, 'use host:port or [v6]:port').optional(),
    // Bounded: a 0 ms interval would probe in a busy loop; hours-long timeouts never fail.
    interval: probeInterval.optional(),
    timeout: duration.pipe(z.number().min(10, 'at least 10ms').max(60_000, 'at most 60s')).optional(),
    rise: z.number().int().min(1).max(100).optional(),
    fall: z.number().int().min(1).max(100).optional(),
    /** Flap damping: the half-life of the penalty each fall adds (probe/debounce.ts); 0 turns it off. */
    flap_half_life: duration.pipe(z.number().max(3_600_000, 'at most 1h')).optional(),
    /** JSON field of the response body holding the site's load, e.g. `load` reads {"load": 0.42}. */
    load: z.string().min(1).optional(),
    /** Response header holding the site's load. */
    load_header: z.string().min(1).optional(),
    /** HTTP status codes that count as healthy (default: any 2xx). */
    expect_status: z.array(z.number().int().min(100).max(599)).min(1).optional(),
    /** A substring the HTTP response body must contain. */
    expect_body: z.string().optional(),
    /** Host header (and TLS SNI) to send, when the URL holds an address. */
    host: z.string().optional(),
    /** Skip TLS certificate verification (self-signed health endpoints). */
    insecure: z.boolean().optional(),
    /** Follow redirects to other hosts (default: never; same-host redirects are not followed either). */
    follow_redirects: z.boolean().optional(),
    /** Pushed load reports (seed 002): expected interval; a site silent for 3 intervals counts as down. */
    push_interval: probeInterval.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const kinds = [p.http, p.https, p.tcp].filter((k) => k !== undefined).length;
    if (kinds > 1) ctx.addIssue({ code: 'custom', message: 'a probe has one of http, https or tcp' });
    if (kinds === 0 && p.push_interval === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a probe needs http, https, tcp or push_interval' });
    }
  });

// The compiled model keeps a probe as this schema's output (model/zone-model.ts ProbeConfig):
// the same keys, and compile.ts assigns one to the other, so the two cannot drift apart.
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
const probeKeysMatchModel: SameKeys<z.infer<typeof probeSchema>, ProbeConfig> = true;

export const allDownSchema = z.enum(ALL_DOWN_RULES);

export const siteSchema = z
  .object({
    /** Site Name override; relative to the zone unless it ends with "." (default: <id>.<zone>). */
    name: dnsName.optional(),
    /** At most 100: a site is a place with a few service addresses, and answers must fit a message. */
    addresses: z.array(ipAddress).min(1).max(MAX_ADDRESSES_PER_SITE, `at most ${MAX_ADDRESSES_PER_SITE} addresses per site`),
    /** utilization = load / capacity. */
    capacity: z.number().positive().default(1),
    /** Offload threshold of this site when it is an offload target (seeds 000/001). */
    threshold: fraction.optional(),
    /** Relative cost of sending traffic here (offload choice by cost). */
    cost: z.number().min(0).optional(),
    /** Failover order for this Site Name, overriding the order of its first group. */
    failover: z.array(z.string()).optional(),
    all_down: allDownSchema.optional(),
    probe: probeSchema.optional(),
  })
  .strict();

export const groupSchema = z.union([
  z.array(z.string()).min(1),
  z
    .object({
      sites: z.array(z.string()).min(1),
      /** Group Name override (default: <id>.<zone>). */
      name: dnsName.optional(),
      all_down: allDownSchema.optional(),
    })
    .strict(),
]);

export const policySchema = z.enum(POLICY_NAMES);

export const poolSchema = z
  .object({
    /** The Pool Name, relative to the zone ("@" is the apex). */
    name: dnsName,
    policy: policySchema.default('least-busy'),
    /** Sites in this pool (default: every site of the zone). */
    sites: z.array(z.string()).min(1).optional(),
    /** Client network -> group; longest prefix wins (seeds 003/004). */
    topology: z.record(z.string(), z.union([z.array(z.string()), z.string()])).optional(),
    /** Seed 002 hysteresis: stay on the current site below `stay_below`, move only for a `differential` gain. */
    hysteresis: z
      .object({ stay_below: fraction.default(0.5), differential: z.number().positive().max(10).default(0.2) })
      .strict()
      .optional(),
    /** Offload policy (seeds 000/001). */
    primary: z.string().optional(),
    offload: z.array(z.string()).optional(),
    thresholds: z
      .object({ offload: fraction.default(0.7), throttle: fraction.default(0.9), drop: fraction.default(0.97) })
      .strict()
      .optional(),
    offload_choice: z.enum(['client', 'cost', 'load']).optional(),
    /** Offload policy: the share of new answers the primary keeps while it is up and below `drop`. */
    primary_keeps: z.number().min(0).max(0.5).optional(),
    sorry: z.array(ipAddress).or(ipAddress).optional(),
    all_down: allDownSchema.optional(),
    /** Answers per query: 1 (default) hands out one site; more lists several sites, best first. */
    answers: z.number().int().min(1).max(16).optional(),
    /**
     * Least-busy: the load (in the sites' load units) one answer is expected to add, so answers
     * handed out since a site's load was measured count before the next report shows them
     * (docs/policies.md). 1 when load counts sessions and each answer starts about one; 0 (the
     * default) turns the correction off.
     */
    load_per_answer: z.number().min(0).optional(),
  })
  .strict();

/** A static record value: one string/number or a list of them. */
const recordValue = z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()])).min(1)]);
export const RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'NS', 'MX', 'TXT', 'SRV', 'PTR', 'CAA', 'DS'] as const;
export const recordSetSchema = z
  .object({
    A: recordValue.optional(),
    AAAA: recordValue.optional(),
    CNAME: recordValue.optional(),
    NS: recordValue.optional(),
    MX: recordValue.optional(),
    TXT: recordValue.optional(),
    SRV: recordValue.optional(),
    PTR: recordValue.optional(),
    CAA: recordValue.optional(),
    /** At a delegation point: the child zone's DS records, "keytag algorithm digest-type hex" (RFC 4034 §5.3). */
    DS: recordValue.optional(),
    /** TTL for this name's records (default: the zone's ttl). */
    ttl: ttl.optional(),
  })
  .strict();

/**
 * DNSSEC signing of one zone (docs/dnssec.md): `true` takes every default; the object sets them.
 * Algorithms are the two RFC 8624 §3.1 recommends for signing: 13 (ECDSA P-256 SHA-256, the
 * default, as the root's successors and most registries use) and 15 (Ed25519).
 */
export const DNSSEC_ALGORITHMS = ['ecdsap256sha256', 'ed25519'] as const;
/** Each algorithm's number (RFC 8624 §3.1), as DNSKEY, DS and RRSIG records carry it. */
export const DNSSEC_ALGORITHM_NUMBERS = { ecdsap256sha256: 13, ed25519: 15 } as const satisfies Record<(typeof DNSSEC_ALGORITHMS)[number], 13 | 15>;
export const DNSSEC_DENIALS = ['nsec', 'nsec3', 'nsec3-opt-out'] as const;
/** How much longer than `refresh` a signature's validity must be: the hour back of its inception and an hour of use. */
const MIN_SIGNATURE_USE_MS = 2 * 3_600_000;
const signatureTime = duration.pipe(z.number().min(3_600_000, 'at least 1h').max(90 * 86_400_000, 'at most 90d'));
export const dnssecSchema = z.union([
  z.boolean(),
  z
    .object({
      algorithm: z.enum(DNSSEC_ALGORITHMS).default('ecdsap256sha256'),
      /** One combined signing key (CSK), or a key-signing key and a zone-signing key. */
      keys: z.enum(['csk', 'ksk+zsk']).default('csk'),
      /** How long a signature is valid (RRSIG expiration - inception). */
      validity: signatureTime.default(14 * 86_400_000),
      /** Signatures are made again when less than this is left of their validity. */
      refresh: signatureTime.default(7 * 86_400_000),
      /**
       * Denial of existence: an NSEC chain (RFC 4034 §4), NSEC3 (RFC 5155, RFC 9276 parameters), or
       * NSEC3 with opt-out (RFC 5155 §6: delegations without DS left out of the chain).
       */
      denial: z.enum(DNSSEC_DENIALS).default('nsec'),
    })
    .strict()
    // Signatures start an hour back (validators with slow clocks) and are made again once `refresh`
    // is left, at the earliest an hour after signing: validity 1h1m would expire a minute after
    // signing and be signed again every 30 s. `refresh` + 2h leaves every signature at least an
    // hour of use before it falls due.
    .refine((d) => d.validity >= d.refresh + MIN_SIGNATURE_USE_MS, {
      message: 'validity must be at least refresh + 2h (signatures start an hour back and are made again when refresh is left)',
      path: ['validity'],
    })
    .describe('DNSSEC signing (docs/dnssec.md); validity must be at least refresh + 2h'),
]);

export const zoneFileSchema = z
  .object({
    zone: dnsName,
    ttl: ttl.default(300),
    /** TTL of Pool/Group/Site answers (the seed: zero or near-zero). */
    dynamic_ttl: ttl.default(0),
    soa: soaSchema,
    nameservers: z.record(dnsName, z.array(ipAddress).max(MAX_NAMESERVER_ADDRESSES, `at most ${MAX_NAMESERVER_ADDRESSES} addresses per nameserver`)).refine((ns) => Object.keys(ns).length > 0, {
      message: 'at least one nameserver',
    }),
    sites: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'site ids are lower-case labels'), siteSchema).default({}),
    groups: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'group ids are lower-case labels'), groupSchema).default({}),
    pool: poolSchema.optional(),
    /** More than one application in one zone: each pool lists its sites. */
    pools: z.array(poolSchema).optional(),
    records: z.record(dnsName, recordSetSchema).default({}),
    /** Sign this zone (docs/dnssec.md); absent or false: unsigned, answers unchanged. */
    dnssec: dnssecSchema.optional(),
  })
  .strict();

export type ZoneFile = z.infer<typeof zoneFileSchema>;
export type SiteConfig = z.infer<typeof siteSchema>;
export type PoolConfig = z.infer<typeof poolSchema>;
export type RecordType = (typeof RECORD_TYPES)[number];
