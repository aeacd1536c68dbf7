/**
 * What signing needs from a zone's keys, independent of how keys are stored (dnssec/keys.ts reads
 * and writes key files; dnssec/sign.ts signs with what this describes).
 *
 * Roles follow RFC 4033 §2 and RFC 6781 §3: a combined signing key (CSK) signs everything; with a
 * key-signing key (KSK, flags 257, the SEP bit) and a zone-signing key (ZSK, flags 256), the KSK
 * signs only the apex DNSKEY, CDS and CDNSKEY RRsets and the ZSK every other RRset.
 */
import type { KeyObject } from 'node:crypto';

export interface SigningKey {
  /** RFC 4034 Appendix B key tag of the DNSKEY record. */
  readonly keyTag: number;
  /** 13 (ECDSA P-256 SHA-256, RFC 6605) or 15 (Ed25519, RFC 8080). */
  readonly algorithm: 13 | 15;
  /** DNSKEY flags: 257 (zone key + SEP: a KSK or CSK) or 256 (zone key: a ZSK). */
  readonly flags: 256 | 257;
  /** The DNSKEY public key field: RFC 6605 §4 (x | y, 64 bytes) or RFC 8080 §3 (32 bytes). */
  readonly publicKey: Buffer;
  readonly privateKey: KeyObject;
  /** The file the key was read from (errors and logs name it). */
  readonly file: string;
}

/** A zone's keys at one moment of their timing metadata (publish, activate, retire, remove). */
export interface ZoneKeySet {
  /** Zone origin: lower case, no trailing dot. */
  readonly zone: string;
  /** Keys in the apex DNSKEY RRset (published, including pre-published and retiring ones). */
  readonly published: readonly SigningKey[];
  /** Keys that sign every RRset except DNSKEY, CDS and CDNSKEY (the active ZSKs, or the CSK). */
  readonly zoneSigning: readonly SigningKey[];
  /** Keys that sign the apex DNSKEY, CDS and CDNSKEY RRsets (the active KSKs, or the CSK). */
  readonly keySigning: readonly SigningKey[];
  /** Keys the apex publishes as CDS/CDNSKEY for the parent (RFC 7344, RFC 8078); empty: none. */
  readonly parentSignals: readonly SigningKey[];
  /** When the key set changes next by its timing metadata (ms since the epoch; Infinity: never). */
  readonly nextChangeAt: number;
}
