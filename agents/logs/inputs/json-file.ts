/**
 * Docker's json-file log format, pure: one JSON object per line,
 * `{"log":"text\n","stream":"stdout","time":"2026-12-02T10:00:00.123456789Z"}` (plus `attrs`
 * when labels/env log-opts are set). dockerd cuts lines over 16 KiB into several entries; every
 * piece but the last lacks the trailing newline. `LineJoiner` puts them back together per
 * stream and says where it is safe to resume (no piece pending), which is what the file input
 * checkpoints. `encodeRecord` writes the stored record as msgpack without a generic encoder
 * (the file input's per-line budget is a few microseconds).
 */
import { EventTime } from '../forward/codec.js';
import { Packr } from 'msgpackr';

export interface JsonLine {
  log: string;
  stream: string;
  time: EventTime;
}

export class JsonLineError extends Error {
  override name = 'JsonLineError';
}

let lastPrefix = '';
let lastSec = 0;

/** The whole second of the last "…Z" time parsed (19 characters) and its seconds. */
let zPrefix = '\u0000';
let zSec = 0;
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/**
 * RFC 3339 with up to nanoseconds ("…T10:00:00.5Z", "…T10:00:00Z", "+02:00" offsets) →
 * EventTime. dockerd's own form ("…Z", within a second already seen: nearly every line) takes a
 * path without a regular expression; everything else, and every new second, is checked in full.
 */
export function parseTime(t: string): EventTime {
  const n = t.length;
  if (n >= 20 && t.charCodeAt(n - 1) === 90 /* Z */ && t.startsWith(zPrefix)) {
    if (n === 20) return new EventTime(zSec, 0);
    const digits = n - 21;
    if (t.charCodeAt(19) === 46 /* . */ && digits >= 1 && digits <= 9) {
      let v = 0;
      for (let i = 20; i < n - 1; i++) {
        const c = t.charCodeAt(i) - 48;
        if (c < 0 || c > 9) return parseTimeFull(t);
        v = v * 10 + c;
      }
      return new EventTime(zSec, v * POW10[9 - digits]!);
    }
  }
  return parseTimeFull(t);
}

function parseTimeFull(t: string): EventTime {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) throw new JsonLineError(`time "${t}" is not RFC 3339`);
  const zone = m[3]!;
  const key = m[1]! + zone;
  let sec: number;
  if (key === lastPrefix) sec = lastSec;
  else {
    const ms = Date.parse(`${m[1]!}${zone}`);
    if (Number.isNaN(ms)) throw new JsonLineError(`time "${t}" is not RFC 3339`);
    sec = ms / 1000;
    lastPrefix = key;
    lastSec = sec;
  }
  if (zone === 'Z') {
    zPrefix = m[1]!;
    zSec = sec;
  }
  const frac = m[2] ?? '';
  return new EventTime(sec, frac === '' ? 0 : Number(frac.padEnd(9, '0')));
}

const HEAD = '{"log":"';
const MID_OUT = '","stream":"stdout","time":"';
const MID_ERR = '","stream":"stderr","time":"';

/**
 * dockerd's exact layout, `{"log":"<text>\n","stream":"stdout|stderr","time":"<t>"}`, with no
 * escape in the text but its final `\n`: the fields by position, without building an object.
 * Undefined for anything else (other escapes, `attrs`, another order), which JSON.parse takes.
 */
function parsePlain(text: string): JsonLine | undefined {
  if (!text.startsWith(HEAD)) return undefined;
  const q = text.indexOf('"', HEAD.length);
  if (q < 0) return undefined;
  const bs = text.indexOf('\\', HEAD.length);
  let log: string;
  if (bs < 0 || bs > q) log = text.slice(HEAD.length, q);
  else if (bs === q - 2 && text.charCodeAt(q - 1) === 110 /* n */)
    log = text.slice(HEAD.length, q - 2) + '\n';
  else return undefined;
  let stream: string;
  if (text.startsWith(MID_OUT, q)) stream = 'stdout';
  else if (text.startsWith(MID_ERR, q)) stream = 'stderr';
  else return undefined;
  const t0 = q + MID_OUT.length;
  const n = text.length;
  if (n - t0 < 3 || text.charCodeAt(n - 1) !== 125 /* } */ || text.charCodeAt(n - 2) !== 34)
    return undefined;
  const time = text.slice(t0, n - 2);
  if (time.includes('"') || time.includes('\\')) return undefined;
  return { log, stream, time: parseTime(time) };
}

/** One json-file line (without its newline) → its fields; throws JsonLineError if it is not one. */
export function parseLine(text: string): JsonLine {
  const plain = parsePlain(text);
  if (plain) return plain;
  return parseLineJson(text);
}

/** parseLine through JSON.parse: every layout JSON allows. Exported for the equivalence test. */
export function parseLineJson(text: string): JsonLine {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new JsonLineError(`not JSON: ${text.slice(0, 80)}`);
  }
  const o = v as { log?: unknown; stream?: unknown; time?: unknown };
  if (typeof o !== 'object' || o === null || typeof o.log !== 'string')
    throw new JsonLineError(`no "log" string: ${text.slice(0, 80)}`);
  if (typeof o.time !== 'string') throw new JsonLineError(`no "time" string: ${text.slice(0, 80)}`);
  return {
    log: o.log,
    stream: typeof o.stream === 'string' ? o.stream : 'stdout',
    time: parseTime(o.time),
  };
}

/** A whole line, as stored: `log` without its newline, and the time of its first piece. */
export interface JoinedLine {
  log: string;
  stream: string;
  time: EventTime;
}

/**
 * Joins 16 KiB pieces back into lines, per stream (a stderr line may come between the pieces
 * of a stdout line). `pending` is true while some piece waits for its end: a checkpoint is only
 * safe when it is false. `flush` gives up waiting (end of file, or a writer that never ended
 * its line) and returns what is pending as whole lines.
 */
export class LineJoiner {
  private readonly parts = new Map<string, { time: EventTime; pieces: string[] }>();

  get pending(): boolean {
    return this.parts.size > 0;
  }

  push(l: JsonLine): JoinedLine | undefined {
    const open = this.parts.get(l.stream);
    if (!l.log.endsWith('\n')) {
      if (open) open.pieces.push(l.log);
      else this.parts.set(l.stream, { time: l.time, pieces: [l.log] });
      return undefined;
    }
    const text = l.log.slice(0, -1);
    if (!open) return { log: text, stream: l.stream, time: l.time };
    this.parts.delete(l.stream);
    open.pieces.push(text);
    return { log: open.pieces.join(''), stream: l.stream, time: open.time };
  }

  flush(): JoinedLine[] {
    const out = [...this.parts].map(([stream, p]) => ({
      log: p.pieces.join(''),
      stream,
      time: p.time,
    }));
    this.parts.clear();
    return out;
  }
}

const packr = new Packr({ useRecords: false });
const STREAMS = new Map<string, Buffer>();

function streamBytes(stream: string): Buffer {
  let b = STREAMS.get(stream);
  if (!b) {
    b = Buffer.concat([packr.pack('stream'), packr.pack(stream)]);
    if (STREAMS.size < 16) STREAMS.set(stream, b);
  }
  return b;
}

/**
 * The constant part of a container's records (msgpack key/value pairs for service, host,
 * container_name, container_id), encoded once per container.
 */
export function recordTail(fields: {
  service: string;
  host: string;
  container_name: string;
  container_id: string;
}): Buffer {
  return Buffer.concat(
    (['service', 'host', 'container_name', 'container_id'] as const).flatMap((k) => [
      packr.pack(k),
      packr.pack(fields[k]),
    ]),
  );
}

const LOG_KEY = Buffer.from([0xa3, 0x6c, 0x6f, 0x67]);

/** A line to encode; `log` may be its UTF-8 bytes already (the forward input's Docker frames). */
export type RecordLine = Omit<JoinedLine, 'log'> & { log: string | Buffer };

/**
 * Writes the msgpack entry `[time, {log, stream, service, host, container_name, container_id}]`
 * into `out` at `at` and returns the end; `out` must have room (see `recordBound`).
 */
export function encodeRecord(out: Buffer, at: number, line: RecordLine, tail: Buffer): number {
  let o = at;
  out[o++] = 0x92;
  out[o++] = 0xd7;
  out[o++] = 0x00;
  out.writeUInt32BE(line.time.sec >>> 0, o);
  out.writeUInt32BE(line.time.nsec >>> 0, o + 4);
  o += 8;
  out[o++] = 0x86;
  o += LOG_KEY.copy(out, o);
  const len = typeof line.log === 'string' ? Buffer.byteLength(line.log) : line.log.length;
  if (len < 32) out[o++] = 0xa0 | len;
  else if (len < 0x100) {
    out[o++] = 0xd9;
    out[o++] = len;
  } else if (len < 0x10000) {
    out[o++] = 0xda;
    out.writeUInt16BE(len, o);
    o += 2;
  } else {
    out[o++] = 0xdb;
    out.writeUInt32BE(len, o);
    o += 4;
  }
  o += typeof line.log === 'string' ? out.write(line.log, o, len, 'utf8') : line.log.copy(out, o);
  o += streamBytes(line.stream).copy(out, o);
  o += tail.copy(out, o);
  return o;
}

/** Bytes `encodeRecord` may need for a line (an upper bound). */
export function recordBound(line: RecordLine, tail: Buffer): number {
  return (
    32 +
    line.log.length * (typeof line.log === 'string' ? 3 : 1) +
    line.stream.length +
    8 +
    tail.length
  );
}
