/**
 * Prebuilt answers: response bytes compiled once by the general encoder (response.ts) and
 * replayed per query with only the ID, RD/CD, the question (the client's letter case) and the
 * OPT patched in. This module reads and writes those bytes; which answer a query gets is decided
 * by server/fast-path.ts.
 *
 * A prebuilt answer is the part of a response after the question ("body") plus its header
 * fields. It is valid for a query whose question name equals, case-insensitively, the name it
 * was built for: the body's compression pointers may point into the question (RFC 1035 §4.1.4),
 * which sits at the same offset with the same length. NXDOMAIN bodies are "templates" built for
 * the zone's apex: for a longer name below the apex every pointer moves by the difference in
 * name length. A DO=1 NXDOMAIN of a signed zone is such a template built for a name below the
 * closest encloser, its pointers at or above the encloser. Wildcard answers are templates built for the wildcard's own name `*.<encloser>`:
 * for a name the wildcard answers, pointers to the whole question (the synthesized owner, RFC
 * 4592 §3.3.1) stay and the others move (fast-path.ts makes sure no body name could have
 * compressed differently).
 *
 * Only queries of the common shape come here: QUERY opcode, one question of class IN, no
 * answer/authority records, at most one OPT of version 0 (with at most one valid ECS option,
 * echoed with scope 0: the answers prebuilt here do not depend on the client). The handler's own
 * reply options (NSID, a server cookie) follow the ECS echo, as the general path writes them.
 * Anything else, or
 * an answer that would not fit the client's size untruncated, goes to the general path.
 */
import { CLASSIC_UDP_LIMIT, DNSSEC_TYPE, EDNS_OPTION, EDNS_UDP_PAYLOAD, HEADER_LEN, QTYPE } from './constants.js';
import { FNV_OFFSET, FNV_PRIME, hashWireName } from './name-hash.js';
import { OPT_RECORD_LEN, encodeName } from './encode.js';
import { appendLabelText, clientSubnetProblem, decodeQuery, type DecodedQuery } from './decode.js';
import { cookieLengthProblem } from './cookies.js';

/** Response header flags the answer contributes (AA and RCODE); QR, RD and CD are added per query. */
const FLAG_QR = 0x8000;
const FLAGS_COPIED = 0x0100 | 0x0010; // RD, CD (RFC 1035 §4.1.1, RFC 4035 §3.1.6)

/**
 * A template's pointers for a longer question name: 'suffix' moves every one (an NXDOMAIN built
 * for the apex), 'wildcard' all but those to the whole question (built for `*.<encloser>`).
 */
export type TemplateKind = 'suffix' | 'wildcard';

export class PrebuiltAnswer {
  constructor(
    /** AA bit and RCODE of the response header. */
    readonly flags: number,
    readonly an: number,
    readonly ns: number,
    /** Additional records, not counting the OPT added per query. */
    readonly ar: number,
    /** Everything after the question, without the OPT. */
    readonly body: Buffer,
    /** For templates: offsets in `body` of compression pointers to move; null otherwise. */
    readonly pointers: Int32Array | null,
  ) {}

  /**
   * From a complete response built by response.ts for a syntheticQuery: without EDNS, or with
   * DO=1 (`dnssecOk`), whose response ends in an OPT without options that is left out here (the
   * OPT is written per query).
   */
  static fromResponse(response: Buffer, questionEnd: number, template: TemplateKind | null = null, dnssecOk = false): PrebuiltAnswer {
    const body = Buffer.from(response.subarray(questionEnd, dnssecOk ? response.length - OPT_RECORD_LEN : response.length));
    const flags = response.readUInt16BE(2) & (0x0400 | 0x000f);
    const an = response.readUInt16BE(6);
    const ns = response.readUInt16BE(8);
    const ar = response.readUInt16BE(10) - (dnssecOk ? 1 : 0);
    const pointers = template !== null ? pointerOffsets(body, an + ns + ar, template === 'wildcard') : null;
    return new PrebuiltAnswer(flags, an, ns, ar, body, pointers);
  }

  /** Whether every pointer this template moves points at message offset `first` or later. */
  movesOnlyFrom(first: number): boolean {
    const pointers = this.pointers;
    if (pointers === null) return false;
    for (let i = 0; i < pointers.length; i++) {
      const at = pointers[i];
      if ((((this.body[at] & 0x3f) << 8) | this.body[at + 1]) < first) return false;
    }
    return true;
  }
}

/**
 * A query for `name` (lower-case text) and `qtype`, decoded, for building answers: without EDNS,
 * or with an OPT asking for DNSSEC records (DO=1, RFC 3225) when `dnssecOk`.
 */
export function syntheticQuery(name: string, qtype: number, dnssecOk = false): DecodedQuery {
  const wireName = encodeName(name);
  const raw = Buffer.alloc(HEADER_LEN + wireName.length + 4 + (dnssecOk ? OPT_RECORD_LEN : 0));
  raw.writeUInt16BE(1, 4);
  wireName.copy(raw, HEADER_LEN);
  raw.writeUInt16BE(qtype, HEADER_LEN + wireName.length);
  raw.writeUInt16BE(1, HEADER_LEN + wireName.length + 2);
  if (dnssecOk) {
    const opt = HEADER_LEN + wireName.length + 4;
    raw.writeUInt16BE(1, 10);
    raw.writeUInt16BE(QTYPE.OPT, opt + 1);
    raw.writeUInt16BE(EDNS_UDP_PAYLOAD, opt + 3);
    raw.writeUInt16BE(0x8000, opt + 7);
  }
  const decoded = decodeQuery(raw);
  if (!decoded.ok) throw new Error(`cannot build a query for ${name}`);
  return decoded.query;
}

/**
 * Offsets of the compression pointers to move in a body of `count` RRs whose RDATA names sit
 * where NS, CNAME, PTR, SOA or MX put them, or that hold no compressed name (A, AAAA, TXT, SRV,
 * CAA, RRSIG, NSEC, NSEC3). Pointers to the whole question are left out when `ownerStays`.
 * Returns null when the body holds anything else, so the caller does not use it as a template.
 */
function pointerOffsets(body: Buffer, count: number, ownerStays: boolean): Int32Array | null {
  const found: number[] = [];
  let pos = 0;
  const skipName = (): boolean => {
    for (;;) {
      if (pos >= body.length) return false;
      const len = body[pos];
      if (len === 0) {
        pos += 1;
        return true;
      }
      if ((len & 0xc0) === 0xc0) {
        if (!ownerStays || (((len & 0x3f) << 8) | body[pos + 1]) !== HEADER_LEN) found.push(pos);
        pos += 2;
        return true;
      }
      pos += 1 + len;
    }
  };
  for (let i = 0; i < count; i++) {
    if (!skipName() || pos + 10 > body.length) return null;
    const type = body.readUInt16BE(pos);
    const rdlength = body.readUInt16BE(pos + 8);
    pos += 10;
    const end = pos + rdlength;
    if (type === QTYPE.NS || type === QTYPE.CNAME || type === QTYPE.PTR) {
      if (!skipName()) return null;
    } else if (type === QTYPE.SOA) {
      if (!skipName() || !skipName()) return null;
      pos += 20; // SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM
    } else if (type === QTYPE.MX) {
      pos += 2;
      if (!skipName()) return null;
    } else if (type === QTYPE.A || type === QTYPE.AAAA || type === QTYPE.TXT || type === QTYPE.SRV || type === QTYPE.CAA || type === DNSSEC_TYPE.RRSIG || type === DNSSEC_TYPE.NSEC || type === DNSSEC_TYPE.NSEC3) {
      // No compressed name: SRV's target, RRSIG's signer and NSEC's next name are written whole
      // (RFC 2782; RFC 4034 §3.1.7, §4.1.1).
      pos = end;
    } else {
      return null;
    }
    if (pos !== end) return null;
  }
  if (pos !== body.length) return null;
  return Int32Array.from(found);
}

// ---------------------------------------------------------------------------------------------
// Query scanning: the common shape, read without allocating.

/**
 * What scanQuery learned; one object reused for every query (read it before the next scan).
 * `ok` false means "take the general path", never "malformed" as such.
 */
export class QueryScan {
  ok = false;
  /** Offset past the question name (= the QTYPE field). */
  nameEnd = 0;
  questionEnd = 0;
  /** FNV-1a of the lower-cased wire name (see hashWireName). */
  hash = 0;
  flags = 0;
  qtype = 0;
  edns = false;
  udpSize = 0;
  dnssecOk = false;
  /**
   * The query's EDNS Client Subnet option (RFC 7871), valid, as bytes q[ecsStart, ecsStart +
   * ecsLength) from its option code on; ecsStart -1 without one. A response that is not
   * client-specific echoes it unchanged: scope 0 is what the query must carry (§7.1.2), and is
   * what such a response sets (§7.2.1).
   */
  ecsStart = -1;
  ecsLength = 0;
  /** The query's first COOKIE option (RFC 7873 §4), its length valid: its data at q[cookieStart, + cookieLength); -1 without one. */
  cookieStart = -1;
  cookieLength = 0;
  /** The query carries an NSID option (RFC 5001 §2.3). */
  nsid = false;
}

export { hashWireName };

/**
 * Reads the header, question and OPT of the common query shape (see the module comment).
 * Anything unusual sets `scan.ok = false`; the general decoder then gives the exact verdict.
 */
export function scanQuery(q: Buffer, length: number, scan: QueryScan): void {
  scan.ok = false;
  if (length < HEADER_LEN + 5) return;
  const flags = (q[2] << 8) | q[3];
  // QR must be 0 and OPCODE QUERY (0); other flags are the client's business.
  if ((flags & 0xf800) !== 0) return;
  // QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1.
  if (q[4] !== 0 || q[5] !== 1 || q[6] !== 0 || q[7] !== 0 || q[8] !== 0 || q[9] !== 0 || q[10] !== 0 || q[11] > 1) return;
  let pos = HEADER_LEN;
  let h = FNV_OFFSET;
  for (;;) {
    if (pos >= length) return;
    const len = q[pos];
    h = Math.imul(h ^ len, FNV_PRIME);
    if (len === 0) break;
    if (len > 63) return; // also compression pointers: never in the question we serve
    const end = pos + 1 + len;
    if (end > length || end - HEADER_LEN > 254) return;
    for (let i = pos + 1; i < end; i++) {
      let c = q[i];
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    pos = end;
  }
  const nameEnd = pos + 1;
  const questionEnd = nameEnd + 4;
  if (questionEnd > length) return;
  // QCLASS IN only (CH, ANY and the rest go the general way).
  if (q[nameEnd + 2] !== 0 || q[nameEnd + 3] !== 1) return;
  scan.qtype = (q[nameEnd] << 8) | q[nameEnd + 1];
  scan.edns = false;
  scan.dnssecOk = false;
  scan.udpSize = 0;
  scan.ecsStart = -1;
  scan.ecsLength = 0;
  scan.cookieStart = -1;
  scan.cookieLength = 0;
  scan.nsid = false;
  if (q[11] === 0) {
    if (questionEnd !== length) return;
  } else {
    // One OPT with the root owner (RFC 6891 §6.1.2), version 0; options walked for bounds, a
    // valid ECS noted (see QueryScan.ecsStart).
    const t = questionEnd;
    if (t + 1 + OPT_RECORD_LEN - 1 > length || q[t] !== 0 || q[t + 1] !== 0 || q[t + 2] !== QTYPE.OPT) return;
    if (q[t + 6] !== 0) return; // EDNS version > 0: BADVERS, general path
    const rdlength = (q[t + 9] << 8) | q[t + 10];
    let opt = t + OPT_RECORD_LEN;
    const end = opt + rdlength;
    if (end !== length) return;
    while (opt < end) {
      if (opt + 4 > end) return;
      const code = (q[opt] << 8) | q[opt + 1];
      const optionLength = (q[opt + 2] << 8) | q[opt + 3];
      if (code === EDNS_OPTION.ECS) {
        // decode.ts's checks; anything they refuse, or a second ECS, goes the general way for
        // its FORMERR.
        if (scan.ecsStart >= 0 || opt + 4 + optionLength > end || clientSubnetProblem(q, opt + 4, optionLength) !== null) return;
        scan.ecsStart = opt;
        scan.ecsLength = 4 + optionLength;
      } else if (code === EDNS_OPTION.COOKIE && scan.cookieStart < 0) {
        // decode.ts's rule: the first COOKIE counts; a malformed length goes the general way for its FORMERR.
        if (opt + 4 + optionLength > end || cookieLengthProblem(optionLength) !== null) return;
        scan.cookieStart = opt + 4;
        scan.cookieLength = optionLength;
      } else if (code === EDNS_OPTION.NSID) {
        scan.nsid = true;
      }
      opt += 4 + optionLength;
    }
    if (opt !== end) return;
    const size = (q[t + 3] << 8) | q[t + 4];
    scan.edns = true;
    scan.udpSize = size < CLASSIC_UDP_LIMIT ? CLASSIC_UDP_LIMIT : size;
    scan.dnssecOk = (q[t + 7] & 0x80) !== 0;
  }
  scan.flags = flags;
  scan.nameEnd = nameEnd;
  scan.questionEnd = questionEnd;
  scan.hash = h;
  scan.ok = true;
}

/** Largest response for the scanned query, minus its OPT with `extraLength` bytes of reply options (mirrors response.ts responseLimit). */
export function prebuiltLimit(scan: QueryScan, tcp: boolean, extraLength: number): number {
  const limit = tcp ? 65535 : scan.edns ? Math.min(scan.udpSize, EDNS_UDP_PAYLOAD) : CLASSIC_UDP_LIMIT;
  return scan.edns ? limit - OPT_RECORD_LEN - scan.ecsLength - extraLength : limit;
}

/**
 * Writes `answer` for the scanned query into `out`. `delta` moves a template's pointers (0 for
 * exact answers); `extra` holds the reply options after the ECS echo (response.ts's `extra`), or
 * null. Returns the length, or -1 when it does not fit `limit`/`out` (general path).
 */
export function writePrebuilt(q: Buffer, scan: QueryScan, answer: PrebuiltAnswer, delta: number, limit: number, out: Buffer, extra: Buffer | null = null): number {
  const questionEnd = scan.questionEnd;
  const body = answer.body;
  const bodyEnd = questionEnd + body.length;
  const extraLength = extra === null || !scan.edns ? 0 : extra.length;
  if (bodyEnd > limit || bodyEnd + (scan.edns ? OPT_RECORD_LEN + scan.ecsLength + extraLength : 0) > out.length) return -1;
  out[0] = q[0];
  out[1] = q[1];
  const flags = FLAG_QR | (scan.flags & FLAGS_COPIED) | answer.flags;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = 1;
  out[6] = answer.an >> 8;
  out[7] = answer.an & 0xff;
  out[8] = answer.ns >> 8;
  out[9] = answer.ns & 0xff;
  const ar = answer.ar + (scan.edns ? 1 : 0);
  out[10] = ar >> 8;
  out[11] = ar & 0xff;
  // Byte loop and TypedArray set, not Buffer#copy: a partial copy makes Buffer#copy allocate a
  // Uint8Array view per call (Node 20), the only garbage this path would otherwise produce.
  for (let i = HEADER_LEN; i < questionEnd; i++) out[i] = q[i];
  out.set(body, questionEnd);
  if (delta !== 0) {
    const pointers = answer.pointers;
    if (pointers === null) return -1;
    for (let i = 0; i < pointers.length; i++) {
      const at = questionEnd + pointers[i];
      const target = (((out[at] & 0x3f) << 8) | out[at + 1]) + delta;
      if (target >= 0x4000) return -1;
      out[at] = 0xc0 | (target >> 8);
      out[at + 1] = target & 0xff;
    }
  }
  if (!scan.edns) return bodyEnd;
  // RFC 6891 §6.1.2: our OPT, advertising 1232, version 0, DO echoed, no options. The RCODEs
  // answered here all fit in 4 bits, so the extended RCODE byte is 0.
  out[bodyEnd] = 0;
  out[bodyEnd + 1] = 0;
  out[bodyEnd + 2] = QTYPE.OPT;
  out[bodyEnd + 3] = EDNS_UDP_PAYLOAD >> 8;
  out[bodyEnd + 4] = EDNS_UDP_PAYLOAD & 0xff;
  out[bodyEnd + 5] = 0;
  out[bodyEnd + 6] = 0;
  out[bodyEnd + 7] = scan.dnssecOk ? 0x80 : 0;
  out[bodyEnd + 8] = 0;
  const ecsLength = scan.ecsLength;
  const optionsLength = ecsLength + extraLength;
  out[bodyEnd + 9] = optionsLength >> 8;
  out[bodyEnd + 10] = optionsLength & 0xff;
  // The ECS echo (RFC 7871 §7.2.1, scope 0): the query's option bytes as they came.
  for (let i = 0, from = scan.ecsStart, to = bodyEnd + OPT_RECORD_LEN; i < ecsLength; i++) out[to + i] = q[from + i];
  if (extraLength > 0) out.set(extra!, bodyEnd + OPT_RECORD_LEN + ecsLength);
  return bodyEnd + OPT_RECORD_LEN + optionsLength;
}

export { encodeName };

/** The question name as lower-case text (as decode.ts decodes it), for logs of fast-path queries. */
export function questionNameText(q: Buffer, nameEnd: number): string {
  let text = '';
  for (let pos = HEADER_LEN; pos < nameEnd && q[pos] !== 0; pos += 1 + q[pos]) text = appendLabelText(text, q, pos);
  return text;
}
