/**
 * The file input (the default): reads every container's json-file log under `--containers-dir`
 * (`<id>/<id>-json.log` and its rotations), the way Fluent Bit, Vector and Promtail do, so a
 * container never waits for the agent and `docker logs` keeps working.
 *
 * Contract:
 *  - Docker's log file is the durable buffer: records are shipped from memory straight to the
 *    aggregator (each container is one ship source, each log file its own dedup id), and the
 *    per-container checkpoint (inode, offset, seq) moves only when the aggregator acks. After a
 *    kill -9 it resumes there; records sent but not acked come again with the same seqs (the
 *    dedup id is derived from the file), and the aggregator drops what it has. Zero lost, zero
 *    stored twice.
 *  - Metadata comes from the container's `config.v2.json`, read before its first line: service =
 *    label `service`, else env SERVICE_NAME, else label `com.docker.compose.service`, else the
 *    container name (`serviceOf`). No lookup, no race.
 *  - Rotation: a rotated file (still open) is read to its end before the next one. What a
 *    rotation deleted before it was read (agent stopped too long) is counted in
 *    `file_skipped_bytes_total` and logged once; compressed rotations are refused the same way.
 *  - New containers are seen within a second (fs.watch on the directory, plus a 1 s rescan); a
 *    removed container's file stays readable through the open descriptor and is read to its end.
 *  - Backpressure: at most `maxMemoryBytes` of unacked records are held; then reading stops (dockerd
 *    keeps writing to disk) until acks free room.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  statSync,
  watch,
  writeFileSync,
  type FSWatcher,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { errorMessage } from '../../common/errors.js';
import type { Block, FsyncPolicy } from '../buffer.js';
import type { ShipSource } from '../shipper.js';
import { metaFromConfig, serviceOf, type ContainerMeta } from '../enrich.js';
import {
  CheckpointError,
  decodeCheckpoints,
  encodeCheckpoints,
  type Checkpoint,
  type Checkpoints,
} from './checkpoint.js';
import {
  JsonLineError,
  LineJoiner,
  encodeRecord,
  parseLine,
  recordBound,
  recordTail,
  type JoinedLine,
} from './json-file.js';
import { decideStart, nextFile, parseLogName, type LogFile } from './rotation.js';
import type { Input, InputContext } from './input.js';

export interface FileInputConfig {
  containersDir: string;
  /** Where the checkpoint file lives (the agent's buffer directory). */
  stateDir: string;
  fsync: FsyncPolicy;
  /** Unacked record bytes held in memory before reading pauses (default 64 MiB). */
  maxMemoryBytes?: number;
  /** A line piece with no end after this long is stored as it is (default 5 s). */
  partialTimeoutMs?: number;
  /** Rescan interval (default 1 s); fs.watch makes most changes visible sooner. */
  scanMs?: number;
}

const ID = /^[0-9a-f]{64}$/;
const READ_BYTES = 1 << 20;
/** A file being written is polled this often (ms), until IDLE_POLLS polls find nothing. */
const POLL_MS = 5;
const IDLE_POLLS = 20;
const BLOCK_BYTES = 512 * 1024;

function fingerprint(fd: number): string {
  const b = Buffer.allocUnsafe(512);
  const n = readSync(fd, b, 0, 512, 0);
  const nl = b.subarray(0, n).indexOf(10);
  if (nl < 0) return '';
  return createHash('sha1').update(b.subarray(0, nl)).digest('hex').slice(0, 16);
}

interface FileBlock extends Block {
  n: number;
  /** Dedup id of the file this block came from. */
  src: string;
  inode: number;
  fp: string;
  /** Byte offset after the block's last line, and the file size seen then. */
  end: number;
  size: number;
}

interface OpenFile {
  fd: number;
  inode: number;
  fp: string;
  src: string;
}

class CheckpointFile {
  private cps: Checkpoints = {};
  private timer: NodeJS.Timeout | undefined;
  private lastSync = 0;
  private readonly file: string;

  constructor(
    dir: string,
    private readonly fsync: FsyncPolicy,
    log: InputContext['log'],
  ) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'file-checkpoints.json');
    if (existsSync(this.file)) {
      try {
        this.cps = decodeCheckpoints(readFileSync(this.file, 'utf8'));
      } catch (err) {
        if (!(err instanceof CheckpointError)) throw err;
        log.error(
          { file: this.file, err: err.message },
          'bad checkpoint file; reading every container log from its start',
        );
      }
    }
  }

  get(id: string): Checkpoint | undefined {
    return this.cps[id];
  }

  set(id: string, cp: Checkpoint | undefined): void {
    if (cp) this.cps[id] = cp;
    else delete this.cps[id];
    if (!this.timer) {
      this.timer = setTimeout(() => this.save(), 200);
      this.timer.unref();
    }
  }

  /** Write + rename (atomic); fdatasync before the rename every second (or always). */
  save(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, encodeCheckpoints(this.cps));
    const now = Date.now();
    if (this.fsync === 'always' || (this.fsync === 'interval' && now - this.lastSync >= 1000)) {
      const fd = openSync(tmp, 'r');
      fdatasyncSync(fd);
      closeSync(fd);
      this.lastSync = now;
    }
    renameSync(tmp, this.file);
  }
}

export async function startFileInput(ctx: InputContext, cfg: FileInputConfig): Promise<Input> {
  const { log, metrics, shipper, hostname } = ctx;
  const linesRead = metrics.counter('file_records_read_total', 'records read from json-file logs');
  const skippedBytes = metrics.counter(
    'file_skipped_bytes_total',
    'bytes of json-file logs lost before they were read (rotated away, or compressed)',
  );
  const badLines = metrics.counter('file_malformed_lines_total', 'json-file lines that were not');
  const following = metrics.gauge('file_containers', 'container logs being followed');
  const maxMem = cfg.maxMemoryBytes ?? 64 << 20;
  const partialMs = cfg.partialTimeoutMs ?? 5000;
  const cps = new CheckpointFile(cfg.stateDir, cfg.fsync, log);
  const agentId = ctx.buffer.agentId;
  let memBytes = 0;
  const readers = new Map<string, ContainerReader>();
  const readBuf = Buffer.allocUnsafe(READ_BYTES);
  let stage = Buffer.allocUnsafe(4 << 20);

  class ContainerReader implements ShipSource<number> {
    readonly id: string;
    private readonly blocks: FileBlock[] = [];
    private nextN = 1;
    private file: OpenFile | undefined;
    private carry: Buffer | undefined;
    /** Byte offset of the next unread byte (after `carry`). */
    private readPos = 0;
    private seq = 1;
    private joiner = new LineJoiner();
    private staged: { bytes: Buffer; count: number; tmin: number; tmax: number } | undefined;
    private lastData = Date.now();
    private tail: Buffer;
    private service: string;
    private removed = false;
    private finished = false;
    private watcher: FSWatcher | undefined;
    private warnedBad = false;
    private scheduled = false;
    private readonly maxSize: number | undefined;

    constructor(
      readonly cid: string,
      private readonly dir: string,
      meta: ContainerMeta & { maxSize?: number },
    ) {
      this.maxSize = meta.maxSize;
      this.id = `${agentId}:${cid}`;
      this.service = serviceOf({}, meta);
      this.tail = recordTail({
        service: this.service,
        host: hostname,
        container_name: meta.name,
        container_id: cid,
      });
      this.openStart();
      this.watchDir();
    }

    private watchDir(): void {
      try {
        this.watcher = watch(this.dir, () => this.schedule());
        this.watcher.on('error', () => undefined);
      } catch {
        // the 1 s rescan covers it
      }
    }

    private pollTimer: NodeJS.Timeout | undefined;
    private idlePolls = 0;

    /**
     * While a container writes, its file is polled every POLL_MS instead of watched: dockerd
     * writes each line with its own write(2), and an inotify event (and a JavaScript call) per
     * line costs more than the line. After IDLE_POLLS empty polls it is watched again, and looked
     * at once more for what came in between.
     */
    private poll(got: boolean): void {
      if (this.finished || stopped) return;
      if (got) {
        this.idlePolls = 0;
        this.watcher?.close();
        this.watcher = undefined;
      } else if (this.watcher) return;
      else if (++this.idlePolls >= IDLE_POLLS) {
        this.watchDir();
        this.schedule();
        return;
      }
      clearTimeout(this.pollTimer);
      this.pollTimer = setTimeout(() => {
        this.pollTimer = undefined;
        this.pump();
      }, POLL_MS);
    }

    get backlog(): number {
      return this.blocks.reduce((n, b) => n + b.count, 0);
    }

    ackedPos(): number {
      return this.blocks[0]?.n ?? this.nextN;
    }

    read(pos: number, maxBytes: number): { blocks: Block[]; next: number; id?: string } {
      let i = this.blocks.findIndex((b) => b.n >= pos);
      if (i < 0) return { blocks: [], next: pos };
      const out: FileBlock[] = [];
      let bytes = 0;
      const src = this.blocks[i]!.src;
      for (; i < this.blocks.length; i++) {
        const b = this.blocks[i]!;
        if (b.src !== src || (out.length > 0 && bytes + b.blob.length > maxBytes)) break;
        out.push(b);
        bytes += b.blob.length;
      }
      return { blocks: out, next: out[out.length - 1]!.n + 1, id: `${agentId}:${src}` };
    }

    ack(seq: number, id: string): void {
      const i = this.blocks.findIndex(
        (b) => `${agentId}:${b.src}` === id && b.firstSeq + b.count - 1 === seq,
      );
      if (i < 0) return;
      const done = this.blocks.splice(0, i + 1);
      for (const b of done) memBytes -= b.blob.length;
      const last = done[done.length - 1]!;
      cps.set(this.cid, {
        inode: last.inode,
        fp: last.fp,
        src: last.src,
        offset: last.end,
        seq: last.firstSeq + last.count,
        size: last.size,
      });
      if (this.finished && this.blocks.length === 0) this.close();
      resumeAll();
    }

    schedule(): void {
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }

    /** Reads what is there, up to the memory bound. */
    pump(): void {
      if (this.finished || stopped) return;
      if (!this.file) {
        this.openStart();
        if (!this.file && !existsSync(this.dir)) this.finish();
        if (this.file) this.schedule();
        return;
      }
      let got = 0;
      while (memBytes < maxMem) {
        const n = readSync(this.file.fd, readBuf, 0, READ_BYTES, this.readPos);
        if (n === 0) break;
        got += n;
        this.readPos += n;
        this.consume(readBuf.subarray(0, n), this.readPos - n);
      }
      if (got > 0) {
        this.lastData = Date.now();
        this.commit();
        shipper.kick();
        this.poll(true);
        return;
      }
      if (memBytes >= maxMem) return;
      // At the end of the file: a line piece waiting too long, a rotation, a removal.
      if (this.joiner.pending && Date.now() - this.lastData >= partialMs) {
        this.flushPieces();
        this.commit();
        shipper.kick();
      }
      this.checkRotation();
      this.poll(false);
    }

    private checkRotation(): void {
      const f = this.file!;
      const gone = !existsSync(this.dir);
      let rotated = false;
      if (!gone) {
        try {
          rotated = statSync(join(this.dir, `${this.cid}-json.log`)).ino !== f.inode;
        } catch {
          rotated = true;
        }
      }
      if (!gone && !rotated) return;
      if (fstatSync(f.fd).size > this.readPos) return this.schedule();
      // Read to its end: whatever piece is pending will never be continued.
      this.flushPieces();
      this.commit();
      shipper.kick();
      if (gone) {
        this.removed = true;
        this.finish();
        return;
      }
      // The old descriptor stays open until the next file is: if that is not there yet
      // (mid-rotation), the next pump looks again from the same place.
      for (let i = 0; i < 5; i++) {
        const next = nextFile(this.listFiles(), f.inode);
        if (i === 0 && next.refused.length)
          this.skip(
            next.refused.reduce((n, r) => n + r.size, 0),
            next.refused.map((r) => `${r.name} is compressed (compress=true): not read`),
          );
        if (!next.file) return;
        if (this.open(next.file, 0, 1)) {
          closeSync(f.fd);
          this.schedule();
          return;
        }
      }
    }

    /** Stores pending line pieces as they are; the position after them becomes safe. */
    private flushPieces(): void {
      for (const l of this.joiner.flush()) this.stageLine(l);
      this.safe = this.readPos - (this.carry?.length ?? 0);
    }

    private listFiles(): LogFile[] {
      let names: string[];
      try {
        names = readdirSync(this.dir);
      } catch {
        return [];
      }
      const out: LogFile[] = [];
      for (const name of names) {
        const p = parseLogName(this.cid, name);
        if (!p) continue;
        try {
          const st = statSync(join(this.dir, name));
          let fp = '';
          if (!p.compressed) {
            const fd = openSync(join(this.dir, name), 'r');
            try {
              fp = fingerprint(fd);
            } finally {
              closeSync(fd);
            }
          }
          out.push({ name, inode: st.ino, size: st.size, fp, ...p });
        } catch {
          // rotated or removed between readdir and stat: the next scan sees the new state
        }
      }
      return out;
    }

    /**
     * Opens `f` if its name still points to it: a rotation between listing and opening renames
     * files under us (then the name holds the next newer file, and opening it would skip one).
     * False when it did not open; the caller lists again.
     */
    private open(f: LogFile, offset: number, seq: number): boolean {
      try {
        const fd = openSync(join(this.dir, f.name), 'r');
        const inode = fstatSync(fd).ino;
        if (inode !== f.inode) {
          closeSync(fd);
          return false;
        }
        this.file = { fd, inode, fp: f.fp, src: '' };
        this.readPos = offset;
        this.safe = offset;
        this.seq = seq;
        this.carry = undefined;
        this.joiner = new LineJoiner();
        return true;
      } catch (err) {
        log.debug({ container: this.cid, err: errorMessage(err) }, 'cannot open log file yet');
        return false;
      }
    }

    /** Opens where `decideStart` says, listing again while rotations move the files. */
    private openStart(): void {
      for (let i = 0; i < 5 && !this.file; i++) {
        const d = decideStart(cps.get(this.cid), this.listFiles(), this.maxSize);
        if (i === 0 && d.skipped > 0) this.skip(d.skipped, d.reasons);
        if (!d.file) return;
        this.open(d.file, d.offset, d.seq);
      }
    }

    /** Dedup id of the open file: derived from it, so a restart gets the same one. */
    private src(): string {
      const f = this.file!;
      if (!f.src) {
        if (!f.fp) f.fp = fingerprint(f.fd);
        f.src = `${this.cid.slice(0, 12)}:${f.inode}:${f.fp}`;
      }
      return f.src;
    }

    private consume(chunk: Buffer, at: number): void {
      let buf = chunk;
      let base = at;
      if (this.carry) {
        base -= this.carry.length;
        buf = Buffer.concat([this.carry, chunk]);
        this.carry = undefined;
      }
      let pos = 0;
      for (;;) {
        const nl = buf.indexOf(10, pos);
        if (nl < 0) break;
        if (nl > pos) {
          try {
            const line = parseLine(buf.toString('utf8', pos, nl));
            const whole = this.joiner.push(line);
            if (whole) this.stageLine(whole);
          } catch (err) {
            if (!(err instanceof JsonLineError)) throw err;
            badLines.inc();
            if (!this.warnedBad) {
              this.warnedBad = true;
              log.warn(
                { container: this.cid, offset: base + pos, err: err.message },
                'skipping a line that is not json-file (logged once per container)',
              );
            }
          }
        }
        pos = nl + 1;
        if (!this.joiner.pending) this.safe = base + pos;
        if (this.staged && this.staged.bytes.length >= BLOCK_BYTES && !this.joiner.pending)
          this.commit();
      }
      if (pos < buf.length) this.carry = Buffer.from(buf.subarray(pos));
    }

    /** Offset after the last line at which no piece was pending (a block may end there). */
    private safe = 0;

    private stageLine(l: JoinedLine): void {
      const need = recordBound(l, this.tail);
      const st = this.staged;
      const used = st ? st.bytes.length : 0;
      if (used + need > stage.length)
        stage = Buffer.concat([stage.subarray(0, used)], Math.max(stage.length * 2, used + need));
      const end = encodeRecord(stage, used, l, this.tail);
      const ms = l.time.sec * 1000 + l.time.nsec / 1e6;
      if (!st) this.staged = { bytes: stage.subarray(0, end), count: 1, tmin: ms, tmax: ms };
      else {
        st.bytes = stage.subarray(0, end);
        st.count++;
        if (ms < st.tmin) st.tmin = ms;
        if (ms > st.tmax) st.tmax = ms;
      }
      linesRead.inc();
    }

    /** Turns the staged records into a block (only ever at a safe point). */
    private commit(): void {
      const st = this.staged;
      if (!st || this.joiner.pending || !this.file) return;
      this.staged = undefined;
      const blob = Buffer.from(st.bytes);
      const f = this.file;
      this.blocks.push({
        n: this.nextN++,
        src: this.src(),
        inode: f.inode,
        fp: f.fp,
        end: this.safe,
        size: this.readPos,
        firstSeq: this.seq,
        count: st.count,
        meta: { service: this.service, tmin: st.tmin, tmax: st.tmax },
        blob,
      });
      this.seq += st.count;
      memBytes += blob.length;
    }

    private skip(bytes: number, reasons: string[]): void {
      skippedBytes.inc(bytes);
      log.warn({ container: this.cid, bytes, reasons }, 'json-file log bytes skipped');
    }

    private finish(): void {
      this.finished = true;
      if (this.blocks.length === 0) this.close();
    }

    private close(): void {
      this.watcher?.close();
      this.watcher = undefined;
      clearTimeout(this.pollTimer);
      if (this.file) closeSync(this.file.fd);
      this.file = undefined;
      shipper.remove(this);
      readers.delete(this.cid);
      following.set(readers.size);
      if (this.removed || !existsSync(this.dir)) cps.set(this.cid, undefined);
      log.info({ container: this.cid }, 'container log finished');
    }
  }

  function resumeAll(): void {
    if (memBytes >= maxMem) return;
    for (const r of readers.values()) r.schedule();
  }

  const waitingMeta = new Map<string, number>();
  function scan(): void {
    let names: string[];
    try {
      names = readdirSync(cfg.containersDir);
    } catch (err) {
      if (!warnedDir) {
        warnedDir = true;
        log.warn(
          { dir: cfg.containersDir, err: errorMessage(err) },
          'containers directory not readable (yet); retrying every second',
        );
      }
      return;
    }
    for (const cid of names) {
      if (!ID.test(cid) || readers.has(cid)) continue;
      const dir = join(cfg.containersDir, cid);
      let meta: (ContainerMeta & { maxSize?: number }) | undefined;
      try {
        const hc = join(dir, 'hostconfig.json');
        meta = metaFromConfig(
          readFileSync(join(dir, 'config.v2.json'), 'utf8'),
          existsSync(hc) ? readFileSync(hc, 'utf8') : undefined,
        );
      } catch (err) {
        // Not written yet (or being replaced): wait for it, bounded, rather than guess a name.
        const since = waitingMeta.get(cid) ?? Date.now();
        waitingMeta.set(cid, since);
        if (Date.now() - since < 10_000) continue;
        log.warn(
          { container: cid, err: errorMessage(err) },
          'no readable config.v2.json after 10 s; service = container id',
        );
        meta = { name: cid.slice(0, 12), labels: {}, env: {} };
      }
      waitingMeta.delete(cid);
      if (!existsSync(dir)) continue;
      const r = new ContainerReader(cid, dir, meta);
      readers.set(cid, r);
      following.set(readers.size);
      shipper.add(r);
      r.schedule();
    }
    for (const r of readers.values()) r.schedule();
    // A new container whose config.v2.json is not written yet (the directory's creation woke us):
    // look again in a few ms, not at the next 1 s rescan. A container that prints and is removed
    // at once would otherwise be gone, with its file, before we ever opened it.
    const present = new Set(names);
    for (const cid of waitingMeta.keys()) if (!present.has(cid)) waitingMeta.delete(cid);
    if (waitingMeta.size > 0 && !stopped) queueScan();
  }

  let warnedDir = false;
  let stopped = false;
  let rootWatch: FSWatcher | undefined;
  let scanQueued = false;
  const queueScan = () => {
    if (scanQueued) return;
    scanQueued = true;
    setTimeout(() => {
      scanQueued = false;
      scan();
    }, 20);
  };
  const watchRoot = () => {
    if (rootWatch) return;
    try {
      rootWatch = watch(cfg.containersDir, queueScan);
      rootWatch.on('error', () => {
        rootWatch?.close();
        rootWatch = undefined;
      });
    } catch {
      // not there yet: the rescan retries
    }
  };
  watchRoot();
  scan();
  const timer = setInterval(() => {
    watchRoot();
    scan();
  }, cfg.scanMs ?? 1000);
  timer.unref();
  log.info(
    { containersDir: cfg.containersDir, containers: readers.size },
    'file input reading json-file logs',
  );
  return {
    name: 'file',
    async stop() {
      clearInterval(timer);
      rootWatch?.close();
      stopped = true;
      await shipper.flush(3000);
      cps.save();
    },
  };
}
