/**
 * The forward input: a Forward-protocol receiver for Docker's fluentd log driver (or any
 * Fluentd/Fluent Bit client). Each events frame is enriched, appended to the durable buffer and
 * only then acked. A connection sending malformed bytes is closed and counted; others carry on.
 * When the buffer is full the input stops reading (and so stops acking): backpressure, never a
 * silent drop. A record whose container metadata is still being asked of dockerd waits for it
 * (bounded, see MetadataCache) instead of being filed under the wrong service.
 *
 * It listens before anything slow is loaded (the Docker client comes after): the driver
 * reconnects with a growing backoff, so every second of start-up can cost several seconds of
 * dockerd's 10 s post-exit window (docs/logs.md, "Forward input and agent restarts").
 */
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { DiskFullError, errorMessage } from '../../common/errors.js';
import { MetadataCache, enrich, needsMeta, serviceOf, type ContainerMeta } from '../enrich.js';
import {
  ForwardDecoder,
  decodeEntries,
  encodeAck,
  encodeEntry,
  type Entry,
  type Frame,
} from '../forward/codec.js';
import type { BlockMeta } from '../buffer.js';
import type { Input, InputContext } from './input.js';
import { encodeRecord, recordBound, recordTail } from './json-file.js';

export interface ForwardInputConfig {
  listen?: { host: string; port: number };
  unixSocket?: string;
  /** dockerd socket for container metadata; undefined = records only. */
  dockerSocket?: string;
  /** Docker's containers directory, to read container metadata without asking dockerd. */
  containersDir?: string;
}

export interface ForwardInput extends Input {
  port: number;
}

type Run = { service: string; tmin: number; tmax: number; bufs: Buffer[] };

export async function startForwardInput(
  ctx: InputContext,
  cfg: ForwardInputConfig,
): Promise<ForwardInput> {
  const { log, metrics, buffer, shipper, hostname } = ctx;
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
    field: unknown;
    meta: ContainerMeta | undefined;
    tag: string;
    service: string;
    tail: Buffer;
  };
  const tails = new Map<string, Tail>();

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
    let t = tails.get(id);
    if (!t || t.name !== name || t.field !== r.service || t.meta !== meta || t.tag !== tag) {
      const service = serviceOf(r, meta, tag);
      const tail = recordTail({
        service,
        host: hostname,
        container_name: name.replace(/^\//, ''),
        container_id: id,
      });
      t = { name, field: r.service, meta, tag, service, tail };
      if (tails.size > 10_000) tails.clear();
      tails.set(id, t);
    }
    const line = { log: r.log, stream: source, time: e.time };
    const out = Buffer.allocUnsafe(recordBound(line, t.tail));
    return { service: t.service, bytes: out.subarray(0, encodeRecord(out, 0, line, t.tail)) };
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
  function commit(runs: Run[], chunk: string | undefined): boolean {
    try {
      while (runs.length > 0) {
        const r = runs[0]!;
        const m: BlockMeta = { service: r.service, tmin: r.tmin, tmax: r.tmax };
        if (chunk && runs.length === 1) m.chunk = chunk;
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
    sock: Socket,
    runs: Run[],
    chunk: string | undefined,
    records: number,
  ): Promise<void> {
    for (;;) {
      while (buffer.full) await ctx.waitForSpace();
      if (commit(runs, chunk)) break;
    }
    if (chunk) sock.write(encodeAck(chunk));
    recordsIn.inc(records);
  }

  /** Chunks being stored right now: a resend of one (its ack was late) waits for it, not stores it. */
  const pending = new Map<string, Promise<void>>();

  /**
   * Stores one events frame and acks it. Synchronous (the common case: no metadata lookup
   * pending, buffer not full) returns true; otherwise returns the promise of doing it.
   */
  function handleFrame(sock: Socket, f: Frame): true | Promise<void> {
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
      if (commit(runs, chunk)) {
        // The ack first: the driver sends its next line only once it has it. Counting after.
        if (chunk) sock.write(encodeAck(chunk));
        recordsIn.inc(entries.length);
        return true;
      }
      stored = commitWhenRoom(sock, runs, chunk, entries.length);
    } else {
      stored = (async () => {
        const ms = await Promise.all(
          entries.map((e) =>
            needsMeta(e.record) && typeof e.record.container_id === 'string'
              ? meta.get(e.record.container_id)
              : undefined,
          ),
        );
        await commitWhenRoom(sock, prepare(f.tag, entries, ms), chunk, entries.length);
      })();
    }
    if (chunk) {
      pending.set(chunk, stored);
      void stored.finally(() => pending.delete(chunk)).catch(() => undefined);
    }
    return stored;
  }

  const sockets = new Set<Socket>();
  const onConnection = (sock: Socket) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    const decoder = new ForwardDecoder();
    const peer = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'unix';
    const fail = (err: unknown) => {
      malformed.inc();
      log.warn({ peer, err: errorMessage(err) }, 'malformed forward input; closing connection');
      sock.destroy();
    };
    // Frames are handled in order; synchronously when possible (no pause/resume round trip per
    // Docker line), else the socket is paused until the frame is stored.
    const queue: Frame[] = [];
    let busy = false;
    const drain = (): void => {
      while (queue.length > 0) {
        let r: true | Promise<void>;
        try {
          r = handleFrame(sock, queue.shift()!);
        } catch (err) {
          fail(err);
          return;
        }
        if (r !== true) {
          busy = true;
          sock.pause();
          r.then(() => {
            busy = false;
            sock.resume();
            drain();
          }, fail);
          return;
        }
      }
      shipper.kick();
    };
    sock.on('data', (chunk: Buffer) => {
      try {
        const frames = decoder.push(chunk);
        for (let i = 0; i < frames.length; i++) queue.push(frames[i]!);
      } catch (err) {
        fail(err);
        return;
      }
      if (!busy) drain();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  };

  const servers: Server[] = [];
  let port = 0;
  const listen = (srv: Server, ...args: unknown[]) =>
    new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      (srv.listen as (...a: unknown[]) => void)(...args, () => resolve());
    });
  if (cfg.listen) {
    const srv = createServer(onConnection);
    await listen(srv, cfg.listen.port, cfg.listen.host);
    port = (srv.address() as AddressInfo).port;
    servers.push(srv);
  }
  if (cfg.unixSocket) {
    if (existsSync(cfg.unixSocket)) unlinkSync(cfg.unixSocket);
    const srv = createServer(onConnection);
    await listen(srv, cfg.unixSocket);
    servers.push(srv);
  }
  // Only now the Docker client (loading it takes about a second): lines that need metadata
  // meanwhile wait for it, the others are stored at once.
  if (cfg.dockerSocket) {
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
  log.info({ port, unixSocket: cfg.unixSocket }, 'forward input listening');
  return {
    name: 'forward',
    port,
    async stop() {
      abort.abort();
      for (const s of servers) s.close();
      for (const s of sockets) s.destroy();
    },
  };
}
