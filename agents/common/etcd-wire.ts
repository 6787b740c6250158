/**
 * The etcd v3 wire format, pure: protobuf encoders/decoders for the few etcdserverpb messages
 * our own client (etcd-client.ts) uses, gRPC's length-prefixed message framing, and gRPC status
 * → typed error. Field numbers are those of etcd's rpc.proto and kv.proto (API v3.4).
 *
 * Integers that are int64 on the wire (revisions, lease IDs, TTLs) are decimal strings here, as
 * etcd3 gives them: lease IDs use all 63 bits. Keys and values are UTF-8 strings (every key and
 * value the agents write is JSON or a path); bytes that are not UTF-8 are not expected.
 */

// ---- protobuf primitives ----------------------------------------------------------------------

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

/** Wire-format writer: proto3 semantics (a zero/empty field is omitted unless `always`). */
export class ProtoWriter {
  private buf = Buffer.allocUnsafe(64);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** An unsigned varint; a bigint may use all 64 bits. */
  varint(v: number | bigint): this {
    this.ensure(10);
    if (typeof v === 'number' && v >= 0 && v <= 0x7fffffff) {
      while (v > 0x7f) {
        this.buf[this.len++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.len++] = v;
      return this;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    while (b > 0x7fn) {
      this.buf[this.len++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.buf[this.len++] = Number(b);
    return this;
  }

  private tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** An int64 field given as a decimal string, bigint or safe integer (negative → 10 bytes). */
  int64(field: number, v: string | number | bigint | undefined, always = false): this {
    if (v === undefined) return this;
    const b = BigInt(v);
    if (b === 0n && !always) return this;
    return this.tag(field, VARINT).varint(BigInt.asUintN(64, b));
  }

  bool(field: number, v: boolean | undefined): this {
    return v ? this.tag(field, VARINT).varint(1) : this;
  }

  /** An enum field (a small non-negative number). */
  enum(field: number, v: number): this {
    return v === 0 ? this : this.tag(field, VARINT).varint(v);
  }

  bytes(field: number, v: string | Uint8Array | undefined, always = false): this {
    if (v === undefined) return this;
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    if (b.length === 0 && !always) return this;
    this.tag(field, LEN).varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** An embedded message, written even when empty (a set oneof member must be present). */
  message(field: number, encoded: Uint8Array): this {
    return this.bytes(field, encoded, true);
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/** A protobuf message that cannot be decoded (truncated, bad wire type, overlong varint). */
export class ProtoDecodeError extends Error {
  override name = 'ProtoDecodeError';
}

/** Wire-format reader over one message; unknown fields are skipped by `skip`. */
export class ProtoReader {
  private pos = 0;
  /** Wire type of the field `next` returned: a field reader checks it matches. */
  private wire = -1;
  constructor(private readonly buf: Uint8Array) {}

  private expect(wire: number): void {
    if (this.wire !== wire)
      throw new ProtoDecodeError(`wire type ${this.wire} where ${wire} was expected`);
  }

  /** The next field's number and wire type, or undefined at the end of the message. */
  next(): { field: number; wire: number } | undefined {
    if (this.pos >= this.buf.length) return undefined;
    const key = this.varint();
    const field = Number(key >> 3n);
    if (field === 0) throw new ProtoDecodeError('field number 0');
    this.wire = Number(key & 7n);
    return { field, wire: this.wire };
  }

  varint(): bigint {
    // Fast path: up to 4 bytes fit a small integer exactly.
    let n = 0;
    for (let i = 0; i < 4; i++) {
      if (this.pos >= this.buf.length) throw new ProtoDecodeError('truncated varint');
      const byte = this.buf[this.pos++]!;
      n |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) return BigInt(n >>> 0);
    }
    let b = BigInt(n >>> 0);
    for (let shift = 28n; ; shift += 7n) {
      if (shift > 63n) throw new ProtoDecodeError('varint longer than 10 bytes');
      if (this.pos >= this.buf.length) throw new ProtoDecodeError('truncated varint');
      const byte = this.buf[this.pos++]!;
      b |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asUintN(64, b);
    }
  }

  /** A signed int64 as a decimal string. */
  int64(): string {
    this.expect(VARINT);
    return BigInt.asIntN(64, this.varint()).toString();
  }

  /** An unsigned uint64 as a decimal string. */
  uint64(): string {
    this.expect(VARINT);
    return this.varint().toString();
  }

  bool(): boolean {
    this.expect(VARINT);
    return this.varint() !== 0n;
  }

  /** A small enum or count (fits a JS number). */
  number(): number {
    this.expect(VARINT);
    return Number(BigInt.asIntN(64, this.varint()));
  }

  bytes(): Uint8Array {
    this.expect(LEN);
    const n = Number(this.varint());
    if (this.pos + n > this.buf.length)
      throw new ProtoDecodeError('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    const b = this.bytes();
    return Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8');
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === LEN) this.bytes();
    else if (wire === FIXED64 || wire === FIXED32) {
      this.pos += wire === FIXED64 ? 8 : 4;
      if (this.pos > this.buf.length) throw new ProtoDecodeError('truncated fixed field');
    } else throw new ProtoDecodeError(`unsupported wire type ${wire}`);
  }
}

/** Decodes a message by calling `field` for each field; it returns false for unknown ones. */
function decode<T>(
  buf: Uint8Array,
  init: T,
  field: (r: ProtoReader, n: number, out: T) => boolean,
): T {
  const r = new ProtoReader(buf);
  for (let f = r.next(); f; f = r.next()) {
    // A known field with the wrong wire type throws in its reader (ProtoReader.expect).
    if (!field(r, f.field, init)) r.skip(f.wire);
  }
  return init;
}

/** The range end that makes a Range/Watch/DeleteRange cover every key starting with `prefix`. */
export function prefixEnd(prefix: string | Uint8Array): Buffer {
  const b = Buffer.from(typeof prefix === 'string' ? Buffer.from(prefix, 'utf8') : prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]!++;
      return b.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all 0xff (or empty): every key from here on
}

// ---- messages ---------------------------------------------------------------------------------

export interface ResponseHeader {
  clusterId: string;
  memberId: string;
  revision: string;
  raftTerm: string;
}

export function decodeHeader(buf: Uint8Array): ResponseHeader {
  return decode(buf, { clusterId: '0', memberId: '0', revision: '0', raftTerm: '0' }, (r, n, o) => {
    if (n === 1) o.clusterId = r.uint64();
    else if (n === 2) o.memberId = r.uint64();
    else if (n === 3) o.revision = r.int64();
    else if (n === 4) o.raftTerm = r.uint64();
    else return false;
    return true;
  });
}

/** mvccpb.KeyValue. */
export interface KeyValue {
  key: string;
  value: string;
  createRevision: string;
  modRevision: string;
  version: string;
  /** The etcd lease ID attached to the key, "0" for none. */
  lease: string;
}

export function encodeKeyValue(kv: Partial<KeyValue> & { key: string }): Buffer {
  return new ProtoWriter()
    .bytes(1, kv.key)
    .int64(2, kv.createRevision)
    .int64(3, kv.modRevision)
    .int64(4, kv.version)
    .bytes(5, kv.value)
    .int64(6, kv.lease)
    .finish();
}

export function decodeKeyValue(buf: Uint8Array): KeyValue {
  const kv: KeyValue = {
    key: '',
    value: '',
    createRevision: '0',
    modRevision: '0',
    version: '0',
    lease: '0',
  };
  return decode(buf, kv, (r, n, o) => {
    if (n === 1) o.key = r.string();
    else if (n === 2) o.createRevision = r.int64();
    else if (n === 3) o.modRevision = r.int64();
    else if (n === 4) o.version = r.int64();
    else if (n === 5) o.value = r.string();
    else if (n === 6) o.lease = r.int64();
    else return false;
    return true;
  });
}

export interface RangeRequest {
  key: string | Uint8Array;
  rangeEnd?: string | Uint8Array | undefined;
  limit?: number | undefined;
  revision?: string | undefined;
  serializable?: boolean | undefined;
  keysOnly?: boolean | undefined;
  countOnly?: boolean | undefined;
}

export function encodeRangeRequest(q: RangeRequest): Buffer {
  return new ProtoWriter()
    .bytes(1, q.key)
    .bytes(2, q.rangeEnd)
    .int64(3, q.limit)
    .int64(4, q.revision)
    .bool(7, q.serializable)
    .bool(8, q.keysOnly)
    .bool(9, q.countOnly)
    .finish();
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: string;
}

const emptyHeader = (): ResponseHeader => decodeHeader(new Uint8Array(0));

export function decodeRangeResponse(buf: Uint8Array): RangeResponse {
  return decode(
    buf,
    { header: emptyHeader(), kvs: [] as KeyValue[], more: false as boolean, count: '0' },
    (r, n, o) => {
      if (n === 1) o.header = decodeHeader(r.bytes());
      else if (n === 2) o.kvs.push(decodeKeyValue(r.bytes()));
      else if (n === 3) o.more = r.bool();
      else if (n === 4) o.count = r.int64();
      else return false;
      return true;
    },
  );
}

export interface PutRequest {
  key: string | Uint8Array;
  value: string | Uint8Array;
  lease?: string | undefined;
  prevKv?: boolean | undefined;
}

export function encodePutRequest(q: PutRequest): Buffer {
  return new ProtoWriter()
    .bytes(1, q.key)
    .bytes(2, q.value)
    .int64(3, q.lease)
    .bool(4, q.prevKv)
    .finish();
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv: KeyValue | undefined;
}

export function decodePutResponse(buf: Uint8Array): PutResponse {
  return decode(buf, { header: emptyHeader(), prevKv: undefined } as PutResponse, (r, n, o) => {
    if (n === 1) o.header = decodeHeader(r.bytes());
    else if (n === 2) o.prevKv = decodeKeyValue(r.bytes());
    else return false;
    return true;
  });
}

export interface DeleteRangeRequest {
  key: string | Uint8Array;
  rangeEnd?: string | Uint8Array | undefined;
  prevKv?: boolean | undefined;
}

export function encodeDeleteRangeRequest(q: DeleteRangeRequest): Buffer {
  return new ProtoWriter().bytes(1, q.key).bytes(2, q.rangeEnd).bool(3, q.prevKv).finish();
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: string;
  prevKvs: KeyValue[];
}

export function decodeDeleteRangeResponse(buf: Uint8Array): DeleteRangeResponse {
  return decode(
    buf,
    { header: emptyHeader(), deleted: '0', prevKvs: [] as KeyValue[] },
    (r, n, o) => {
      if (n === 1) o.header = decodeHeader(r.bytes());
      else if (n === 2) o.deleted = r.int64();
      else if (n === 3) o.prevKvs.push(decodeKeyValue(r.bytes()));
      else return false;
      return true;
    },
  );
}

/** Compare targets and results as etcd3 (and etcdctl txn) spell them. */
export type CompareTarget = 'Version' | 'Create' | 'Mod' | 'Value' | 'Lease';
export type CompareResult = '==' | '>' | '<' | '!=';

const TARGETS: Record<CompareTarget, { n: number; field: number }> = {
  Version: { n: 0, field: 4 },
  Create: { n: 1, field: 5 },
  Mod: { n: 2, field: 6 },
  Value: { n: 3, field: 7 },
  Lease: { n: 4, field: 8 },
};
const RESULTS: Record<CompareResult, number> = { '==': 0, '>': 1, '<': 2, '!=': 3 };

export interface Compare {
  key: string | Uint8Array;
  target: CompareTarget;
  result: CompareResult;
  /** A revision, version or lease ID (decimal), or the value for 'Value'. */
  value: string | number;
}

export function encodeCompare(c: Compare): Buffer {
  const t = TARGETS[c.target];
  const w = new ProtoWriter().enum(1, RESULTS[c.result]).enum(2, t.n).bytes(3, c.key);
  // The oneof member is always written, even when zero: its presence selects the target.
  if (c.target === 'Value') w.bytes(t.field, String(c.value), true);
  else w.int64(t.field, c.value, true);
  return w.finish();
}

/** One operation of a transaction branch. */
export type RequestOp =
  { range: RangeRequest } | { put: PutRequest } | { deleteRange: DeleteRangeRequest };

export function encodeRequestOp(op: RequestOp): Buffer {
  const w = new ProtoWriter();
  if ('range' in op) w.message(1, encodeRangeRequest(op.range));
  else if ('put' in op) w.message(2, encodePutRequest(op.put));
  else w.message(3, encodeDeleteRangeRequest(op.deleteRange));
  return w.finish();
}

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure?: RequestOp[] | undefined;
}

export function encodeTxnRequest(q: TxnRequest): Buffer {
  const w = new ProtoWriter();
  for (const c of q.compare) w.message(1, encodeCompare(c));
  for (const op of q.success) w.message(2, encodeRequestOp(op));
  for (const op of q.failure ?? []) w.message(3, encodeRequestOp(op));
  return w.finish();
}

export type ResponseOp =
  | { range: RangeResponse }
  | { put: PutResponse }
  | { deleteRange: DeleteRangeResponse }
  | { txn: TxnResponse };

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

function decodeResponseOp(buf: Uint8Array): ResponseOp {
  let op: ResponseOp | undefined;
  decode(buf, null, (r, n) => {
    if (n === 1) op = { range: decodeRangeResponse(r.bytes()) };
    else if (n === 2) op = { put: decodePutResponse(r.bytes()) };
    else if (n === 3) op = { deleteRange: decodeDeleteRangeResponse(r.bytes()) };
    else if (n === 4) op = { txn: decodeTxnResponse(r.bytes()) };
    else return false;
    return true;
  });
  if (!op) throw new ProtoDecodeError('ResponseOp without a response');
  return op;
}

export function decodeTxnResponse(buf: Uint8Array): TxnResponse {
  return decode(
    buf,
    { header: emptyHeader(), succeeded: false as boolean, responses: [] as ResponseOp[] },
    (r, n, o) => {
      if (n === 1) o.header = decodeHeader(r.bytes());
      else if (n === 2) o.succeeded = r.bool();
      else if (n === 3) o.responses.push(decodeResponseOp(r.bytes()));
      else return false;
      return true;
    },
  );
}

export function encodeLeaseGrantRequest(q: { ttl: number; id?: string | undefined }): Buffer {
  return new ProtoWriter().int64(1, q.ttl).int64(2, q.id).finish();
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  id: string;
  ttl: string;
  error: string;
}

export function decodeLeaseGrantResponse(buf: Uint8Array): LeaseGrantResponse {
  return decode(buf, { header: emptyHeader(), id: '0', ttl: '0', error: '' }, (r, n, o) => {
    if (n === 1) o.header = decodeHeader(r.bytes());
    else if (n === 2) o.id = r.int64();
    else if (n === 3) o.ttl = r.int64();
    else if (n === 4) o.error = r.string();
    else return false;
    return true;
  });
}

/** LeaseRevokeRequest and LeaseKeepAliveRequest: just the lease ID (field 1). */
export function encodeLeaseIdRequest(id: string): Buffer {
  return new ProtoWriter().int64(1, id).finish();
}

export function encodeLeaseTimeToLiveRequest(q: {
  id: string;
  keys?: boolean | undefined;
}): Buffer {
  return new ProtoWriter().int64(1, q.id).bool(2, q.keys).finish();
}

/** LeaseKeepAliveResponse, and LeaseTimeToLiveResponse (fields 4 and 5 only in the latter). */
export interface LeaseTtlResponse {
  header: ResponseHeader;
  id: string;
  /** Remaining seconds; 0 from a keep-alive and -1 from time-to-live mean the lease is gone. */
  ttl: string;
  grantedTtl: string;
  keys: string[];
}

export function decodeLeaseTtlResponse(buf: Uint8Array): LeaseTtlResponse {
  return decode(
    buf,
    { header: emptyHeader(), id: '0', ttl: '0', grantedTtl: '0', keys: [] as string[] },
    (r, n, o) => {
      if (n === 1) o.header = decodeHeader(r.bytes());
      else if (n === 2) o.id = r.int64();
      else if (n === 3) o.ttl = r.int64();
      else if (n === 4) o.grantedTtl = r.int64();
      else if (n === 5) o.keys.push(r.string());
      else return false;
      return true;
    },
  );
}

/** Any response whose only field we read is the header (LeaseRevoke). */
export function decodeHeaderOnly(buf: Uint8Array): { header: ResponseHeader } {
  return decode(buf, { header: emptyHeader() }, (r, n, o) => {
    if (n !== 1) return false;
    o.header = decodeHeader(r.bytes());
    return true;
  });
}

export interface WatchCreate {
  key: string | Uint8Array;
  rangeEnd?: string | Uint8Array | undefined;
  startRevision?: string | undefined;
  progressNotify?: boolean | undefined;
  prevKv?: boolean | undefined;
}

export type WatchRequest = { create: WatchCreate } | { cancel: string } | { progress: true };

export function encodeWatchRequest(q: WatchRequest): Buffer {
  const w = new ProtoWriter();
  if ('create' in q) {
    const c = q.create;
    w.message(
      1,
      new ProtoWriter()
        .bytes(1, c.key)
        .bytes(2, c.rangeEnd)
        .int64(3, c.startRevision)
        .bool(4, c.progressNotify)
        .bool(6, c.prevKv)
        .finish(),
    );
  } else if ('cancel' in q) w.message(2, new ProtoWriter().int64(1, q.cancel, true).finish());
  else w.message(3, new Uint8Array(0));
  return w.finish();
}

export interface WatchEvent {
  type: 'Put' | 'Delete';
  kv: KeyValue;
  prevKv: KeyValue | undefined;
}

export interface WatchResponse {
  header: ResponseHeader;
  watchId: string;
  created: boolean;
  canceled: boolean;
  /** Set on a cancel because the start revision was compacted: the oldest revision left. */
  compactRevision: string;
  cancelReason: string;
  fragment: boolean;
  events: WatchEvent[];
}

function decodeEvent(buf: Uint8Array): WatchEvent {
  const ev: WatchEvent = { type: 'Put', kv: decodeKeyValue(new Uint8Array(0)), prevKv: undefined };
  return decode(buf, ev, (r, n, o) => {
    if (n === 1) o.type = r.number() === 1 ? 'Delete' : 'Put';
    else if (n === 2) o.kv = decodeKeyValue(r.bytes());
    else if (n === 3) o.prevKv = decodeKeyValue(r.bytes());
    else return false;
    return true;
  });
}

export function decodeWatchResponse(buf: Uint8Array): WatchResponse {
  const res: WatchResponse = {
    header: emptyHeader(),
    watchId: '0',
    created: false,
    canceled: false,
    compactRevision: '0',
    cancelReason: '',
    fragment: false,
    events: [],
  };
  return decode(buf, res, (r, n, o) => {
    if (n === 1) o.header = decodeHeader(r.bytes());
    else if (n === 2) o.watchId = r.int64();
    else if (n === 3) o.created = r.bool();
    else if (n === 4) o.canceled = r.bool();
    else if (n === 5) o.compactRevision = r.int64();
    else if (n === 6) o.cancelReason = r.string();
    else if (n === 7) o.fragment = r.bool();
    else if (n === 11) o.events.push(decodeEvent(r.bytes()));
    else return false;
    return true;
  });
}

export interface StatusResponse {
  header: ResponseHeader;
  version: string;
  leader: string;
  raftTerm: string;
}

export function decodeStatusResponse(buf: Uint8Array): StatusResponse {
  return decode(
    buf,
    { header: emptyHeader(), version: '', leader: '0', raftTerm: '0' },
    (r, n, o) => {
      if (n === 1) o.header = decodeHeader(r.bytes());
      else if (n === 2) o.version = r.string();
      else if (n === 4) o.leader = r.uint64();
      else if (n === 6) o.raftTerm = r.uint64();
      else return false;
      return true;
    },
  );
}

// ---- gRPC framing -----------------------------------------------------------------------------

/** Largest message we accept from etcd (its own default request limit is 1.5 MiB; lists are larger). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** One gRPC message: a 0 byte (not compressed), a 4-byte big-endian length, the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Splits a gRPC response body, arriving in arbitrary chunks, into whole messages. */
export class GrpcFrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Returns the messages completed by `chunk`; throws ProtoDecodeError on a bad frame. */
  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.pendingBytes < 5) break;
      if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending)];
      const buf = this.pending[0]!;
      if (buf[0] !== 0)
        throw new ProtoDecodeError(
          buf[0] === 1
            ? 'compressed gRPC message, but no compression was offered'
            : `bad gRPC frame flag ${buf[0]}`,
        );
      const n = buf.readUInt32BE(1);
      if (n > MAX_MESSAGE_BYTES)
        throw new ProtoDecodeError(`gRPC message of ${n} bytes is over ${MAX_MESSAGE_BYTES}`);
      if (buf.length < 5 + n) break;
      out.push(buf.subarray(5, 5 + n));
      const rest = buf.subarray(5 + n);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
    }
    return out;
  }

  /** Bytes of an incomplete message still held (non-zero at end of stream = truncated). */
  get buffered(): number {
    return this.pendingBytes;
  }
}

// ---- gRPC status ------------------------------------------------------------------------------

/** gRPC status codes by number (grpc/doc/statuscodes.md). */
export const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export const GrpcCode = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  OUT_OF_RANGE: 11,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * A failed etcd call: its gRPC status and etcd's message (e.g. 14 "etcdserver: no leader",
 * 7 "etcdserver: permission denied"). `name` follows etcd3's error names for the codes agents
 * test for, so code written against either client reads the same.
 */
export class EtcdError extends Error {
  override name: string;
  constructor(
    readonly code: number,
    readonly details: string,
    /** The endpoint that answered (or failed), for logs. */
    readonly endpoint?: string,
  ) {
    super(details || GRPC_CODES[code] || `gRPC status ${code}`);
    this.name =
      code === GrpcCode.PERMISSION_DENIED
        ? 'EtcdPermissionDeniedError'
        : code === GrpcCode.DEADLINE_EXCEEDED
          ? 'EtcdDeadlineExceededError'
          : code === GrpcCode.UNAVAILABLE
            ? 'EtcdUnavailableError'
            : 'EtcdError';
  }

  get status(): string {
    return GRPC_CODES[this.code] ?? String(this.code);
  }
}

/** etcd's answer from a member that has no leader (with `hasleader: true` set). */
export function isNoLeader(err: unknown): boolean {
  return err instanceof EtcdError && /etcdserver: no leader/.test(err.details);
}

/** The error for a gRPC status from response headers or trailers (undefined for OK). */
export function statusError(
  status: string | undefined,
  message: string | undefined,
  endpoint?: string,
): EtcdError | undefined {
  const code = status === undefined ? GrpcCode.UNKNOWN : Number(status);
  if (code === 0) return undefined;
  let text = message ?? (status === undefined ? 'no grpc-status in the response' : '');
  try {
    text = decodeURIComponent(text);
  } catch {
    // Not percent-encoded after all; keep it as sent.
  }
  return new EtcdError(Number.isInteger(code) ? code : GrpcCode.UNKNOWN, text, endpoint);
}

/** A gRPC timeout header value for `ms` (at most 8 digits, as the spec requires). */
export function grpcTimeout(ms: number): string {
  const v = Math.max(1, Math.ceil(ms));
  return v < 1e8 ? `${v}m` : `${Math.ceil(v / 1000)}S`;
}
