/**
 * The forward input's native transport (`--forward-io native`, the default when the addon
 * loads). native/forward.c receives on the event loop without JavaScript per line: a Docker
 * Message frame is appended to the forward journal (`<buffer-dir>/forward-N.journal`) and acked
 * there. The journal is what makes that ack safe; this file feeds it into the durable buffer
 * afterwards, in batches: decode, attribute, one block per container per batch.
 *
 * Exactly once across a kill -9: every block this input appends carries its journal position
 * in the block meta (`j` = "seg:start:end:k:n": the batch's bytes [start, end) of journal file
 * seg, block k of its n). At start the buffer's newest such mark says how far the journal got:
 * a whole batch (k = n - 1) means resume at `end`; a batch cut off between its blocks is read
 * again and its first k + 1 blocks are skipped (the grouping depends only on the frames).
 * A sender's resend after a lost ack carries the same chunk id and is dropped (the chunks of
 * the journal before the resume point are remembered at start).
 *
 * Frames the C side does not vouch for (Forward, PackedForward, compressed, handshakes) come
 * here "deferred": they go through the same core as the node transport, in journal order, and
 * are acked from here; their blocks carry the current mark too.
 */
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  close as closeFd,
  openSync,
  renameSync,
  readFileSync,
  readdirSync,
  unlink,
  existsSync,
  unlinkSync,
} from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DiskFullError, errorMessage, noSpaceCode } from '../../common/errors.js';
import { decodeFrame, plainMessage, type Frame, type PlainMessage } from '../forward/codec.js';
import { needsMeta, type ContainerMeta } from '../enrich.js';
import type { InputContext } from './input.js';
import type { ForwardCore, Run } from './forward-core.js';
import type { ForwardListener, ForwardTransportConfig } from './forward.js';

/** The addon's exports (contract at the top of native/forward.c). */
export interface ForwardAddon {
  create(
    onEvent: (kind: number, a: unknown, b?: unknown, c?: unknown) => void,
    batchMs?: number,
  ): unknown;
  listenTcp(h: unknown, family: number, address: string, port: number): number;
  listenUnix(h: unknown, path: string): void;
  setJournal(
    h: unknown,
    fd: number,
    offset: number,
    sync: boolean,
    size: number,
    zero: boolean,
  ): void;
  write(h: unknown, conn: number, bytes: Buffer): void;
  resumeConn(h: unknown, conn: number): void;
  closeConn(h: unknown, conn: number): void;
  pause(h: unknown): void;
  resume(h: unknown): void;
  stats(h: unknown): Record<string, number | string>;
  close(h: unknown): void;
}

const ADDON = new URL('../native/forward.node', import.meta.url).pathname;

/** Loads the addon: its exports, or why it cannot be used. */
export function loadForwardAddon(): ForwardAddon | Error {
  try {
    const a = createRequire(import.meta.url)(ADDON) as Partial<ForwardAddon>;
    if (typeof a.create !== 'function' || typeof a.setJournal !== 'function')
      return new Error(`${ADDON}: not logsd's forward addon`);
    return a as ForwardAddon;
  } catch (err) {
    return new Error(errorMessage(err));
  }
}

/**
 * Size of a journal file (fallocated and mapped by the addon; a bigger frame gets a bigger file).
 * Records: [u32 little-endian length][frame]; a 0 length (never written) ends the file.
 */
export const JOURNAL_FILE_BYTES = 1 << 20;
/**
 * A live journal file past this size is replaced as soon as everything in it is in the buffer,
 * and the old one deleted at once: the journal holds little more than what the buffer has not
 * taken yet (a journal of consumed frames must not keep a full disk full).
 */
export const JOURNAL_IDLE_ROLL_BYTES = 256 << 10;
const JOURNAL_RE = /^forward-(\d{12})\.journal$/;
const journalName = (n: number) => `forward-${String(n).padStart(12, '0')}.journal`;
/**
 * While frames keep coming, the receiver hands them over every this many ms (a frame after a
 * quiet spell as long goes after 1 ms): the per-batch costs (a call, a buffer write per block,
 * the shipper's send) are paid per ~20 ms of lines, not per millisecond's ~10. It adds at most
 * this much to a line's way to `logs tail -f`; the ack does not wait for it.
 */
export const JOURNAL_BATCH_MS = 20;
/** Replayed journal bytes are handled in batches of about this much. */
const REPLAY_BATCH = 256 << 10;
/** Unhandled journal bytes above which the receiver stops reading (and so acking). */
const QUEUE_HIGH = 32 << 20;
const QUEUE_LOW = 8 << 20;

export interface JournalMark {
  seg: number;
  start: number;
  end: number;
  k: number;
  n: number;
}

export function formatMark(m: JournalMark): string {
  return `${m.seg}:${m.start}:${m.end}:${m.k}:${m.n}`;
}

/** The mark of a block meta `j`, or undefined for anything else (e.g. an older agent's block). */
export function parseMark(j: string | undefined): JournalMark | undefined {
  if (j === undefined) return undefined;
  const m = /^(\d+):(\d+):(\d+):(\d+):(\d+)$/.exec(j);
  if (!m) return undefined;
  const [seg, start, end, k, n] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (start > end || k >= n) return undefined;
  return { seg, start, end, k, n };
}

/** Where to resume: journal file, byte offset, and blocks of the batch there already stored. */
export function resumePoint(mark: JournalMark | undefined): {
  seg: number;
  offset: number;
  skip: number;
} {
  if (!mark) return { seg: 0, offset: 0, skip: 0 };
  if (mark.k === mark.n - 1) return { seg: mark.seg, offset: mark.end, skip: 0 };
  return { seg: mark.seg, offset: mark.start, skip: mark.k + 1 };
}

/**
 * End offsets of the whole journal records [u32 LE length][frame] in `buf`. It stops at a 0
 * length (the rest of the file was never written) or at a record cut short (the agent died
 * inside it, before its length was stored, or the file is damaged): nothing after was acked.
 */
export function recordEnds(buf: Buffer): number[] {
  const ends: number[] = [];
  let p = 0;
  while (p + 4 <= buf.length) {
    const len = buf.readUInt32LE(p);
    if (len === 0 || p + 4 + len > buf.length) break;
    ends.push(p + 4 + len);
    p += 4 + len;
  }
  return ends;
}

type Item =
  | { kind: 'batch'; seg: number; start: number; bytes: Buffer; skip: number }
  | { kind: 'deferred'; conn: number; frame: Buffer };

export async function listenNative(
  ctx: InputContext,
  core: ForwardCore,
  cfg: ForwardTransportConfig,
  addon: ForwardAddon,
): Promise<ForwardListener> {
  const { log, buffer, shipper } = ctx;
  const { recordsIn, malformed, resent } = core.counters;
  const dir = cfg.bufferDir;

  // ---- recovery: what the journal holds past the buffer's newest mark ----
  const segs = readdirSync(dir)
    .map((n) => JOURNAL_RE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const mark = parseMark(buffer.lastMark);
  const from = resumePoint(mark);
  /** Sender chunks seen in the journal (resends after a lost ack carry the same one). */
  const recent = new ChunkMemory(50_000);
  const queue: Item[] = [];
  let queuedBytes = 0;
  for (const seg of segs) {
    const path = join(dir, journalName(seg));
    if (seg < from.seg) {
      unlinkSync(path); // wholly in the buffer
      continue;
    }
    const data = readFileSync(path);
    const ends = recordEnds(data);
    const whole = ends.length > 0 ? ends[ends.length - 1]! : 0;
    if (whole + 4 <= data.length && data.readUInt32LE(whole) !== 0)
      log.warn(
        { file: path, offset: whole },
        'forward journal: a last record cut short (the agent died writing it; never acked) is left out',
      );
    let start = seg === from.seg ? from.offset : 0;
    if (start > whole) start = whole;
    // Chunks before the resume point: only remembered.
    let p = 0;
    for (const e of ends) {
      if (e > start) break;
      const chunk = chunkOf(data.subarray(p + 4, e));
      if (chunk) recent.add(chunk);
      p = e;
    }
    // The rest, in batches; the first one is the cut-off batch when skip > 0, replayed exactly
    // as it was (up to its recorded end), so it groups into the same blocks.
    let skip = seg === from.seg ? from.skip : 0;
    const cutEnd = skip > 0 && mark ? mark.end : 0;
    let bStart = start;
    let at = start;
    for (const e of ends) {
      if (e <= start) continue;
      at = e;
      if (skip > 0 ? at >= cutEnd : at - bStart >= REPLAY_BATCH) {
        queue.push({ kind: 'batch', seg, start: bStart, bytes: data.subarray(bStart, at), skip });
        queuedBytes += at - bStart;
        skip = 0;
        bStart = at;
      }
    }
    if (at > bStart) {
      queue.push({ kind: 'batch', seg, start: bStart, bytes: data.subarray(bStart, at), skip });
      queuedBytes += at - bStart;
    }
  }
  const replayed = queue.length;

  // ---- the live journal file: always a new one (the old ones are read above) ----
  let seg = Math.max((segs[segs.length - 1] ?? 0) + 1, from.seg, 1);
  let jfd = -1;
  let jsize = 0;
  let dirty = false;
  let syncing = false;
  const sync = cfg.fsync === 'always';
  /** Journal files still on disk below the live one (deleted once wholly in the buffer). */
  const older = segs.filter((s) => s >= from.seg && s < seg);

  // ---- the consumer: journal order, one item at a time ----
  /** Mark of the last thing stored: deferred frames' blocks carry it. */
  let pos = mark ? { seg: mark.seg, offset: mark.end } : { seg: segs[0] ?? seg, offset: 0 };
  let busy = false;
  let paused = false;
  let idle: (() => void) | undefined;
  /** The receiver is closed: acks and resumes have nowhere to go. */
  let closed = false;

  let delivered = 0;
  const h = addon.create((kind, a, b, c) => {
    if (kind === 0) {
      const bytes = a as Buffer;
      delivered += bytes.length;
      const start = b as number;
      queue.push({ kind: 'batch', seg, start, bytes, skip: 0 });
      queuedBytes += bytes.length;
      jsize = start + bytes.length;
      dirty = true;
    } else if (kind === 1) {
      queue.push({ kind: 'deferred', conn: a as number, frame: b as Buffer });
    } else if (kind === 2) {
      malformed.inc();
      log.warn({ peer: b, err: c }, 'malformed forward input; closing connection');
      return;
    } else if (kind === 4) {
      openJournal(seg + 1, a as number); // the live file is full
      return;
    } else if (kind === 3) {
      // The journal is full and no new file could be made (logged there), or a sync failed.
      if (!diskFull) log.error({ dir, err: a }, 'forward journal: input paused, nothing is acked');
      // Counted as a stall; woken when the shipper frees space, or after a second.
      void ctx.waitForSpace().then(() => {
        if (!closed && !paused) addon.resume(h);
      });
      return;
    }
    if (queuedBytes > QUEUE_HIGH) updatePause();
    if (!busy) pump();
  }, JOURNAL_BATCH_MS);

  let diskFull = false;
  /** Size of the live journal file. */
  let jcapNow = 0;
  /**
   * Makes journal file `next` the live one, with room for `need` bytes (the addon fallocates and
   * maps it, after handing over the last bytes of the old file). False when it cannot (a full
   * disk): the addon then pauses, and retries once resumed.
   */
  function openJournal(next: number, need = 0): boolean {
    const path = join(dir, journalName(next));
    const size = Math.max(JOURNAL_FILE_BYTES, need + 4);
    let fd: number;
    try {
      fd = openSync(path, 'w+');
    } catch (err) {
      log.warn({ dir, err: errorMessage(err) }, 'forward journal: cannot start a new file');
      return false;
    }
    try {
      addon.setJournal(h, fd, 0, sync, size, false);
    } catch (err) {
      closeSync(fd);
      unlink(path, () => undefined);
      const code = noSpaceCode(err);
      // A full disk: the live file, every record of it in the buffer, is used again in place
      // (renamed to the next name and cleared: its blocks are allocated already).
      if (code && reuseLive(next, need)) return true;
      if (code) {
        if (!diskFull)
          log.error(
            { dir, err: errorMessage(err) },
            `${new DiskFullError(dir, code).message}; input paused, nothing is acked until it is written`,
          );
        diskFull = true;
      } else log.warn({ dir, err: errorMessage(err) }, 'forward journal: cannot start a new file');
      return false;
    }
    if (diskFull) log.info({ dir }, 'forward journal has space again; input resumed');
    diskFull = false;
    const old = jfd;
    if (old >= 0) {
      older.push(seg);
      if (cfg.fsync === 'never') closeFd(old, () => undefined);
      else fdatasync(old, () => closeFd(old, () => undefined));
    }
    seg = next;
    jfd = fd;
    jsize = 0;
    jcapNow = size;
    return true;
  }

  /** See openJournal: false unless the live file is wholly stored and big enough. */
  function reuseLive(next: number, need: number): boolean {
    if (jfd < 0 || busy || queue.length > 0 || need + 4 > jcapNow) return false;
    if (Number(addon.stats(h).journalBytes) !== delivered) return false;
    try {
      renameSync(join(dir, journalName(seg)), join(dir, journalName(next)));
      addon.setJournal(h, jfd, 0, sync, jcapNow, true);
    } catch (err) {
      log.warn({ dir, err: errorMessage(err) }, 'forward journal: cannot reuse the live file');
      return false;
    }
    seg = next;
    jsize = 0;
    return true;
  }

  /** Deletes the journal files before `upTo` (their every frame is in the buffer). */
  function dropOlder(upTo: number): void {
    while (older.length > 0 && older[0]! < upTo) {
      const s = older.shift()!;
      unlink(join(dir, journalName(s)), () => undefined);
    }
  }

  const sinkFor = (conn: number) => ({
    write: (bytes: Buffer) => {
      if (!closed) addon.write(h, conn, bytes);
    },
  });
  const resumeConn = (conn: number) => {
    if (!closed) addon.resumeConn(h, conn);
  };
  const closeConn = (conn: number) => {
    if (!closed) addon.closeConn(h, conn);
  };

  /** Handles queued items in order; returns when the queue is empty (or stopped). */
  function pump(): void {
    busy = true;
    for (;;) {
      const item = queue.shift();
      if (!item) break;
      let r: true | Promise<void>;
      try {
        r = item.kind === 'batch' ? storeBatch(item) : storeDeferred(item);
      } catch (err) {
        // Nothing here should throw (the disk-full case waits); say it loudly, keep going.
        log.error({ err: errorMessage(err) }, 'forward input: cannot store a journal batch');
        r = true;
      }
      if (item.kind === 'batch') queuedBytes -= item.bytes.length;
      if (buffer.full) updatePause();
      if (r !== true) {
        r.then(
          () => pump(),
          (err: unknown) => {
            log.error({ err: errorMessage(err) }, 'forward input: cannot store a journal batch');
            pump();
          },
        );
        return;
      }
    }
    busy = false;
    // Everything handed over is in the buffer: an old file can go, and a live one that has
    // grown is replaced by a fresh one, so the journal keeps little of what the buffer has.
    if (jsize >= JOURNAL_IDLE_ROLL_BYTES && !closed) openJournal(seg + 1); // may store more first
    if (!busy && queue.length === 0) dropOlder(seg);
    updatePause();
    shipper.kick();
    idle?.();
  }

  function storeDeferred(item: { conn: number; frame: Buffer }): true | Promise<void> {
    const m = formatMark({ seg: pos.seg, start: pos.offset, end: pos.offset, k: 0, n: 1 });
    let r: true | Promise<void>;
    try {
      r = core.handleFrame(sinkFor(item.conn), decodeFrame(item.frame), m);
    } catch (err) {
      // The frame, or its entries (a packed blob, a gzip body), do not decode: closed like the
      // node transport does.
      malformed.inc();
      log.warn({ err: errorMessage(err) }, 'malformed forward input; closing connection');
      closeConn(item.conn);
      return true;
    }
    if (r === true) {
      resumeConn(item.conn);
      return true;
    }
    return r.then(
      () => resumeConn(item.conn),
      (err: unknown) => {
        closeConn(item.conn);
        throw err;
      },
    );
  }

  /**
   * Decodes a batch of journaled frames, groups their records by (container, tag, service
   * field) in first-seen order — nothing else, so a replay groups the same way — and appends
   * one block per group, each with the batch's mark.
   */
  function storeBatch(item: {
    seg: number;
    start: number;
    bytes: Buffer;
    skip: number;
  }): true | Promise<void> {
    const { bytes } = item;
    const groups = new Map<string, Run>();
    let p = 0;
    let records = 0;
    const step = (): true | Promise<void> => {
      while (p + 4 <= bytes.length) {
        const e = p + 4 + bytes.readUInt32LE(p);
        if (e > bytes.length || e === p + 4) break; // cannot happen: whole records only
        // Docker's own line, read in place; anything else is decoded.
        const m = plainMessage(bytes, p + 4, e);
        if (m) {
          p = e;
          if (m.chunk) {
            if (recent.has(m.chunk) || buffer.seenChunk(m.chunk)) {
              resent.inc();
              continue;
            }
            recent.add(m.chunk);
          }
          if (!needsMeta({ service: m.service })) addPlain(m, undefined);
          else if (core.meta.known(m.container_id)) addPlain(m, core.meta.resolved(m.container_id));
          else
            return core.meta.get(m.container_id).then((meta) => {
              addPlain(m, meta);
              const r = step();
              return r === true ? undefined : r;
            });
          continue;
        }
        let f: Frame;
        try {
          f = decodeFrame(bytes.subarray(p + 4, e));
        } catch (err) {
          malformed.inc();
          log.error(
            { seg: item.seg, offset: item.start + p, err: errorMessage(err) },
            'forward journal: a frame the receiver accepted does not decode; skipped',
          );
          p = e;
          continue;
        }
        p = e;
        if (f.kind !== 'events') continue;
        const chunk = f.option.chunk;
        if (chunk) {
          if (recent.has(chunk) || buffer.seenChunk(chunk)) {
            resent.inc();
            continue;
          }
          recent.add(chunk);
        }
        const entries = f.entries ?? [];
        const metas = core.metasNow(entries);
        if (!metas) {
          // A container not known yet: wait for its metadata (bounded), then go on in order.
          return Promise.all(
            entries.map((x) =>
              typeof x.record.container_id === 'string'
                ? core.meta.get(x.record.container_id)
                : undefined,
            ),
          ).then((ms) => {
            add(f as Frame & { kind: 'events' }, ms);
            const r = step();
            return r === true ? undefined : r;
          });
        }
        add(f, metas);
      }
      return finish();
    };
    /**
     * The batch's group of (container, tag, service field): one block each. The plain and the
     * decoded path must group a frame alike (a resume after a kill skips blocks by their index).
     */
    const groupOf = (id: string, tag: string, serviceField: string, service: string, t: number) => {
      const key = `${id}\0${tag}\0${serviceField}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { service, tmin: t, tmax: t, bufs: [] }));
      return g;
    };
    let last: { m: PlainMessage; g: Run } | undefined; // most lines follow one of their container
    const addPlain = (m: PlainMessage, meta: ContainerMeta | undefined) => {
      const r = core.preparePlain(m, meta);
      const g =
        last &&
        last.m.container_id === m.container_id &&
        last.m.tag === m.tag &&
        (last.m.service ?? '') === (m.service ?? '')
          ? last.g
          : groupOf(m.container_id, m.tag, m.service ?? '', r.service, r.ms);
      if (r.ms < g.tmin) g.tmin = r.ms;
      if (r.ms > g.tmax) g.tmax = r.ms;
      g.bufs.push(r.bytes);
      last = { m, g };
      records++;
    };
    const add = (f: Frame & { kind: 'events' }, metas: (ContainerMeta | undefined)[]) => {
      const entries = f.entries ?? [];
      const r0 = entries[0]?.record;
      const id = String(r0?.container_id ?? '');
      const serviceField = typeof r0?.service === 'string' ? r0.service : '';
      for (const run of core.prepare(f.tag, entries, metas)) {
        const g = groupOf(id, f.tag, serviceField, run.service, run.tmin);
        if (run.tmin < g.tmin) g.tmin = run.tmin;
        if (run.tmax > g.tmax) g.tmax = run.tmax;
        for (const b of run.bufs) g.bufs.push(b);
      }
      records += entries.length;
    };
    const finish = (): true | Promise<void> => {
      const all = [...groups.values()];
      const end = item.start + bytes.length;
      let k = item.skip;
      const appendFrom = (): true | Promise<void> => {
        for (; k < all.length; k++) {
          if (buffer.full) return waitRoom().then(() => toPromise(appendFrom()));
          const g = all[k]!;
          const ok = core.commit(
            [g],
            undefined,
            formatMark({ seg: item.seg, start: item.start, end, k, n: all.length }),
          );
          if (!ok) return waitRoom().then(() => toPromise(appendFrom()));
          if (buffer.full) updatePause();
        }
        pos = { seg: item.seg, offset: end };
        dropOlder(item.seg);
        recordsIn.inc(records);
        return true;
      };
      return appendFrom();
    };
    return step();
  }

  /**
   * Reading (and so acking) stops while the buffer is full — checked after every append, so at
   * most one batch (JOURNAL_BATCH_MS of lines, at most 256 KiB plus a read) is journaled past
   * the bound — or while more than
   * QUEUE_HIGH journal bytes wait here; it resumes below QUEUE_LOW with room in the buffer.
   */
  let roomWaiter = false;
  function updatePause(): void {
    if (closed) return;
    const want = buffer.full || queuedBytes > (paused ? QUEUE_LOW : QUEUE_HIGH);
    if (want !== paused) {
      paused = want;
      if (want) addon.pause(h);
      else addon.resume(h);
    }
    if (paused && buffer.full && !roomWaiter) {
      roomWaiter = true;
      void (async () => {
        do await ctx.waitForSpace();
        while (buffer.full && !closed);
        roomWaiter = false;
        updatePause();
      })();
    }
  }

  /** Buffer full (or disk full): stop reading until there is room. */
  async function waitRoom(): Promise<void> {
    updatePause();
    do await ctx.waitForSpace();
    while (buffer.full && !closed);
  }

  if (!openJournal(seg))
    throw new Error(`forward journal: cannot create ${join(dir, journalName(seg))}`);
  const syncTimer =
    cfg.fsync === 'interval'
      ? setInterval(() => {
          if (!dirty || syncing) return;
          dirty = false;
          syncing = true;
          const fd = jfd;
          fdatasync(fd, (err) => {
            syncing = false;
            if (err && fd === jfd) dirty = true;
          });
        }, 1000)
      : undefined;
  syncTimer?.unref();

  let port = 0;
  try {
    if (cfg.listen) {
      let host = cfg.listen.host;
      if (!isIP(host)) host = (await lookup(host)).address;
      port = addon.listenTcp(h, isIP(host) === 6 ? 6 : 4, host, cfg.listen.port);
    }
    if (cfg.unixSocket) {
      if (existsSync(cfg.unixSocket)) unlinkSync(cfg.unixSocket);
      addon.listenUnix(h, cfg.unixSocket);
    }
  } catch (err) {
    addon.close(h);
    closeSync(jfd);
    throw err;
  }
  if (replayed > 0) {
    log.info(
      { batches: replayed, bytes: queuedBytes, from: { seg: from.seg, offset: from.offset } },
      'forward journal: storing what was acked before the restart',
    );
    pump();
  }

  return {
    port,
    pending: () =>
      queue.length +
      (busy ? 1 : 0) +
      (closed ? 0 : Number(addon.stats(h).journalBytes) - delivered > 0 ? 1 : 0),
    async stop() {
      addon.close(h); // hands over what it journaled last
      closed = true;
      if (busy || queue.length > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, 3000).unref();
          if (!busy) pump();
        });
      }
      clearInterval(syncTimer);
      try {
        if (cfg.fsync !== 'never') fdatasyncSync(jfd);
        closeSync(jfd);
      } catch {
        // best effort at shutdown
      }
    },
  };
}

/**
 * The last `n` or more chunk ids seen (up to 2n): two generations of sets, the older one dropped
 * whole when the newer one is full, so remembering a chunk costs one insert, never an eviction
 * walk.
 */
export class ChunkMemory {
  private cur = new Set<string>();
  private old = new Set<string>();
  constructor(private readonly n: number) {}
  add(chunk: string): void {
    if (this.cur.size >= this.n) {
      this.old = this.cur;
      this.cur = new Set();
    }
    this.cur.add(chunk);
  }
  has(chunk: string): boolean {
    return this.cur.has(chunk) || this.old.has(chunk);
  }
}

function toPromise(r: true | Promise<void>): Promise<void> {
  return r === true ? Promise.resolve() : r;
}

/** The chunk option of a journaled Message frame, without decoding its record. */
function chunkOf(frame: Buffer): string | undefined {
  try {
    const f = decodeFrame(frame);
    return f.kind === 'events' ? f.option.chunk : undefined;
  } catch {
    return undefined;
  }
}
