/** DNS numbers used by sitedns (RFC 1035 §3.2, RFC 6891, RFC 7871, RFC 5001, RFC 7873). */
export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
  CAA: 257,
} as const;

/**
 * DNSSEC RR types (RFC 4034 §2-§5, RFC 5155, RFC 7344), apart from QTYPE: only signed zones hold
 * them, and QTYPE's types each get a label value of the query metrics.
 */
export const DNSSEC_TYPE = { DS: 43, RRSIG: 46, NSEC: 47, DNSKEY: 48, NSEC3: 50, NSEC3PARAM: 51, CDS: 59, CDNSKEY: 60 } as const;

export const TYPE_NAME: Record<number, string> = Object.fromEntries(Object.entries(QTYPE).map(([k, v]) => [v, k]));
export function typeName(type: number): string {
  return TYPE_NAME[type] ?? `TYPE${type}`;
}
export function typeFromName(name: string): number | undefined {
  const upper = name.toUpperCase();
  if (upper in QTYPE) return QTYPE[upper as keyof typeof QTYPE];
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  return m ? Number(m[1]) : undefined;
}

export const CLASS_IN = 1;
export const CLASS_CH = 3;
export const CLASS_ANY = 255;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended RCODE 16 (RFC 6891 §9): upper 8 bits in the OPT TTL, lower 4 bits 0. */
  BADVERS: 16,
  /** Extended RCODE 23 (RFC 7873 §8): a server cookie is needed. */
  BADCOOKIE: 23,
} as const;
export const RCODE_NAME: Record<number, string> = Object.fromEntries(Object.entries(RCODE).map(([k, v]) => [v, k]));

export const OPCODE_QUERY = 0;

/** EDNS option codes. */
export const EDNS_OPTION = { NSID: 3, ECS: 8, COOKIE: 10, PADDING: 12 } as const;

/** Largest UDP payload we advertise and send (DNS flag day 2020: avoids IP fragmentation). */
export const EDNS_UDP_PAYLOAD = 1232;
/** RFC 1035 §4.2.1 limit for UDP without EDNS. */
export const CLASSIC_UDP_LIMIT = 512;
export const HEADER_LEN = 12;
export const MAX_MESSAGE = 65535;
