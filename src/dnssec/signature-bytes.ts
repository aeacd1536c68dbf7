/**
 * A zone's signatures as bytes that cross threads: the signature field of every RRSIG one signing
 * made (dnssec/sign-zone.ts signZoneSteps), in the order it made them, in SharedArrayBuffer
 * chunks. The loader thread signs a changed zone and ships these; the thread that compiles it
 * again adopts them instead of signing (replayed in the same order, over the same zone and keys),
 * and hands the same chunks to its UDP threads, so signing costs one thread once and every thread
 * answers the same RRSIG bytes. Shared memory is neither copied nor cloned by postMessage, and an
 * adopted signature is a view into it (no copy either).
 *
 * Adopting is checked: the same file text (digest), the same signing time, the same signing keys
 * (key tags, in order), exactly as many signatures as the signing makes, and a sample of them
 * (the apex's, one per chunk, the last) verify over what they sign here; anything else signs as
 * if nothing had been shipped.
 */
import { verify } from 'node:crypto';
import type { KeySource } from './keys.js';
import type { DnssecSettings, ZoneSignatureBytes, ZoneSignatures } from '../model/zone-model.js';
import { signNow, type SignatureSource } from './sign.js';
import { signZoneSteps, type ZoneToSign } from './sign-zone.js';
import type { SigningKey, ZoneKeySet } from './types.js';
import { CodedError } from '../util/coded-error.js';
import type { Steps } from '../util/slices.js';

/** Both algorithms make 64-byte signatures: ECDSA P-256 r | s (RFC 6605 §4), Ed25519 (RFC 8080 §4). */
export const SIGNATURE_BYTES = 64;
/** Signatures per chunk: 64 KB of shared memory each. */
const SIGNATURES_PER_CHUNK = 1024;

/** A compile's signing: the keys and signing time, and the signatures shipped with the file, if any. */
export interface ZoneSigning extends KeySource {
  /** textDigest of the file compiled: shipped signatures are adopted only for the same text. */
  readonly digest?: string;
  readonly presigned?: ZoneSignatureBytes;
}

/** The signing keys in order, zone-signing then key-signing: a different set signs in another order or with other keys. */
export function keyTagsOf(keys: ZoneKeySet): string {
  return `${keys.zoneSigning.map((k) => k.keyTag).join(',')}/${keys.keySigning.map((k) => k.keyTag).join(',')}`;
}

/**
 * The zone's signatures at `signing.now()`: the presigned ones when they match (see the module
 * comment; then `bytes` is `signing.presigned` itself), else made here and recorded.
 */
export function* signOrAdoptSteps(zone: ZoneToSign, keys: ZoneKeySet, settings: DnssecSettings, signing: ZoneSigning): Steps<ZoneSignatures> {
  const nowMs = signing.now();
  const keyTags = keyTagsOf(keys);
  const presigned = signing.presigned;
  if (presigned !== undefined && presigned.digest !== undefined && presigned.digest === signing.digest && presigned.signedAt === nowMs && presigned.keyTags === keyTags) {
    const replay = replaySource(presigned);
    const adopted = yield* signZoneSteps(zone, keys, settings, nowMs, replay.source);
    if (replay.complete()) return Object.freeze({ ...adopted, bytes: presigned });
  }
  const recorder = recordingSource();
  const made = yield* signZoneSteps(zone, keys, settings, nowMs, recorder.source);
  return Object.freeze({ ...made, bytes: { digest: signing.digest, signedAt: nowMs, keyTags, count: recorder.count(), chunks: recorder.chunks } });
}

/**
 * Signs now and keeps each signature in shared chunks; the RRSIG holds a view of its copy, so
 * the zone and the bytes shipped share the memory.
 */
function recordingSource(): { source: SignatureSource; chunks: SharedArrayBuffer[]; count: () => number } {
  const chunks: SharedArrayBuffer[] = [];
  let count = 0;
  const source: SignatureSource = (key, data) => {
    const made = signNow(key, data);
    if (made.length !== SIGNATURE_BYTES) throw new CodedError('ESIGNATURE_SIZE', `a ${made.length}-byte signature: signatures shipped between threads are ${SIGNATURE_BYTES} bytes`);
    const slot = count % SIGNATURES_PER_CHUNK;
    if (slot === 0) chunks.push(new SharedArrayBuffer(SIGNATURES_PER_CHUNK * SIGNATURE_BYTES));
    const view = Buffer.from(chunks[chunks.length - 1], slot * SIGNATURE_BYTES, SIGNATURE_BYTES);
    made.copy(view);
    count++;
    return view;
  };
  return { source, chunks, count: () => count };
}

/**
 * The recorded signatures in order. The first VERIFIED_WHEN_ADOPTED (the apex RRsets: a zone
 * compiled differently fails there), the last of each chunk and the very last are verified
 * against what they sign here, so a difference past the apex is caught too. Past the last one it
 * gives zeros (no signature validates). `complete()` is false after either: the caller signs
 * instead, as it does when some are left over.
 */
function replaySource(bytes: ZoneSignatureBytes): { source: SignatureSource; complete: () => boolean } {
  let next = 0;
  let mismatch = false;
  const source: SignatureSource = (key, data) => {
    const i = next++;
    if (i >= bytes.count) return Buffer.alloc(SIGNATURE_BYTES);
    const signature = Buffer.from(bytes.chunks[Math.floor(i / SIGNATURES_PER_CHUNK)], (i % SIGNATURES_PER_CHUNK) * SIGNATURE_BYTES, SIGNATURE_BYTES);
    if (!mismatch && (i < VERIFIED_WHEN_ADOPTED || i % SIGNATURES_PER_CHUNK === SIGNATURES_PER_CHUNK - 1 || i === bytes.count - 1)) mismatch = !verifies(key, data(), signature);
    return signature;
  };
  return { source, complete: () => !mismatch && next === bytes.count };
}

/** Adopted signatures checked by verifying them: a fraction of a millisecond each. */
const VERIFIED_WHEN_ADOPTED = 8;

function verifies(key: SigningKey, data: Buffer, signature: Buffer): boolean {
  return key.algorithm === 13 ? verify('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }, signature) : verify(null, data, key.privateKey, signature);
}
