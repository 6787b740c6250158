/**
 * The agent's durable buffer: an append-only log of record blocks on disk (`--buffer-dir`) with
 * an acked cursor. Every record gets a sequence number (1, 2, ...) that never repeats for this
 * buffer's agent id; the aggregator uses (agent id, seq) to drop resent records.
 *
 * Contract:
 *  - `append` returns only after the block is written to the file (it survives the agent being
 *    killed); with fsync "always" also after fdatasync (it survives power loss); "interval"
 *    syncs every second, "never" leaves it to the kernel.
 *  - Blocks stay on disk until `ack(seq)` covers them. The cursor file is rewritten (write +
 *    rename) within 200 ms of an ack; a restart resends from it, and anything resent that the
 *    aggregator already has is dropped there by (agent id, seq).
 *  - When the unacked bytes exceed `maxBytes`, `full` is true: the agent stops reading from (and
 *    acking) its inputs until the shipper frees space. Nothing is ever dropped to make room.
 *
 * On-disk layout: `<dir>/agent-id`, `<dir>/cursor` ({"acked": N}), `<dir>/<firstSeq>.seg` files
 * of blocks: u32 blobLen | u32 count | f64 firstSeq | u16 metaLen | meta (JSON) | blob. A block
 * cut short by a crash is truncated away at open (it was never acked to anyone).
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { fdatasync, rename, unlink, writeFile } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DiskFullError, noSpaceCode } from '../common/errors.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface BufferOptions {
  dir: string;
  /** Unacked bytes above which `full` is true (backpressure). */
  maxBytes: number;
  fsync: FsyncPolicy;
  segmentBytes?: number;
}

/** What the shipper needs to know about a block without decoding it. */
export interface BlockMeta {
  /** Service of every record in the block. */
  service: string;
  /** Earliest and latest record time, ms since epoch. */
  tmin: number;
  tmax: number;
  /** Sender's chunk id, kept so a resend after a lost ack is recognised (see `seenChunk`). */
  chunk?: string;
  /**
   * The native forward transport's journal position when this block was appended (see
   * inputs/forward-native.ts); the newest one is `lastMark`, read back at open.
   */
  j?: string;
}

export interface Block {
  firstSeq: number;
  count: number;
  meta: BlockMeta;
  /** Concatenated msgpack `[time, record]` entries. */
  blob: Buffer;
}

/** A place in the buffer: segment (by its first seq) and byte offset. */
export interface ReadPos {
  seg: number;
  offset: number;
}

const HEADER = 18;

function segName(firstSeq: number): string {
  return `${String(firstSeq).padStart(16, '0')}.seg`;
}

export class DiskBuffer {
  readonly agentId: string;
  /** Seq the next appended record gets. */
  nextSeq = 1;
  /** Highest seq the aggregator has acknowledged. */
  acked = 0;
  private segments: { first: number; size: number }[] = [];
  private fd = -1;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly segmentBytes: number;
  private readonly chunks = new Set<string>();
  private cursorTimer: NodeJS.Timeout | undefined;
  private cursorSaving = false;
  private syncing = false;
  /** Recently appended blocks by position, so shipping them costs no read(2). */
  private readonly recent = new Map<string, { block: Block; total: number }>();
  private recentBytes = 0;

  constructor(private readonly opts: BufferOptions) {
    this.segmentBytes =
      opts.segmentBytes ?? Math.max(64 * 1024, Math.min(8 << 20, opts.maxBytes / 4));
    mkdirSync(opts.dir, { recursive: true });
    const idFile = join(opts.dir, 'agent-id');
    if (!existsSync(idFile)) this.atomicWrite(idFile, `${randomUUID()}\n`);
    this.agentId = readFileSync(idFile, 'utf8').trim();
    const cursorFile = join(opts.dir, 'cursor');
    if (existsSync(cursorFile)) {
      const c = JSON.parse(readFileSync(cursorFile, 'utf8')) as { acked: number; next?: number };
      this.acked = c.acked;
      this.nextSeq = Math.max(c.next ?? 1, c.acked + 1);
    }
    this.segments = readdirSync(opts.dir)
      .filter((n) => /^\d{16}\.seg$/.test(n))
      .sort()
      .map((n) => ({ first: Number(n.slice(0, 16)), size: statSync(join(opts.dir, n)).size }));
    const last = this.segments[this.segments.length - 1];
    if (last) {
      this.fd = openSync(this.segPath(last.first), 'r+');
      const { end, nextSeq } = this.scanEnd(last.first);
      if (end < last.size) ftruncateSync(this.fd, end);
      last.size = end;
      this.nextSeq = Math.max(this.nextSeq, nextSeq);
      for (const s of this.segments.slice(-2)) this.loadChunks(s.first, s.size);
      this.dropAcked();
    }
    if (opts.fsync === 'interval') {
      this.timer = setInterval(() => this.syncInBackground(), 1000);
      this.timer.unref();
    }
  }

  /** Unacked bytes on disk (whole segments; the active one counts in full). */
  get bytes(): number {
    return this.segments.reduce((n, s) => n + s.size, 0);
  }

  /** Until when writes are held back after the disk filled up (ms since epoch). */
  private noSpaceUntil = 0;

  /**
   * Over `maxBytes` with records still unacked, or the disk was full within the last second (then
   * the next append retries). Once everything is acked the buffer is not full whatever its size:
   * the next append rotates the spent active segment away (below), else a bound smaller than a
   * segment would never free room and the input would stay paused for good.
   */
  get full(): boolean {
    return (this.backlog > 0 && this.bytes >= this.opts.maxBytes) || Date.now() < this.noSpaceUntil;
  }

  /** Records appended but not yet acked. */
  get backlog(): number {
    return this.nextSeq - 1 - this.acked;
  }

  /**
   * True if a block with this sender chunk id was appended recently (also before a restart):
   * the sender did not get our ack and resent it, so ack again without storing.
   */
  seenChunk(chunk: string): boolean {
    return this.chunks.has(chunk);
  }

  /** The `j` of the newest block that has one (also from before a restart), if any. */
  lastMark: string | undefined;

  /**
   * Appends one block of `entries` (each a msgpack `[time, record]`); returns its first seq.
   * A full disk throws DiskFullError after cutting off what part of the block was written, so
   * the buffer is as before and the caller may retry (`full` stays true for a second).
   */
  append(entries: Buffer[], meta: BlockMeta): number {
    const first = this.nextSeq;
    const active = this.segments[this.segments.length - 1];
    // After a full disk, or at the size bound, a fully acked active segment is rotated away so
    // its space comes back (acked space is only freed a whole segment at a time).
    const reclaim =
      this.backlog === 0 &&
      (active?.size ?? 0) > 0 &&
      (this.noSpaceUntil > 0 || this.bytes >= this.opts.maxBytes);
    const rotate = !active || active.size >= this.segmentBytes || reclaim;
    try {
      if (rotate) this.rotate(first);
    } catch (err) {
      throw this.noSpace(err);
    }
    const seg = this.segments[this.segments.length - 1]!;
    // One allocation for the whole block (the forward input appends one per Docker line).
    const metaJson = this.metaJson(meta);
    const metaLen = Buffer.byteLength(metaJson);
    let blobLen = 0;
    for (const e of entries) blobLen += e.length;
    const block = Buffer.allocUnsafe(HEADER + metaLen + blobLen);
    block.writeUInt32BE(blobLen, 0);
    block.writeUInt32BE(entries.length, 4);
    block.writeDoubleBE(first, 8);
    block.writeUInt16BE(metaLen, 16);
    block.write(metaJson, HEADER, 'utf8');
    let at = HEADER + metaLen;
    for (const e of entries) at += e.copy(block, at);
    let off = 0;
    try {
      while (off < block.length)
        off += writeSync(this.fd, block, off, block.length - off, seg.size + off);
    } catch (err) {
      if (off > 0) ftruncateSync(this.fd, seg.size);
      if (rotate) this.dropAcked(); // a full disk needs the spent segments' space for the retry
      throw this.noSpace(err);
    }
    this.remember2(seg.first, seg.size, {
      block: {
        firstSeq: first,
        count: entries.length,
        meta,
        blob: block.subarray(HEADER + metaLen),
      },
      total: block.length,
    });
    seg.size += block.length;
    // Spent segments go only now, with this block on disk: the newest block (its `j`) always is.
    if (rotate) this.dropAcked();
    this.noSpaceUntil = 0;
    this.nextSeq = first + entries.length;
    if (meta.chunk) this.remember(meta.chunk);
    if (meta.j !== undefined) this.lastMark = meta.j;
    if (this.opts.fsync === 'always') fdatasyncSync(this.fd);
    else this.dirty = true;
    return first;
  }

  /**
   * Position of the first block after the acked cursor. Called on every (re)connect: it reads
   * only the segment holding the next unacked seq, in one read(2), not a pread per block. That
   * is the first one: `dropAcked` leaves no segment before it (a stale cursor after a crash may
   * even lie before the first segment, which is then where the resend starts).
   */
  ackedPos(): ReadPos {
    const want = this.acked + 1;
    for (const s of this.segments)
      for (const h of this.scanBlocks(s.first, s.size))
        if (h.firstSeq + h.count - 1 >= want) return { seg: s.first, offset: h.offset };
    const last = this.segments[this.segments.length - 1];
    return last ? { seg: last.first, offset: last.size } : { seg: this.nextSeq, offset: 0 };
  }

  /**
   * Whole blocks from `pos`, up to about `maxBytes` (at least one block if any is there), and the
   * position after them.
   */
  read(pos: ReadPos, maxBytes: number): { blocks: Block[]; next: ReadPos } {
    const blocks: Block[] = [];
    let { seg, offset } = pos;
    let bytes = 0;
    for (;;) {
      const s = this.segments.find((x) => x.first === seg);
      if (!s) {
        const later = this.segments.find((x) => x.first > seg);
        if (!later) break;
        seg = later.first;
        offset = 0;
        continue;
      }
      if (offset >= s.size) {
        const i = this.segments.indexOf(s);
        const nextSeg = this.segments[i + 1];
        if (!nextSeg) break;
        seg = nextSeg.first;
        offset = 0;
        continue;
      }
      const cached = this.recent.get(`${seg}:${offset}`);
      if (cached) {
        if (blocks.length > 0 && bytes + cached.total > maxBytes) break;
        blocks.push(cached.block);
        bytes += cached.total;
        offset += cached.total;
        continue;
      }
      const h = this.readHeader(seg, offset);
      if (!h) break;
      if (blocks.length > 0 && bytes + h.total > maxBytes) break;
      const body = Buffer.allocUnsafe(h.total - HEADER);
      this.pread(seg, body, offset + HEADER);
      blocks.push({
        firstSeq: h.firstSeq,
        count: h.count,
        meta: JSON.parse(body.subarray(0, h.metaLen).toString()) as BlockMeta,
        blob: body.subarray(h.metaLen),
      });
      bytes += h.total;
      offset += h.total;
    }
    return { blocks, next: { seg, offset } };
  }

  /** Marks every record up to `seq` delivered; persists the cursor and deletes spent segments. */
  ack(seq: number): void {
    if (seq <= this.acked) return;
    this.acked = seq;
    this.forgetAcked();
    this.dropAcked();
    if (!this.cursorTimer) {
      this.cursorTimer = setTimeout(() => this.saveCursorInBackground(), 200);
      this.cursorTimer.unref();
    }
  }

  private lastService = '';
  private lastServiceJson = '""';

  /** JSON.stringify(meta), without a stringify of the same service name per Docker line. */
  private metaJson(meta: BlockMeta): string {
    if (meta.service !== this.lastService) {
      this.lastService = meta.service;
      this.lastServiceJson = JSON.stringify(meta.service);
    }
    for (const k in meta)
      if (k !== 'service' && k !== 'tmin' && k !== 'tmax' && k !== 'chunk' && k !== 'j')
        return JSON.stringify(meta);
    if (!Number.isFinite(meta.tmin) || !Number.isFinite(meta.tmax)) return JSON.stringify(meta);
    let json = `{"service":${this.lastServiceJson},"tmin":${meta.tmin},"tmax":${meta.tmax}`;
    if (meta.chunk !== undefined)
      json += `,"chunk":${/^[\w+/=:.-]*$/.test(meta.chunk) ? `"${meta.chunk}"` : JSON.stringify(meta.chunk)}`;
    if (meta.j !== undefined)
      json += `,"j":${/^[\w:.-]*$/.test(meta.j) ? `"${meta.j}"` : JSON.stringify(meta.j)}`;
    return `${json}}`;
  }

  /** A DiskFullError for ENOSPC/EDQUOT (holding appends back for a second); other errors as they are. */
  private noSpace(err: unknown): unknown {
    const code = noSpaceCode(err);
    if (!code) return err;
    this.noSpaceUntil = Date.now() + 1000;
    return new DiskFullError(this.opts.dir, code);
  }

  // A stale cursor only means a resend after restart, which the aggregator drops by seq: so it
  // is written at most every 200 ms (in the background, below) and not fsynced. This is the
  // synchronous save of `close`: on a full disk the cursor on disk stays as it was.
  private saveCursor(): void {
    const file = join(this.opts.dir, 'cursor');
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify({ acked: this.acked, next: this.nextSeq }));
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      if (!noSpaceCode(err)) throw err;
    }
  }

  /**
   * The cursor save on the ack timer, in the thread pool: a write + rename can take milliseconds
   * on a busy disk, and a forward-input driver waits for the event loop on every line. Its own
   * temp file, so the synchronous save of `close` never shares one with it.
   */
  private saveCursorInBackground(): void {
    this.cursorTimer = undefined;
    if (this.cursorSaving) {
      this.cursorTimer = setTimeout(() => this.saveCursorInBackground(), 200);
      this.cursorTimer.unref();
      return;
    }
    this.cursorSaving = true;
    const file = join(this.opts.dir, 'cursor');
    const tmp = `${file}.tmp-bg`;
    const retry = (err: NodeJS.ErrnoException | null): boolean => {
      if (!err) return false;
      this.cursorSaving = false;
      if (!noSpaceCode(err)) throw err;
      if (this.fd >= 0 && !this.cursorTimer) {
        this.cursorTimer = setTimeout(() => this.saveCursorInBackground(), 1000);
        this.cursorTimer.unref();
      }
      return true;
    };
    writeFile(tmp, JSON.stringify({ acked: this.acked, next: this.nextSeq }), (err) => {
      if (retry(err)) return;
      if (this.fd < 0) {
        this.cursorSaving = false; // closed meanwhile: close saved a newer cursor
        return;
      }
      rename(tmp, file, (err2) => {
        if (retry(err2)) return;
        this.cursorSaving = false;
      });
    });
  }

  sync(): void {
    if (this.dirty && this.fd >= 0) {
      fdatasyncSync(this.fd);
      this.dirty = false;
    }
  }

  /**
   * The once-a-second fdatasync of `--fsync interval`, in the thread pool: it can take tens of
   * milliseconds under load, and every one of them would hold up the driver's next line. A
   * failed sync leaves the data dirty for the next round.
   */
  private syncInBackground(): void {
    if (!this.dirty || this.fd < 0 || this.syncing) return;
    this.dirty = false;
    this.syncing = true;
    const fd = this.fd;
    fdatasync(fd, (err) => {
      this.syncing = false;
      if (err && fd === this.fd) this.dirty = true;
    });
  }

  close(): void {
    clearInterval(this.timer);
    clearTimeout(this.cursorTimer);
    this.saveCursor();
    this.sync();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private remember2(seg: number, offset: number, v: { block: Block; total: number }): void {
    this.recent.set(`${seg}:${offset}`, v);
    this.recentBytes += v.total;
    while (this.recentBytes > 32 << 20) {
      const [k, old] = this.recent.entries().next().value!;
      this.recent.delete(k);
      this.recentBytes -= old.total;
    }
  }

  private forgetAcked(): void {
    for (const [k, v] of this.recent) {
      if (v.block.firstSeq + v.block.count - 1 > this.acked) break;
      this.recent.delete(k);
      this.recentBytes -= v.total;
    }
  }

  private remember(chunk: string): void {
    this.chunks.add(chunk);
    if (this.chunks.size > 50_000) this.chunks.delete(this.chunks.values().next().value!);
  }

  private loadChunks(seg: number, size: number): void {
    for (const h of this.scanBlocks(seg, size, true)) {
      if (h.meta?.chunk) this.remember(h.meta.chunk);
      if (h.meta?.j !== undefined) this.lastMark = h.meta.j;
    }
  }

  /**
   * The whole blocks of a segment, from one read of the file (a restart with a big backlog must
   * not cost a syscall per block: the driver's reconnect backoff punishes a slow start).
   */
  private *scanBlocks(
    seg: number,
    size: number,
    withMeta = false,
  ): Generator<{
    offset: number;
    total: number;
    count: number;
    firstSeq: number;
    meta?: BlockMeta;
  }> {
    const data = Buffer.allocUnsafe(size);
    const got = this.pread(seg, data, 0);
    let offset = 0;
    while (offset + HEADER <= got) {
      const metaLen = data.readUInt16BE(offset + 16);
      const total = HEADER + metaLen + data.readUInt32BE(offset);
      if (offset + total > got) return;
      const metaBuf = data.subarray(offset + HEADER, offset + HEADER + metaLen);
      yield {
        offset,
        total,
        count: data.readUInt32BE(offset + 4),
        firstSeq: data.readDoubleBE(offset + 8),
        ...(withMeta && metaLen > 0 ? { meta: JSON.parse(metaBuf.toString()) as BlockMeta } : {}),
      };
      offset += total;
    }
  }

  private segPath(first: number): string {
    return join(this.opts.dir, segName(first));
  }

  private rotate(first: number): void {
    // Open the new segment first: if that fails (disk full), the current one stays usable.
    const fd = openSync(this.segPath(first), 'w+');
    if (this.fd >= 0) {
      fdatasyncSync(this.fd);
      closeSync(this.fd);
    }
    this.fd = fd;
    this.segments.push({ first, size: 0 });
  }

  /** Deletes closed segments whose every record is acked. */
  private dropAcked(): void {
    while (this.segments.length > 1 && this.segments[1]!.first <= this.acked + 1) {
      const s = this.segments.shift()!;
      // Deleting a big file can take tens of ms on some filesystems: not on the event loop.
      unlink(this.segPath(s.first), () => undefined);
    }
  }

  private pread(seg: number, into: Buffer, position: number): number {
    const active = this.segments[this.segments.length - 1];
    const own = active?.first === seg && this.fd >= 0;
    const fd = own ? this.fd : openSync(this.segPath(seg), 'r');
    try {
      let got = 0;
      while (got < into.length) {
        const n = readSync(fd, into, got, into.length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      return got;
    } finally {
      if (!own) closeSync(fd);
    }
  }

  private readHeader(
    seg: number,
    offset: number,
  ): { total: number; count: number; firstSeq: number; metaLen: number } | undefined {
    const h = Buffer.allocUnsafe(HEADER);
    if (this.pread(seg, h, offset) < HEADER) return undefined;
    const metaLen = h.readUInt16BE(16);
    return {
      total: HEADER + metaLen + h.readUInt32BE(0),
      count: h.readUInt32BE(4),
      firstSeq: h.readDoubleBE(8),
      metaLen,
    };
  }

  /** End of the last whole block of a segment, and the seq after it. */
  private scanEnd(first: number): { end: number; nextSeq: number } {
    let end = 0;
    let nextSeq = first;
    for (const h of this.scanBlocks(first, fstatSync(this.fd).size)) {
      end = h.offset + h.total;
      nextSeq = h.firstSeq + h.count;
    }
    return { end, nextSeq };
  }

  private atomicWrite(file: string, text: string): void {
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, text);
    if (this.opts.fsync !== 'never') {
      const fd = openSync(tmp, 'r');
      fdatasyncSync(fd);
      closeSync(fd);
    }
    renameSync(tmp, file);
  }
}
