/**
 * The forward input's core, shared by its two transports (forward-node.ts: Node's net sockets;
 * forward-native.ts: the native receiver and its journal): container attribution, encoding
 * records into buffer blocks, the append with backpressure, and storing + acking one events
 * frame. A record whose container metadata is still being asked of dockerd waits for it
 * (bounded, see MetadataCache) instead of being filed under the wrong service.
 */
import type Docker from 'dockerode';
import { DiskFullError, errorMessage } from '../../common/errors.js';
import { MetadataCache, enrich, needsMeta, serviceOf, type ContainerMeta } from '../enrich.js';
import {
  decodeEntries,
  encodeAck,
  encodeEntry,
  type Entry,
  type Frame,
  type PlainMessage,
} from '../forward/codec.js';
import type { BlockMeta } from '../buffer.js';
import type { InputContext } from './input.js';
import { encodeRecord, recordBound, recordTail, type RecordLine } from './json-file.js';

export interface ForwardCoreConfig {
  /** dockerd socket for container metadata; undefined = records only. */
  dockerSocket?: string;
  /** Docker's containers directory, to read container metadata without asking dockerd. */
  containersDir?: string;
}

/** Where an ack goes: a connection of whichever transport received the frame. */
export interface AckSink {
  write(bytes: Buffer): void;
}

export type Run = { service: string; tmin: number; tmax: number; bufs: Buffer[] };

/**
 * What the transports (forward-node.ts, forward-native.ts) share: attribution, encoding into
 * buffer blocks, the append with backpressure, and the handling of one events frame.
 */
export type ForwardCore = ReturnType<typeof createForwardCore>;

export function createForwardCore(ctx: InputContext, cfg: ForwardCoreConfig) {
  const { log, metrics, buffer, hostname } = ctx;
  const recordsIn = metrics.counter('records_received_total', 'records received from log drivers');
  const malformed = metrics.counter(
    'malformed_total',
    'connections closed for malformed forward-protocol input',
  );
  const resent = metrics.counter(
    'chunks_resent_total',
    'chunks a sender resent after a lost ack (acked again, not stored twice)',
  );
  const abort = new AbortController();
  let dockerReady: (d: Docker | undefined) => void = () => undefined;
  const docker = cfg.dockerSocket
    ? new Promise<Docker | undefined>((resolve) => (dockerReady = resolve))
    : undefined;
  const meta = new MetadataCache(docker, cfg.containersDir);

  /** Container metadata each entry needs, or undefined when a lookup is still outstanding. */
  function metasNow(entries: Entry[]): (ContainerMeta | undefined)[] | undefined {
    const out: (ContainerMeta | undefined)[] = [];
    for (const e of entries) {
      const id = e.record.container_id;
      if (!needsMeta(e.record) || typeof id !== 'string') out.push(undefined);
      else if (meta.known(id)) out.push(meta.resolved(id));
      else return undefined;
    }
    return out;
  }

  /**
   * Per container: the service and encoded constant tail of its plain Docker records, valid
   * while the inputs they came from (name, `service` field, metadata, tag) are the same.
   */
  type Tail = {
    name: string;
    field: string | undefined;
    meta: ContainerMeta | undefined;
    tag: string;
    service: string;
    tail: Buffer;
  };
  const tails = new Map<string, Tail>();

  /** The cached tail of a container's plain records, made again when one of its inputs changed. */
  function tailOf(
    id: string,
    name: string,
    field: string | undefined,
    meta: ContainerMeta | undefined,
    tag: string,
  ): Tail {
    let t = tails.get(id);
    if (!t || t.name !== name || t.field !== field || t.meta !== meta || t.tag !== tag) {
      const service = serviceOf(
        { container_id: id, container_name: name, service: field },
        meta,
        tag,
      );
      const tail = recordTail({
        service,
        host: hostname,
        container_name: name.replace(/^\//, ''),
        container_id: id,
      });
      t = { name, field, meta, tag, service, tail };
      if (tails.size > 10_000) tails.clear();
      tails.set(id, t);
    }
    return t;
  }

  /**
   * A Docker driver record with nothing but `container_id`, `container_name`, `source` and a
   * string `log` (optionally `service`) — the common case — is written straight to msgpack
   * with its container's cached tail, like the file input does; anything else goes through
   * `enrich` and the generic encoder. Same bytes either way (json-file.test.ts).
   */
  function encodePlain(
    e: Entry,
    meta: ContainerMeta | undefined,
    tag: string,
  ): { service: string; bytes: Buffer } | undefined {
    const r = e.record;
    let n = 0;
    for (const k in r) {
      n++;
      if (
        k !== 'container_id' &&
        k !== 'container_name' &&
        k !== 'source' &&
        k !== 'log' &&
        k !== 'service'
      )
        return undefined;
    }
    const id = r.container_id;
    const name = r.container_name;
    const source = r.source;
    if (n < 4 || typeof r.log !== 'string' || typeof id !== 'string' || typeof name !== 'string')
      return undefined;
    if (typeof source !== 'string' || (r.service !== undefined && typeof r.service !== 'string'))
      return undefined;
    const t = tailOf(id, name, r.service, meta, tag);
    return {
      service: t.service,
      bytes: encodeWithTail({ log: r.log, stream: source, time: e.time }, t.tail),
    };
  }

  /** A line's buffer entry: the msgpack record with the container's cached tail. */
  function encodeWithTail(line: RecordLine, tail: Buffer): Buffer {
    const out = Buffer.allocUnsafe(recordBound(line, tail));
    return out.subarray(0, encodeRecord(out, 0, line, tail));
  }

  /**
   * A Docker Message frame read in place (codec `plainMessage`) as its buffer entry: the same
   * bytes `prepare` makes of the decoded frame, its log copied, not decoded and encoded again.
   * `meta`: the container's metadata when the record has no `service` (as `metasNow`).
   */
  function preparePlain(
    m: PlainMessage,
    meta: ContainerMeta | undefined,
  ): { service: string; bytes: Buffer; ms: number } {
    const t = tailOf(m.container_id, m.container_name, m.service, meta, m.tag);
    const bytes = encodeWithTail({ log: m.log, stream: m.source, time: m.time }, t.tail);
    return { service: t.service, bytes, ms: m.time.toMillis() };
  }

  function prepare(tag: string, entries: Entry[], metas: (ContainerMeta | undefined)[]): Run[] {
    const out: Run[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const plain = encodePlain(e, metas[i], tag);
      let service: string;
      let bytes: Buffer;
      if (plain) ({ service, bytes } = plain);
      else {
        const rec = enrich(e.record, hostname, metas[i], tag);
        service = serviceOf(rec);
        bytes = encodeEntry(e.time, rec);
      }
      const ms = e.time.toMillis();
      let run = out[out.length - 1];
      if (!run || run.service !== service) {
        run = { service, tmin: ms, tmax: ms, bufs: [] };
        out.push(run);
      }
      if (ms < run.tmin) run.tmin = ms;
      if (ms > run.tmax) run.tmax = ms;
      run.bufs.push(bytes);
    }
    return out;
  }

  let diskFull: DiskFullError | undefined;
  /**
   * Appends the runs to the buffer, removing each from `runs` once stored (the chunk id goes
   * with the last). False when the disk is full: the rest stays in `runs` for a retry, nothing
   * is acked, and the caller waits (backpressure on the sender).
   */
  function commit(runs: Run[], chunk: string | undefined, mark?: string): boolean {
    try {
      while (runs.length > 0) {
        const r = runs[0]!;
        const m: BlockMeta = { service: r.service, tmin: r.tmin, tmax: r.tmax };
        if (chunk && runs.length === 1) m.chunk = chunk;
        if (mark) m.j = mark;
        buffer.append(r.bufs, m);
        runs.shift();
      }
    } catch (err) {
      if (!(err instanceof DiskFullError)) throw err;
      if (!diskFull)
        log.error(
          { dir: err.dir },
          `${err.message}; input paused, nothing is acked until it is stored`,
        );
      diskFull = err;
      return false;
    }
    if (diskFull) log.info({ dir: diskFull.dir }, 'buffer dir has space again; input resumed');
    diskFull = undefined;
    return true;
  }

  /** Stores what `commit` could not, once there is room, then acks the chunk. */
  async function commitWhenRoom(
    sock: AckSink,
    runs: Run[],
    chunk: string | undefined,
    records: number,
    mark?: string,
  ): Promise<void> {
    for (;;) {
      while (buffer.full) await ctx.waitForSpace();
      if (commit(runs, chunk, mark)) break;
    }
    if (chunk) sock.write(encodeAck(chunk));
    recordsIn.inc(records);
  }

  /** Chunks being stored right now: a resend of one (its ack was late) waits for it, not stores it. */
  const pending = new Map<string, Promise<void>>();

  /**
   * Stores one events frame and acks it (`mark`: the native transport's journal position, kept
   * in the block). Synchronous (the common case: no metadata lookup
   * pending, buffer not full) returns true; otherwise returns the promise of doing it.
   */
  function handleFrame(sock: AckSink, f: Frame, mark?: string): true | Promise<void> {
    if (f.kind !== 'events') return true; // heartbeats; acks/handshakes are not ours to answer
    const chunk = f.option.chunk;
    if (chunk && buffer.seenChunk(chunk)) {
      resent.inc();
      sock.write(encodeAck(chunk));
      return true;
    }
    const inFlight = chunk ? pending.get(chunk) : undefined;
    if (inFlight) {
      resent.inc();
      return inFlight.then(() => void sock.write(encodeAck(chunk!)));
    }
    const entries = f.entries ?? decodeEntries(f.blob!);
    const metas = metasNow(entries);
    let stored: Promise<void>;
    if (metas && !buffer.full) {
      const runs = prepare(f.tag, entries, metas);
      if (commit(runs, chunk, mark)) {
        // The ack first: the driver sends its next line only once it has it. Counting after.
        if (chunk) sock.write(encodeAck(chunk));
        recordsIn.inc(entries.length);
        return true;
      }
      stored = commitWhenRoom(sock, runs, chunk, entries.length, mark);
    } else {
      stored = (async () => {
        const ms = await Promise.all(
          entries.map((e) =>
            needsMeta(e.record) && typeof e.record.container_id === 'string'
              ? meta.get(e.record.container_id)
              : undefined,
          ),
        );
        await commitWhenRoom(sock, prepare(f.tag, entries, ms), chunk, entries.length, mark);
      })();
    }
    if (chunk) {
      pending.set(chunk, stored);
      void stored.finally(() => pending.delete(chunk)).catch(() => undefined);
    }
    return stored;
  }

  /** Loads the Docker client (about a second), once the transport listens. */
  function startDocker(): void {
    if (!cfg.dockerSocket) return;
    const socketPath = cfg.dockerSocket;
    setImmediate(() => {
      import('dockerode').then(
        ({ default: D }) => {
          const d = new D({ socketPath });
          dockerReady(d);
          meta.watch(abort.signal).catch((err: unknown) => {
            log.warn(
              { err: errorMessage(err) },
              'cannot watch docker events; metadata on first line only',
            );
          });
        },
        (err: unknown) => {
          log.error({ err: errorMessage(err) }, 'cannot load the Docker client; no metadata');
          dockerReady(undefined);
        },
      );
    });
  }

  return {
    meta,
    metasNow,
    prepare,
    preparePlain,
    commit,
    handleFrame,
    startDocker,
    counters: { recordsIn, malformed, resent },
    stop: () => abort.abort(),
  };
}
