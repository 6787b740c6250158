/**
 * The hot path's view of DNS messages, without a general codec: read just the header, the one
 * question and the EDNS OPT record of a request; patch the ID and RD bit of a cached encoded
 * answer; cut an over-size answer to fit with TC set. dns2 stays the codec that builds answers
 * (encode.ts), off the hot path. Every function here is total: bad bytes give a reason string.
 */

export interface Query {
  id: number;
  /** RD bit of the request. */
  rd: boolean;
  /** CD bit of the request (echoed). */
  cd: boolean;
  /** Offset just past QTYPE/QCLASS. */
  qEnd: number;
  qtype: number;
  qclass: number;
  /** EDNS0 of the request: advertised UDP size and DO bit; null without an OPT record. */
  edns: { size: number; do: boolean; version: number } | null;
  /**
   * Cache key, with `variant`: the question's wire bytes (so case-exact) as one flat latin1
   * string, and 0 without EDNS, 1 with EDNS, 2 with the DO bit. Two queries with the same key
   * and variant get byte-identical answers apart from ID, RD and CD.
   */
  key: string;
  variant: 0 | 1 | 2;
}

// Buffer#latin1Slice: toString('latin1') without its argument handling, on the hot path.
type Latin1 = Buffer & { latin1Slice(start: number, end: number): string };

export const HEADER = 12;
const MAX_NAME = 255;

/** Offset just past the (possibly compressed) name at `off`, or -1 when malformed. */
function skipName(buf: Buffer, off: number): number {
  let total = 1;
  for (;;) {
    if (off >= buf.length) return -1;
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= buf.length ? off + 2 : -1;
    if (len & 0xc0) return -1;
    total += len + 1;
    if (total > MAX_NAME) return -1;
    off += len + 1;
  }
}

/** Offset past a resource record at `off`, or -1. */
function skipRR(buf: Buffer, off: number): number {
  const n = skipName(buf, off);
  if (n < 0 || n + 10 > buf.length) return -1;
  const end = n + 10 + buf.readUInt16BE(n + 8);
  return end <= buf.length ? end : -1;
}

/** Parses a request; a string is the reason it is malformed (to be counted and dropped). */
export function parseQuery(buf: Buffer): Query | string {
  if (buf.length < HEADER + 5) return 'shorter than header and question';
  const b2 = buf[2]!;
  if (b2 & 0x80) return 'not a query (QR set)';
  if (buf.readUInt16BE(4) !== 1) return 'question count is not 1';
  // Question name: plain labels only, as every resolver sends.
  let off = HEADER;
  let total = 1;
  for (;;) {
    if (off >= buf.length) return 'question name runs past the end';
    const len = buf[off]!;
    if (len === 0) break;
    if (len & 0xc0) return 'compressed or invalid label in question';
    total += len + 1;
    if (total > MAX_NAME) return 'question name longer than 255 octets';
    for (let i = off + 1; i <= off + len && i < buf.length; i++) {
      const c = buf[i]!;
      if (c === 0x2e || c === 0x2f || c === 0x5c) return 'question label holds "." "/" or "\\"';
    }
    off += len + 1;
  }
  const qEnd = off + 5;
  if (qEnd > buf.length) return 'question type/class runs past the end';
  const qtype = buf.readUInt16BE(off + 1);
  const qclass = buf.readUInt16BE(off + 3);
  let edns: Query['edns'] = null;
  const skip = buf.readUInt16BE(6) + buf.readUInt16BE(8);
  const arcount = buf.readUInt16BE(10);
  let p = qEnd;
  for (let i = 0; i < skip; i++) {
    p = skipRR(buf, p);
    if (p < 0) return 'record section runs past the end';
  }
  for (let i = 0; i < arcount; i++) {
    const start = p;
    p = skipRR(buf, p);
    if (p < 0) return 'additional section runs past the end';
    if (buf[start] === 0 && buf.readUInt16BE(start + 1) === 41) {
      if (edns) return 'more than one OPT record';
      edns = {
        size: Math.max(512, buf.readUInt16BE(start + 3)),
        version: buf[start + 6]!,
        do: (buf[start + 7]! & 0x80) !== 0,
      };
    }
  }
  return {
    id: buf.readUInt16BE(0),
    rd: (b2 & 1) === 1,
    cd: (buf[3]! & 0x10) !== 0,
    qEnd,
    qtype,
    qclass,
    edns,
    key: (buf as Latin1).latin1Slice(HEADER, qEnd),
    variant: edns ? (edns.do ? 2 : 1) : 0,
  };
}

/**
 * Whether two messages carry the same question (name compared case-insensitively, type, class):
 * an upstream answer must answer what we asked, not just carry our ID.
 */
export function sameQuestion(a: Buffer, b: Buffer): boolean {
  if (a.length < HEADER || b.length < HEADER || a.readUInt16BE(4) !== 1 || b.readUInt16BE(4) !== 1)
    return false;
  let end = HEADER;
  while (end < a.length && a[end] !== 0) {
    if (a[end]! & 0xc0) return false;
    end += a[end]! + 1;
  }
  end++;
  if (end + 4 > a.length || end + 4 > b.length) return false;
  for (let i = HEADER; i < end + 4; i++) {
    let x = a[i]!;
    let y = b[i]!;
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** Opcode of a request that parseQuery accepted. */
export function opcodeOf(buf: Buffer): number {
  return (buf[2]! >> 3) & 0x0f;
}

/** The question name in presentation form, case kept, with trailing dot. */
export function questionName(buf: Buffer): string {
  const labels: string[] = [];
  let off = HEADER;
  for (;;) {
    const len = buf[off]!;
    if (len === 0) break;
    labels.push(buf.toString('latin1', off + 1, off + 1 + len));
    off += len + 1;
  }
  return labels.length === 0 ? '.' : `${labels.join('.')}.`;
}

/** A copy of `cached` carrying the request's ID, RD and CD bits: the whole work of a cache hit. */
export function patchAnswer(cached: Buffer, q: Query): Buffer {
  const out = Buffer.allocUnsafe(cached.length);
  cached.copy(out);
  return patchHeader(out, cached, q);
}

/** Writes the request's ID, RD and CD bits into `out`, a copy of `cached`'s header. */
export function patchHeader(out: Buffer, cached: Buffer, q: Query): Buffer {
  out.writeUInt16BE(q.id, 0);
  out[2] = (cached[2]! & 0xfe) | (q.rd ? 1 : 0);
  out[3] = (cached[3]! & 0xef) | (q.cd ? 0x10 : 0);
  return out;
}

/** Largest UDP answer the client takes (RFC 1035 512, or its EDNS size up to 4096). */
export function udpLimit(q: Query): number {
  return q.edns ? Math.min(q.edns.size, 4096) : 512;
}

/**
 * Cuts an encoded answer to `limit` octets: keeps the whole answer records that fit, drops
 * authority and additional records except a trailing OPT, and sets TC. The client retries over
 * TCP, which carries the full answer. Returns `msg` itself when it already fits.
 */
export function truncate(msg: Buffer, limit: number): Buffer {
  if (msg.length <= limit) return msg;
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  const ns = msg.readUInt16BE(8);
  const ar = msg.readUInt16BE(10);
  let off = HEADER;
  for (let i = 0; i < qd; i++) off = skipName(msg, off) + 4;
  const bounds: number[] = [off];
  for (let i = 0; i < an + ns + ar; i++) {
    off = skipRR(msg, off);
    if (off < 0) throw new Error('truncate: answer is not a well-formed message');
    bounds.push(off);
  }
  // An OPT record is encoded last when present.
  let opt: Buffer | null = null;
  if (ar > 0) {
    const last = bounds[an + ns + ar - 1]!;
    if (msg[last] === 0 && msg.readUInt16BE(last + 1) === 41) opt = msg.subarray(last, off);
  }
  const room = limit - (opt?.length ?? 0);
  let keep = 0;
  while (keep < an && bounds[keep + 1]! <= room) keep++;
  const head = msg.subarray(0, bounds[keep]!);
  const out = Buffer.concat(opt ? [head, opt] : [head]);
  out[2] = out[2]! | 0x02;
  out.writeUInt16BE(keep, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(opt ? 1 : 0, 10);
  return out;
}

/** Minimal reply carrying only header and question, for errors (REFUSED, SERVFAIL, BADVERS=16 rides in the OPT). */
export function errorReply(req: Buffer, q: Query, rcode: number, ra: boolean): Buffer {
  const out = Buffer.alloc(q.qEnd + (q.edns ? 11 : 0));
  req.copy(out, 0, 0, q.qEnd);
  out[2] = 0x80 | (req[2]! & 0x79); // QR, opcode, RD kept; AA/TC cleared
  out[3] = (ra ? 0x80 : 0) | (req[3]! & 0x10) | (rcode & 0x0f);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(q.edns ? 1 : 0, 10);
  if (q.edns) {
    const o = q.qEnd;
    out[o] = 0;
    out.writeUInt16BE(41, o + 1);
    out.writeUInt16BE(1232, o + 3);
    out.writeUInt32BE((((rcode >> 4) & 0xff) << 24) + (q.edns.do ? 0x8000 : 0), o + 5);
    out.writeUInt16BE(0, o + 9);
  }
  return out;
}

/** One resource record of an encoded message: its byte range, type and where its RDATA starts. */
export interface RRSpan {
  start: number;
  end: number;
  type: number;
  rdata: number;
}

/** The records of an encoded message after the question, in order; null when malformed. */
export function recordSpans(msg: Buffer): RRSpan[] | null {
  if (msg.length < HEADER) return null;
  let off = HEADER;
  for (let i = msg.readUInt16BE(4); i > 0; i--) {
    off = skipName(msg, off);
    if (off < 0 || off + 4 > msg.length) return null;
    off += 4;
  }
  const n = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  const out: RRSpan[] = [];
  for (let i = 0; i < n; i++) {
    const nameEnd = skipName(msg, off);
    const end = skipRR(msg, off);
    if (nameEnd < 0 || end < 0) return null;
    out.push({ start: off, end, type: msg.readUInt16BE(nameEnd), rdata: nameEnd + 10 });
    off = end;
  }
  return out;
}

/** Whether the name at `off`, through any chain of pointers, reads bytes in [lo, hi). */
function nameReads(msg: Buffer, off: number, lo: number, hi: number): boolean {
  for (let hops = 0; hops < 64 && off < msg.length;) {
    if (off >= lo && off < hi) return true;
    const len = msg[off]!;
    if (len === 0) return false;
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= msg.length) return false;
      off = msg.readUInt16BE(off) & 0x3fff;
      hops++;
    } else off += len + 1;
  }
  return true;
}

/**
 * Whether some name in the message outside [lo, hi) is compressed into [lo, hi), or a name
 * inside it points into it: only when neither holds may the records in that range be
 * reordered byte-wise without breaking a compression pointer.
 */
export function pointsInto(msg: Buffer, spans: RRSpan[], lo: number, hi: number): boolean {
  // A name starting inside the range moves with it; only where its first pointer leads counts.
  const fromInside = (off: number): boolean => {
    while (off < msg.length) {
      const len = msg[off]!;
      if (len === 0) return false;
      if ((len & 0xc0) === 0xc0) return nameReads(msg, msg.readUInt16BE(off) & 0x3fff, lo, hi);
      off += len + 1;
    }
    return true;
  };
  const names: number[] = [];
  for (const s of spans) {
    names.push(s.start);
    switch (s.type) {
      case 2:
      case 5:
      case 12:
        names.push(s.rdata);
        break;
      case 15:
        names.push(s.rdata + 2);
        break;
      case 33:
        names.push(s.rdata + 6);
        break;
      case 6: {
        names.push(s.rdata);
        const next = skipName(msg, s.rdata);
        if (next > 0) names.push(next);
        break;
      }
    }
  }
  return names.some((off) =>
    off >= lo && off < hi ? fromInside(off) : nameReads(msg, off, lo, hi),
  );
}
