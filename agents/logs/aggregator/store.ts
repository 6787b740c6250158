/**
 * The aggregator's log store: per service, append-only segment files of blocks (one block per
 * service per received batch), an index of each segment's time range and record count, and
 * dedup of resent batches.
 *
 * Layout: `<dir>/s_<service>/<id>.seg` (+ `<id>.idx` once closed), `<dir>/dedup.json`.
 * Block: u32 blobLen | u16 hdrLen | hdr JSON {a agent, s last seq of this block, c chunk, n, t0, t1} |
 * blob (msgpack `[time, record]` entries, exactly as shipped).
 *
 * Dedup (exactly-once effect): batches from Flotilla agents carry (agent, first seq); records at
 * or below the agent's high-water mark are dropped, so a resend after a lost ack, a killed
 * agent or a killed aggregator stores nothing twice. Other clients are deduped by chunk id over
 * a recent window. The marks are rebuilt at start from `dedup.json` (written at segment
 * rotation and every second) plus the blocks of the open segments.
 *
 * Durability: `ingest` returns after write(2) of every block (a killed aggregator loses
 * nothing it acked). fsync "interval" (default) fdatasyncs every second (power loss may lose
 * up to a second of acked records); "always" fdatasyncs before returning.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  ftruncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { DiskFullError, noSpaceCode } from '../../common/errors.js';
import { decodeEntries, entryOffsets, type Entry } from '../forward/codec.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

/** A run of records of one service, as msgpack entries. */
export interface Part {
  service: string;
  count: number;
  blob: Buffer;
  tmin: number;
  tmax: number;
}

export interface Batch {
  agent?: string;
  /** Seq of the first record of the batch (records are consecutive). */
  seq?: number;
  chunk?: string;
  parts: Part[];
}

export interface SegmentInfo {
  service: string;
  id: number;
  file: string;
  size: number;
  count: number;
  tmin: number;
  tmax: number;
  closed: boolean;
}

export interface ServiceInfo {
  service: string;
  count: number;
  bytes: number;
  firstSeen: number;
  lastSeen: number;
}

export interface StoreOptions {
  dir: string;
  fsync: FsyncPolicy;
  segmentBytes?: number;
  /** Records older than this are deleted (whole segments). 0 = keep. */
  retentionMs?: number;
  /** Total size above which the oldest segments are deleted. 0 = no bound. */
  maxBytes?: number;
  /** Chunk ids of non-Flotilla clients remembered for dedup. */
  recentChunks?: number;
  /** Called for every segment file a query reads (the aggregator counts them in a metric). */
  onSegmentRead?: () => void;
}

const HEAD = 6;

interface BlockHeader {
  a?: string;
  s?: number;
  c?: string;
  n: number;
  t0: number;
  t1: number;
}

export function serviceDir(service: string): string {
  return `s_${encodeURIComponent(service)}`;
}

/** A segment with no blocks yet: the start of a new one, or of rebuilding one's index. */
function emptySegment(service: string, id: number, file: string, closed: boolean): SegmentInfo {
  return { service, id, file, size: 0, count: 0, tmin: Infinity, tmax: -Infinity, closed };
}

export class Store {
  private readonly segs = new Map<string, SegmentInfo[]>();
  private readonly fds = new Map<string, number>();
  private readonly dirty = new Set<number>();
  private readonly hwm = new Map<string, number>();
  private readonly recent = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(service: string, blob: Buffer) => void>();

  constructor(private readonly o: StoreOptions) {
    mkdirSync(o.dir, { recursive: true });
    const cp = join(o.dir, 'dedup.json');
    if (existsSync(cp)) {
      const saved = JSON.parse(readFileSync(cp, 'utf8')) as { hwm: Record<string, number> };
      for (const [a, s] of Object.entries(saved.hwm)) this.hwm.set(a, s);
    }
    for (const d of readdirSync(o.dir)) {
      if (!d.startsWith('s_')) continue;
      const service = decodeURIComponent(d.slice(2));
      const ids = readdirSync(join(o.dir, d))
        .filter((n) => /^\d+\.seg$/.test(n))
        .map((n) => Number(n.slice(0, -4)))
        .sort((a, b) => a - b);
      const list: SegmentInfo[] = [];
      ids.forEach((id, i) => {
        const file = join(o.dir, d, `${id}.seg`);
        const idx = file.replace(/\.seg$/, '.idx');
        const last = i === ids.length - 1;
        if (!last && existsSync(idx)) {
          list.push({
            ...(JSON.parse(readFileSync(idx, 'utf8')) as SegmentInfo),
            file,
            closed: true,
          });
        } else list.push(this.recover(service, id, file, !last));
      });
      this.segs.set(service, list);
    }
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  /** Called with every stored part (for live follow). */
  onAppend(fn: (service: string, blob: Buffer) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Stores a batch; returns how many records were new and how many were duplicates. */
  ingest(b: Batch): { stored: number; duplicates: number } {
    const total = b.parts.reduce((n, p) => n + p.count, 0);
    let parts = b.parts;
    let hdr: Partial<BlockHeader> = {};
    let seq = 0;
    if (b.agent !== undefined && b.seq !== undefined) {
      const last = b.seq + total - 1;
      const mark = this.hwm.get(b.agent) ?? 0;
      if (last <= mark) return { stored: 0, duplicates: total };
      const skip = Math.max(0, mark - b.seq + 1);
      parts = trimFront(parts, skip);
      seq = b.seq + skip - 1;
      hdr = { a: b.agent };
    } else if (b.chunk !== undefined) {
      if (this.recent.has(b.chunk)) return { stored: 0, duplicates: total };
      hdr = { c: b.chunk };
    }
    let stored = 0;
    for (const p of parts) {
      if (p.count === 0) continue;
      seq += p.count;
      // Each block's own last seq: a kill -9 between the blocks of one batch must leave a mark
      // that covers only the blocks written, so the resend stores the rest.
      const s = hdr.a !== undefined ? { s: seq } : {};
      this.write(p, { ...hdr, ...s, n: p.count, t0: p.tmin, t1: p.tmax });
      stored += p.count;
      // Per block: if a later block of this batch hits a full disk, the resend skips this one.
      if (hdr.a !== undefined) this.hwm.set(hdr.a, seq);
    }
    if (hdr.c !== undefined) this.remember(hdr.c);
    if (this.o.fsync === 'always') this.sync();
    for (const p of parts) for (const fn of this.listeners) fn(p.service, p.blob);
    return { stored, duplicates: total - stored };
  }

  services(): ServiceInfo[] {
    return [...this.segs.entries()]
      .map(([service, list]) => ({
        service,
        count: list.reduce((n, s) => n + s.count, 0),
        bytes: list.reduce((n, s) => n + s.size, 0),
        firstSeen: Math.min(...list.map((s) => s.tmin)),
        lastSeen: Math.max(...list.map((s) => s.tmax)),
      }))
      .filter((s) => s.count > 0)
      .sort((a, b) => a.service.localeCompare(b.service));
  }

  /** Segments of a service, oldest first. */
  segments(service: string): SegmentInfo[] {
    return [...(this.segs.get(service) ?? [])];
  }

  /** Entries of one segment within [since, until] (ms), in stored order. */
  readSegment(seg: SegmentInfo, since = -Infinity, until = Infinity): Entry[] {
    let data: Buffer;
    this.o.onSegmentRead?.();
    try {
      data = readFileSync(seg.file);
    } catch {
      return []; // deleted by retention meanwhile
    }
    const out: Entry[] = [];
    for (const { hdr, blob } of blocks(data)) {
      if (hdr.t1 < since || hdr.t0 > until) continue;
      for (const e of decodeEntries(blob)) {
        const ms = e.time.toMillis();
        if (ms >= since && ms <= until) out.push(e);
      }
    }
    return out;
  }

  /** Deletes segments past retention, then the oldest while over the size bound. */
  enforceRetention(now = Date.now()): number {
    let removed = 0;
    const cutoff = this.o.retentionMs ? now - this.o.retentionMs : -Infinity;
    for (const [service, list] of this.segs) {
      const active = list[list.length - 1];
      if (active && !active.closed && active.tmax < cutoff && active.count > 0) this.close(service);
      for (const s of list.filter((x) => x.closed && x.tmax < cutoff)) {
        this.remove(s);
        removed++;
      }
    }
    if (this.o.maxBytes) {
      const all = [...this.segs.values()].flat();
      let bytes = all.reduce((n, s) => n + s.size, 0);
      const closed = all.filter((s) => s.closed).sort((a, b) => a.tmax - b.tmax);
      while (bytes > this.o.maxBytes && closed.length > 0) {
        const s = closed.shift()!;
        bytes -= s.size;
        this.remove(s);
        removed++;
      }
    }
    return removed;
  }

  sync(): void {
    for (const fd of this.dirty) fdatasyncSync(fd);
    this.dirty.clear();
  }

  close(service?: string): void {
    if (service === undefined) {
      clearInterval(this.timer);
      for (const s of [...this.fds.keys()]) this.close(s);
      this.checkpoint();
      return;
    }
    const fd = this.fds.get(service);
    const list = this.segs.get(service);
    const seg = list?.[list.length - 1];
    if (!seg || seg.closed) return;
    if (fd !== undefined) {
      if (this.o.fsync !== 'never') fdatasyncSync(fd);
      closeSync(fd);
      this.dirty.delete(fd);
      this.fds.delete(service);
    }
    seg.closed = true;
    this.checkpoint();
    try {
      writeFileSync(seg.file.replace(/\.seg$/, '.idx'), JSON.stringify(seg));
    } catch (err) {
      // Without its index a segment is rebuilt from its blocks at open.
      if (this.noSpace(err) === err) throw err;
    }
  }

  private tick(): void {
    this.sync();
    this.checkpoint();
  }

  /** Until when the data dir counts as full after a write failed for lack of space (ms). */
  private noSpaceUntil = 0;

  /** A write failed for lack of space within the last 5 s (readiness, refusal logging). */
  get diskFull(): boolean {
    return Date.now() < this.noSpaceUntil;
  }

  /** DiskFullError for ENOSPC/EDQUOT (and remember it for `diskFull`); other errors as they are. */
  private noSpace(err: unknown): unknown {
    const code = noSpaceCode(err);
    if (!code) return err;
    this.noSpaceUntil = Date.now() + 5000;
    return new DiskFullError(this.o.dir, code);
  }

  // The dedup marks are also in the blocks (recovered at open), so on a full disk the
  // checkpoint is skipped and tried again on the next tick.
  private checkpoint(): void {
    const cp = join(this.o.dir, 'dedup.json');
    try {
      writeFileSync(`${cp}.tmp`, JSON.stringify({ hwm: Object.fromEntries(this.hwm) }));
      renameSync(`${cp}.tmp`, cp);
    } catch (err) {
      if (this.noSpace(err) === err) throw err;
    }
  }

  private remember(chunk: string): void {
    this.recent.add(chunk);
    if (this.recent.size > (this.o.recentChunks ?? 100_000))
      this.recent.delete(this.recent.values().next().value!);
  }

  private write(p: Part, hdr: BlockHeader): void {
    let list = this.segs.get(p.service);
    if (!list) {
      list = [];
      this.segs.set(p.service, list);
    }
    const last = list[list.length - 1];
    if (last && !last.closed && last.size >= (this.o.segmentBytes ?? 64 << 20)) {
      this.close(p.service);
    }
    try {
      this.writeBlock(p, hdr, list);
    } catch (err) {
      throw this.noSpace(err);
    }
  }

  /** Appends one block; on a failed write cuts the segment back to its last whole block. */
  private writeBlock(p: Part, hdr: BlockHeader, list: SegmentInfo[]): void {
    let seg = list[list.length - 1];
    if (!seg || seg.closed) {
      const id = (seg?.id ?? 0) + 1;
      const dir = join(this.o.dir, serviceDir(p.service));
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${id}.seg`);
      seg = emptySegment(p.service, id, file, false);
      list.push(seg);
    }
    let fd = this.fds.get(p.service);
    if (fd === undefined) {
      fd = openSync(seg.file, 'a');
      this.fds.set(p.service, fd);
    }
    const h = Buffer.from(JSON.stringify(hdr));
    const head = Buffer.allocUnsafe(HEAD);
    head.writeUInt32BE(p.blob.length, 0);
    head.writeUInt16BE(h.length, 4);
    try {
      for (const b of [Buffer.concat([head, h]), p.blob]) {
        let off = 0;
        while (off < b.length) off += writeSync(fd, b, off, b.length - off);
      }
    } catch (err) {
      ftruncateSync(fd, seg.size);
      throw err;
    }
    // "never" leaves syncing to the kernel: nothing is marked for the once-a-second fdatasync.
    if (this.o.fsync !== 'never') this.dirty.add(fd);
    seg.size += HEAD + h.length + p.blob.length;
    seg.count += p.count;
    seg.tmin = Math.min(seg.tmin, p.tmin);
    seg.tmax = Math.max(seg.tmax, p.tmax);
  }

  private remove(s: SegmentInfo): void {
    const list = this.segs.get(s.service);
    if (list) list.splice(list.indexOf(s), 1);
    for (const f of [s.file, s.file.replace(/\.seg$/, '.idx')]) {
      try {
        unlinkSync(f);
      } catch {
        // already gone
      }
    }
  }

  /** Rebuilds a segment's index (and the dedup marks) from its blocks; cuts a torn tail. */
  private recover(service: string, id: number, file: string, closed: boolean): SegmentInfo {
    const data = readFileSync(file);
    const seg = emptySegment(service, id, file, closed);
    for (const { hdr, end } of blocks(data)) {
      seg.size = end;
      seg.count += hdr.n;
      seg.tmin = Math.min(seg.tmin, hdr.t0);
      seg.tmax = Math.max(seg.tmax, hdr.t1);
      if (hdr.a !== undefined && hdr.s !== undefined)
        this.hwm.set(hdr.a, Math.max(this.hwm.get(hdr.a) ?? 0, hdr.s));
      if (hdr.c !== undefined) this.remember(hdr.c);
    }
    if (seg.size < data.length) {
      const fd = openSync(file, 'r+');
      ftruncateSync(fd, seg.size);
      closeSync(fd);
    }
    if (closed) writeFileSync(file.replace(/\.seg$/, '.idx'), JSON.stringify(seg));
    return seg;
  }
}

/** Whole blocks of a segment's bytes (a torn tail is ignored). */
function* blocks(data: Buffer): Generator<{ hdr: BlockHeader; blob: Buffer; end: number }> {
  let pos = 0;
  while (pos + HEAD <= data.length) {
    const blobLen = data.readUInt32BE(pos);
    const hdrLen = data.readUInt16BE(pos + 4);
    const end = pos + HEAD + hdrLen + blobLen;
    if (end > data.length) return;
    let hdr: BlockHeader;
    try {
      hdr = JSON.parse(data.subarray(pos + HEAD, pos + HEAD + hdrLen).toString()) as BlockHeader;
    } catch {
      return;
    }
    yield { hdr, blob: data.subarray(pos + HEAD + hdrLen, end), end };
    pos = end;
  }
}

/** Drops the first `skip` records of a run of parts (records already stored). */
export function trimFront(parts: Part[], skip: number): Part[] {
  const out: Part[] = [];
  for (const p of parts) {
    if (skip >= p.count) {
      skip -= p.count;
      continue;
    }
    if (skip > 0) {
      const offs = entryOffsets(p.blob);
      out.push({ ...p, count: p.count - skip, blob: p.blob.subarray(offs[skip]!) });
      skip = 0;
    } else out.push(p);
  }
  return out;
}
