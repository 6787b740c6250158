/**
 * Fluentd Forward protocol v1 codec (pure: bytes in, frames out). The decoder accepts a TCP
 * byte stream cut anywhere (split reads) and yields whole frames: Message, Forward,
 * PackedForward and CompressedPackedForward events, acks, handshake messages (HELO/PING/PONG)
 * and heartbeats. Integer and EventTime (msgpack ext 0) times both decode to `EventTime`.
 * A malformed frame throws `FrameError`; the caller closes that connection.
 * Spec: https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1
 */
import { isUtf8 } from 'node:buffer';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Packr, Unpackr, addExtension } from 'msgpackr';

/** Event time with nanoseconds (msgpack ext type 0: uint32 seconds, uint32 nanoseconds, big-endian). */
export class EventTime {
  constructor(
    readonly sec: number,
    readonly nsec: number,
  ) {}

  static fromMillis(ms: number): EventTime {
    const sec = Math.floor(ms / 1000);
    return new EventTime(sec, Math.round((ms - sec * 1000) * 1e6));
  }

  toMillis(): number {
    return this.sec * 1000 + this.nsec / 1e6;
  }

  /** RFC 3339 with nanoseconds, as `docker logs --timestamps` prints. */
  toISOString(): string {
    const base = new Date(this.sec * 1000).toISOString().slice(0, 19);
    return `${base}.${String(this.nsec).padStart(9, '0')}Z`;
  }

  compare(o: EventTime): number {
    return this.sec - o.sec || this.nsec - o.nsec;
  }
}

function unpackEventTime(b: Buffer): EventTime {
  if (b.length !== 8) throw new FrameError(`EventTime must be 8 bytes, got ${b.length}`);
  return new EventTime(b.readUInt32BE(0), b.readUInt32BE(4));
}
// msgpackr refuses type 0 for a Class extension (it tests `!type`), but only reads the type when
// packing: register under a placeholder, then switch the shared object to 0.
const eventTimeExt = {
  Class: EventTime,
  type: 0x7f,
  pack(t: EventTime) {
    const b = Buffer.allocUnsafe(8);
    b.writeUInt32BE(t.sec >>> 0, 0);
    b.writeUInt32BE(t.nsec >>> 0, 4);
    return b;
  },
  unpack: unpackEventTime,
};
addExtension(eventTimeExt);
eventTimeExt.type = 0;
addExtension({ type: 0, unpack: unpackEventTime });

/** A frame that breaks the protocol; the connection it came from cannot be trusted further. */
export class FrameError extends Error {
  override name = 'FrameError';
}

export type LogRecord = Record<string, unknown>;

export interface Entry {
  time: EventTime;
  record: LogRecord;
}

export interface ForwardOptions {
  chunk?: string;
  size?: number;
  compressed?: string;
  [key: string]: unknown;
}

export type EventMode = 'message' | 'forward' | 'packed' | 'compressed';

export type Frame =
  | {
      kind: 'events';
      mode: EventMode;
      tag: string;
      /** Decoded entries for message/forward mode; for packed modes decode `blob` with `decodeEntries`. */
      entries?: Entry[];
      /** Packed modes: the (decompressed) concatenated msgpack `[time, record]` entries. */
      blob?: Buffer;
      option: ForwardOptions;
    }
  | { kind: 'ack'; chunk: string }
  | { kind: 'handshake'; type: 'HELO' | 'PING' | 'PONG'; body: unknown[] }
  | { kind: 'heartbeat' };

// useRecords:false keeps maps as plain msgpack maps: Docker's driver cannot read msgpackr records.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

// Per type byte: how many length bytes follow (str/bin/ext/array/map 8/16/32), or the fixed body size.
const LEN_BYTES = new Int8Array(256);
const FIXED = new Int8Array(256);
for (const [b, n] of [
  [0xc4, 1],
  [0xd9, 1],
  [0xc5, 2],
  [0xda, 2],
  [0xc6, 4],
  [0xdb, 4],
  [0xc7, 1],
  [0xc8, 2],
  [0xc9, 4],
  [0xdc, 2],
  [0xdd, 4],
  [0xde, 2],
  [0xdf, 4],
] as const)
  LEN_BYTES[b] = n;
for (const [b, n] of [
  [0xca, 4],
  [0xce, 4],
  [0xd2, 4],
  [0xcb, 8],
  [0xcf, 8],
  [0xd3, 8],
  [0xcc, 1],
  [0xd0, 1],
  [0xcd, 2],
  [0xd1, 2],
  [0xd4, 2],
  [0xd5, 3],
  [0xd6, 5],
  [0xd7, 9],
  [0xd8, 17],
] as const)
  FIXED[b] = n;

/** Where a scan stopped: `pending` values still to read from `pos` (0 = the value ends at pos). */
export interface ScanState {
  pos: number;
  pending: number;
}

/**
 * Skips msgpack values without decoding them: starting at `s.pos` with `s.pending` values to
 * read, advances as far as `end` allows. Returns the state to resume from when more bytes
 * arrive (pending > 0) or the end of the value (pending 0). Resuming makes a frame split over
 * many reads cost O(bytes), not O(bytes²). Throws FrameError on the never-used byte 0xc1.
 */
export function scan(buf: Uint8Array, s: ScanState, end = buf.length): ScanState {
  let { pos, pending } = s;
  const be = (at: number, n: number) => {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + buf[at + i]!;
    return v;
  };
  while (pending > 0) {
    const item = pos;
    if (pos >= end) return { pos: item, pending };
    const b = buf[pos]!;
    let children = 0;
    let header = 1;
    let body = 0;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      // fixint, nil, bool
    } else if (b >= 0x80 && b <= 0x8f) {
      children = (b & 0x0f) * 2;
    } else if (b >= 0x90 && b <= 0x9f) {
      children = b & 0x0f;
    } else if (b >= 0xa0 && b <= 0xbf) {
      body = b & 0x1f;
    } else {
      const lb = LEN_BYTES[b]!;
      if (lb > 0) {
        if (pos + 1 + lb > end) return { pos: item, pending };
        const n = be(pos + 1, lb);
        header = 1 + lb;
        if (b === 0xdc || b === 0xdd) children = n;
        else if (b === 0xde || b === 0xdf) children = n * 2;
        else if (b === 0xc7 || b === 0xc8 || b === 0xc9)
          body = n + 1; // + ext type byte
        else body = n;
      } else if (FIXED[b]! > 0) {
        body = FIXED[b]!;
      } else {
        throw new FrameError(`invalid msgpack byte 0x${b.toString(16)}`);
      }
    }
    if (pos + header + body > end) return { pos: item, pending };
    pos += header + body;
    pending += children - 1;
  }
  return { pos, pending: 0 };
}

/** End offset of the msgpack value starting at `pos`, or -1 if `buf` holds only part of it. */
export function valueEnd(buf: Uint8Array, pos: number, end = buf.length): number {
  const s = scan(buf, { pos, pending: 1 }, end);
  return s.pending === 0 ? s.pos : -1;
}

/** Start offsets of the items of the msgpack array at `pos` (whole value in `buf`), plus its end. */
function arrayItems(buf: Buffer, pos: number): { items: number[]; end: number } | undefined {
  const b = buf[pos]!;
  let n: number;
  let p: number;
  if (b >= 0x90 && b <= 0x9f) {
    n = b & 0x0f;
    p = pos + 1;
  } else if (b === 0xdc) {
    n = buf.readUInt16BE(pos + 1);
    p = pos + 3;
  } else if (b === 0xdd) {
    n = buf.readUInt32BE(pos + 1);
    p = pos + 5;
  } else return undefined;
  const items: number[] = [];
  for (let i = 0; i < n; i++) {
    items.push(p);
    p = valueEnd(buf, p);
  }
  return { items, end: p };
}

/** Raw bytes of a msgpack bin or str value at `pos` (no copy), or undefined if it is neither. */
function rawBytes(buf: Buffer, pos: number): Buffer | undefined {
  const b = buf[pos]!;
  if (b >= 0xa0 && b <= 0xbf) return buf.subarray(pos + 1, pos + 1 + (b & 0x1f));
  switch (b) {
    case 0xc4:
    case 0xd9:
      return buf.subarray(pos + 2, pos + 2 + buf[pos + 1]!);
    case 0xc5:
    case 0xda:
      return buf.subarray(pos + 3, pos + 3 + buf.readUInt16BE(pos + 1));
    case 0xc6:
    case 0xdb:
      return buf.subarray(pos + 5, pos + 5 + buf.readUInt32BE(pos + 1));
    default:
      return undefined;
  }
}

function decodeValue(buf: Buffer): unknown {
  try {
    return unpackr.unpack(buf);
  } catch (err) {
    if (err instanceof FrameError) throw err;
    throw new FrameError(`undecodable msgpack: ${(err as Error).message}`);
  }
}

/** Accepts integer seconds, float seconds (some clients) and EventTime. */
export function toEventTime(v: unknown): EventTime {
  if (v instanceof EventTime) return v;
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) {
    const sec = Math.floor(v);
    return new EventTime(sec, Math.round((v - sec) * 1e9));
  }
  throw new FrameError(`event time must be an integer or EventTime, got ${typeof v}`);
}

function toEntry(v: unknown): Entry {
  if (!Array.isArray(v) || v.length < 2) throw new FrameError('entry must be [time, record]');
  const record = v[1] as unknown;
  if (record === null || typeof record !== 'object' || Array.isArray(record))
    throw new FrameError('record must be a map');
  return { time: toEventTime(v[0]), record: record as LogRecord };
}

/** Decodes a PackedForward blob (concatenated `[time, record]` entries). */
export function decodeEntries(blob: Buffer): Entry[] {
  const out: Entry[] = [];
  let pos = 0;
  while (pos < blob.length) {
    const end = valueEnd(blob, pos);
    if (end < 0) throw new FrameError('truncated entry in packed events');
    out.push(toEntry(decodeValue(blob.subarray(pos, end))));
    pos = end;
  }
  return out;
}

/** Number of entries in a PackedForward blob and their byte offsets (no decoding). */
export function entryOffsets(blob: Buffer): number[] {
  const offs: number[] = [];
  let pos = 0;
  while (pos < blob.length) {
    offs.push(pos);
    const end = valueEnd(blob, pos);
    if (end < 0) throw new FrameError('truncated entry in packed events');
    pos = end;
  }
  return offs;
}

function toOptions(v: unknown): ForwardOptions {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new FrameError('option must be a map');
  const o = v as ForwardOptions;
  if (o.chunk !== undefined && typeof o.chunk !== 'string')
    throw new FrameError('option "chunk" must be a string');
  return o;
}

/**
 * Docker's own Message frame, read in place: `[tag, EventTime, {container_id, container_name,
 * source, log, service?}, option?]`, every record value a string, `log` kept as its UTF-8 bytes
 * (a view of the frame, not decoded). What the forward input stores per Docker line without a
 * generic decode (inputs/forward-core.ts `preparePlain`).
 */
export interface PlainMessage {
  tag: string;
  time: EventTime;
  container_id: string;
  container_name: string;
  source: string;
  service?: string;
  log: Buffer;
  chunk?: string;
}

const PLAIN_KEYS = ['container_id', 'container_name', 'source', 'log', 'service'] as const;
const PLAIN_KEY_BYTES = PLAIN_KEYS.map((k) => Buffer.from(k));

/** Start and end of the str at p (fixstr, str8/16/32), or undefined for any other value. */
function strAt(b: Buffer, p: number, end: number): [number, number] | undefined {
  const t = b[p]!;
  let s: number;
  let n: number;
  if (t >= 0xa0 && t <= 0xbf) [s, n] = [p + 1, t & 0x1f];
  else if (t === 0xd9 && p + 2 <= end) [s, n] = [p + 2, b[p + 1]!];
  else if (t === 0xda && p + 3 <= end) [s, n] = [p + 3, b.readUInt16BE(p + 1)];
  else if (t === 0xdb && p + 5 <= end) [s, n] = [p + 5, b.readUInt32BE(p + 1)];
  else return undefined;
  return s + n <= end ? [s, s + n] : undefined;
}

/** Entries and header size of the map at p (fixmap, map16/32), or undefined for any other value. */
function mapAt(b: Buffer, p: number, end: number): [number, number] | undefined {
  const t = b[p]!;
  if (t >= 0x80 && t <= 0x8f) return [t & 0x0f, 1];
  if (t === 0xde && p + 3 <= end) return [b.readUInt16BE(p + 1), 3];
  if (t === 0xdf && p + 5 <= end) return [b.readUInt32BE(p + 1), 5];
  return undefined;
}

/** The ASCII string b[s, e), or undefined if a byte is not ASCII. */
function ascii(b: Buffer, s: number, e: number): string | undefined {
  for (let i = s; i < e; i++) if (b[i]! > 0x7f) return undefined;
  return b.toString('latin1', s, e);
}

/**
 * The frame b[start, end) as a PlainMessage, or undefined when it is anything else (then
 * `decodeFrame` is the way): what it returns is what `decodeFrame` gives for the same bytes.
 * Not taken: integer or float times, a record with any other key, a repeated key or a value
 * that is not a string, a tag, name, id, source, service or chunk that is not ASCII, a log
 * that is not valid UTF-8, a HELO/PING/PONG tag.
 */
export function plainMessage(b: Buffer, start: number, end: number): PlainMessage | undefined {
  const head = b[start];
  if (head !== 0x93 && head !== 0x94) return undefined;
  const tagAt = strAt(b, start + 1, end);
  if (!tagAt) return undefined;
  const tag = ascii(b, tagAt[0], tagAt[1]);
  if (tag === undefined || tag === 'HELO' || tag === 'PING' || tag === 'PONG') return undefined;
  let p = tagAt[1];
  if (b[p] === 0xd7 && b[p + 1] === 0) p += 2;
  else if (b[p] === 0xc7 && b[p + 1] === 8 && b[p + 2] === 0) p += 3;
  else return undefined;
  if (p + 8 > end) return undefined;
  const time = new EventTime(b.readUInt32BE(p), b.readUInt32BE(p + 4));
  p += 8;
  const rec = mapAt(b, p, end);
  if (!rec || rec[0] < 4 || rec[0] > 5) return undefined;
  p += rec[1];
  const vals: ([number, number] | undefined)[] = [
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
  ];
  for (let i = 0; i < rec[0]; i++) {
    const k = strAt(b, p, end);
    if (!k) return undefined;
    const kl = k[1] - k[0];
    let which = -1;
    for (let j = 0; j < PLAIN_KEYS.length; j++) {
      const kb = PLAIN_KEY_BYTES[j]!;
      if (kb.length === kl && b.compare(kb, 0, kl, k[0], k[1]) === 0) which = j;
    }
    if (which < 0 || vals[which]) return undefined;
    const v = strAt(b, k[1], end);
    if (!v) return undefined;
    vals[which] = v;
    p = v[1];
  }
  const [id, name, source, log, service] = vals;
  if (!id || !name || !source || !log) return undefined;
  const msg: PlainMessage = {
    tag,
    time,
    container_id: ascii(b, id[0], id[1])!,
    container_name: ascii(b, name[0], name[1])!,
    source: ascii(b, source[0], source[1])!,
    log: b.subarray(log[0], log[1]),
  };
  if (msg.container_id === undefined || msg.container_name === undefined) return undefined;
  if (msg.source === undefined || !isUtf8(msg.log)) return undefined;
  if (service) {
    const sv = ascii(b, service[0], service[1]);
    if (sv === undefined) return undefined;
    msg.service = sv;
  }
  if (head === 0x93) return p === end ? msg : undefined;
  // option: nil, or a map whose "chunk" (if any) is a str
  if (b[p] === 0xc0) return p + 1 === end ? msg : undefined;
  const opt = mapAt(b, p, end);
  if (!opt) return undefined;
  p += opt[1];
  for (let i = 0; i < opt[0]; i++) {
    const k = strAt(b, p, end);
    if (!k) return undefined;
    p = k[1];
    if (k[1] - k[0] === 5 && b.toString('latin1', k[0], k[1]) === 'chunk') {
      const v = strAt(b, p, end);
      if (!v || msg.chunk !== undefined) return undefined;
      const c = ascii(b, v[0], v[1]);
      if (c === undefined) return undefined;
      msg.chunk = c;
      p = v[1];
    } else {
      p = valueEnd(b, p, end);
      if (p < 0) return undefined;
    }
  }
  return p === end ? msg : undefined;
}

/** Decodes one whole frame (the bytes of exactly one top-level msgpack value). */
export function decodeFrame(frame: Buffer): Frame {
  const b = frame[0]!;
  if (b === 0xc0) return { kind: 'heartbeat' };
  const isMap = (b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf;
  if (isMap) {
    const v = decodeValue(frame) as Record<string, unknown>;
    if (typeof v.ack === 'string') return { kind: 'ack', chunk: v.ack };
    throw new FrameError('unexpected map frame (neither event nor ack)');
  }
  const arr = arrayItems(frame, 0);
  if (!arr) throw new FrameError(`frame must be an array, got byte 0x${b.toString(16)}`);
  const { items } = arr;
  if (items.length < 2 || items.length > 6)
    throw new FrameError(`frame must have 2 to 6 items, got ${items.length}`);
  const tagEnd = items[1]!;
  const tag = decodeValue(frame.subarray(items[0]!, tagEnd));
  if (typeof tag !== 'string') throw new FrameError('tag must be a string');
  if (tag === 'HELO' || tag === 'PING' || tag === 'PONG') {
    const body = decodeValue(frame) as unknown[];
    return { kind: 'handshake', type: tag, body: body.slice(1) };
  }
  const secondEnd = items[2] ?? frame.length;
  const second = frame.subarray(items[1]!, secondEnd);
  const optionAt = (i: number) =>
    items[i] === undefined
      ? {}
      : toOptions(decodeValue(frame.subarray(items[i]!, items[i + 1] ?? frame.length)));
  const raw = rawBytes(second, 0);
  if (raw) {
    if (items.length > 3) throw new FrameError('packed frame must be [tag, entries, option?]');
    const option = optionAt(2);
    if (
      option.compressed !== undefined &&
      option.compressed !== 'gzip' &&
      option.compressed !== 'text'
    )
      throw new FrameError(`unsupported compression "${String(option.compressed)}"`);
    if (option.compressed === 'gzip') {
      let blob: Buffer;
      try {
        blob = gunzipSync(raw);
      } catch (err) {
        throw new FrameError(`bad gzip in compressed packed forward: ${(err as Error).message}`);
      }
      return { kind: 'events', mode: 'compressed', tag, blob, option };
    }
    return { kind: 'events', mode: 'packed', tag, blob: raw, option };
  }
  const sb = second[0]!;
  if ((sb >= 0x90 && sb <= 0x9f) || sb === 0xdc || sb === 0xdd) {
    if (items.length > 3) throw new FrameError('forward frame must be [tag, entries, option?]');
    const list = decodeValue(second);
    if (!Array.isArray(list)) throw new FrameError('forward entries must be an array');
    return {
      kind: 'events',
      mode: 'forward',
      tag,
      entries: list.map(toEntry),
      option: optionAt(2),
    };
  }
  if (items.length > 4) throw new FrameError('message frame must be [tag, time, record, option?]');
  if (items.length < 3) throw new FrameError('message frame must be [tag, time, record, option?]');
  // Docker sends one of these per line: decode it in one call.
  const [, t, record, option] = decodeValue(frame) as unknown[];
  const time = toEventTime(t);
  if (record === null || typeof record !== 'object' || Array.isArray(record))
    throw new FrameError('record must be a map');
  return {
    kind: 'events',
    mode: 'message',
    tag,
    entries: [{ time, record: record as LogRecord }],
    option: toOptions(option),
  };
}

/**
 * Stream decoder: `push` each chunk read from a socket, get back every frame completed by it.
 * Frames larger than `maxFrameBytes` throw FrameError (a peer cannot make us buffer forever).
 */
export class ForwardDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private len = 0;
  /** True when `buf` was allocated here (not a caller's chunk), so its spare room may be used. */
  private owned = false;
  /** Scan progress inside the frame at `start`, relative to `start`. */
  private resume: ScanState = { pos: 0, pending: 1 };

  constructor(private readonly maxFrameBytes = 64 * 1024 * 1024) {}

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.len - this.start;
  }

  push(chunk: Buffer): Frame[] {
    return this.pushRaw(chunk).map(decodeFrame);
  }

  /** Like push, but returns the raw bytes of each whole frame (for callers that decode lazily). */
  pushRaw(chunk: Buffer): Buffer[] {
    this.append(chunk);
    const frames: Buffer[] = [];
    while (this.start < this.len) {
      const s = scan(
        this.buf,
        { pos: this.start + this.resume.pos, pending: this.resume.pending },
        this.len,
      );
      if (s.pending > 0) {
        this.resume = { pos: s.pos - this.start, pending: s.pending };
        if (this.len - this.start > this.maxFrameBytes)
          throw new FrameError(`frame larger than ${this.maxFrameBytes} bytes`);
        break;
      }
      frames.push(this.buf.subarray(this.start, s.pos));
      this.start = s.pos;
      this.resume = { pos: 0, pending: 1 };
    }
    if (this.start === this.len) {
      // Frames handed out still point into buf: start a fresh buffer rather than reuse it.
      this.buf = Buffer.alloc(0);
      this.start = this.len = 0;
    }
    return frames;
  }

  private append(chunk: Buffer): void {
    if (this.len === 0) {
      this.buf = chunk;
      this.owned = false;
      this.len = chunk.length;
      return;
    }
    // Spare room after `len` is ours (frames handed out lie before `start`): fill it in place.
    if (this.buf !== chunk && this.len + chunk.length <= this.buf.length && this.owned) {
      chunk.copy(this.buf, this.len);
      this.len += chunk.length;
      return;
    }
    const keep = this.len - this.start;
    const next = Buffer.allocUnsafe(Math.max(64 * 1024, (keep + chunk.length) * 2));
    this.buf.copy(next, 0, this.start, this.len);
    chunk.copy(next, keep);
    this.buf = next;
    this.owned = true;
    this.start = 0;
    this.len = keep + chunk.length;
  }
}

/** One `[time, record]` entry, msgpack-encoded (the unit of a PackedForward blob). */
export function encodeEntry(time: EventTime, record: LogRecord): Buffer {
  return packr.pack([time, record]);
}

/** Message mode frame `[tag, time, record, option?]`. */
export function encodeMessage(
  tag: string,
  time: EventTime | number,
  record: LogRecord,
  option?: ForwardOptions,
): Buffer {
  return packr.pack(option ? [tag, time, record, option] : [tag, time, record]);
}

/** Forward mode frame `[tag, [[time, record]...], option?]`. */
export function encodeForward(tag: string, entries: Entry[], option?: ForwardOptions): Buffer {
  const list = entries.map((e) => [e.time, e.record]);
  return packr.pack(option ? [tag, list, option] : [tag, list]);
}

/**
 * PackedForward frame `[tag, bin(entries), option]`, or CompressedPackedForward when
 * `compress` (gzip, option.compressed = "gzip"). `size` is set to the number of entries.
 */
export function encodePacked(
  tag: string,
  blob: Buffer,
  count: number,
  option: ForwardOptions = {},
  compress = false,
): Buffer {
  const opt: ForwardOptions = { ...option, size: count };
  if (compress) opt.compressed = 'gzip';
  return packr.pack([tag, compress ? gzipSync(blob) : blob, opt]);
}

/** The ack a receiver sends for an option `chunk`: the plain map `{"ack": chunk}`. */
export function encodeAck(chunk: string): Buffer {
  // By hand: the forward input writes one per Docker line, before the driver may send the next.
  const len = Buffer.byteLength(chunk);
  const hdr = len < 32 ? 1 : len < 256 ? 2 : len < 65536 ? 3 : 5;
  const out = Buffer.allocUnsafe(ACK_HEAD.length + hdr + len);
  let o = ACK_HEAD.copy(out, 0);
  if (len < 32) out[o++] = 0xa0 | len;
  else if (len < 256) {
    out[o++] = 0xd9;
    out[o++] = len;
  } else if (len < 65536) {
    out[o++] = 0xda;
    o = out.writeUInt16BE(len, o);
  } else {
    out[o++] = 0xdb;
    o = out.writeUInt32BE(len, o);
  }
  out.write(chunk, o, 'utf8');
  return out;
}

/** msgpack `{"ack": ` (a one-entry map and its key), the constant start of every ack. */
const ACK_HEAD = Buffer.from([0x81, 0xa3, 0x61, 0x63, 0x6b]);

/** Any value as msgpack (handshake messages, tests). */
export function encodeValue(v: unknown): Buffer {
  return packr.pack(v);
}
