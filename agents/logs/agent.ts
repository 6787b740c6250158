/**
 * `logsd agent`: a Forward-protocol receiver for the host's containers (Docker's fluentd log
 * driver, or any Fluentd/Fluent Bit client), which enriches every record, appends it to the
 * durable buffer and only then acks the sender's chunk; the shipper moves the buffer to the
 * aggregator. A connection sending malformed bytes is closed and counted; others carry on.
 * When the buffer is full the agent stops reading (and so stops acking): backpressure, never
 * a silent drop.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import Docker from 'dockerode';
import type { Logger } from '../common/logger.js';
import { DiskFullError, errorMessage } from '../common/errors.js';
import { metricsFor, type MetricSet } from '../common/metrics.js';
import { DiskBuffer, type FsyncPolicy } from './buffer.js';
import { MetadataCache, enrich, needsMeta, serviceOf, type ContainerMeta } from './enrich.js';
import {
  ForwardDecoder,
  decodeEntries,
  encodeAck,
  encodeEntry,
  type Entry,
  type Frame,
} from './forward/codec.js';
import { Shipper, type Target } from './shipper.js';

export interface AgentConfig {
  listen?: { host: string; port: number };
  unixSocket?: string;
  bufferDir: string;
  bufferMaxBytes: number;
  fsync: FsyncPolicy;
  aggregators: Target[];
  hostname: string;
  sharedKey?: string;
  tls?: ConnectionOptions;
  /** dockerd socket for container metadata; undefined = records only. */
  dockerSocket?: string;
  batchBytes?: number;
  log: Logger;
  metrics?: MetricSet;
}

export interface RunningAgent {
  port: number;
  buffer: DiskBuffer;
  shipper: Shipper;
  metrics: MetricSet;
  stop(): Promise<void>;
}

export async function startAgent(cfg: AgentConfig): Promise<RunningAgent> {
  const { log } = cfg;
  const metrics = cfg.metrics ?? metricsFor('logs_agent');
  const recordsIn = metrics.counter('records_received_total', 'records received from log drivers');
  const malformed = metrics.counter(
    'malformed_total',
    'connections closed for malformed forward-protocol input',
  );
  const resent = metrics.counter(
    'chunks_resent_total',
    'chunks a sender resent after a lost ack (acked again, not stored twice)',
  );
  const shipped = metrics.counter('records_shipped_total', 'records acked by the aggregator');
  const retries = metrics.counter('ship_retries_total', 'aggregator connections lost or refused');
  const backlog = metrics.gauge('buffer_backlog_records', 'records buffered, not yet acked');
  const bufBytes = metrics.gauge('buffer_bytes', 'bytes of the on-disk buffer');
  const stalls = metrics.counter(
    'buffer_full_total',
    'times input paused because the buffer was full',
  );

  const buffer = new DiskBuffer({
    dir: cfg.bufferDir,
    maxBytes: cfg.bufferMaxBytes,
    fsync: cfg.fsync,
  });
  const docker = cfg.dockerSocket ? new Docker({ socketPath: cfg.dockerSocket }) : undefined;
  const meta = new MetadataCache(docker);
  const abort = new AbortController();
  if (docker)
    meta.watch(abort.signal).catch((err: unknown) => {
      log.warn(
        { err: errorMessage(err) },
        'cannot watch docker events; metadata on first line only',
      );
    });

  let spaceWaiters: (() => void)[] = [];
  const shipper = new Shipper({
    targets: cfg.aggregators,
    buffer,
    log,
    hostname: cfg.hostname,
    ...(cfg.sharedKey ? { sharedKey: cfg.sharedKey } : {}),
    ...(cfg.tls ? { tls: cfg.tls } : {}),
    ...(cfg.batchBytes ? { batchBytes: cfg.batchBytes } : {}),
    onShipped: (n) => {
      shipped.inc(n);
      if (!buffer.full) for (const w of spaceWaiters.splice(0)) w();
    },
    onRetry: () => retries.inc(),
  });
  const gaugeTimer = setInterval(() => {
    backlog.set(buffer.backlog);
    bufBytes.set(buffer.bytes);
  }, 1000);
  gaugeTimer.unref();

  // Woken by an ack that frees space, or after 1 s (a full disk can get space from elsewhere).
  const waitForSpace = () =>
    new Promise<void>((resolve) => {
      stalls.inc();
      spaceWaiters.push(resolve);
      setTimeout(resolve, 1000).unref();
    });

  type Run = { service: string; tmin: number; tmax: number; bufs: Buffer[] };

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

  function prepare(entries: Entry[], metas: (ContainerMeta | undefined)[]): Run[] {
    const out: Run[] = [];
    entries.forEach((e, i) => {
      const rec = enrich(e.record, cfg.hostname, metas[i]);
      const service = serviceOf(rec);
      const ms = e.time.toMillis();
      let run = out[out.length - 1];
      if (!run || run.service !== service) {
        run = { service, tmin: ms, tmax: ms, bufs: [] };
        out.push(run);
      }
      run.tmin = Math.min(run.tmin, ms);
      run.tmax = Math.max(run.tmax, ms);
      run.bufs.push(encodeEntry(e.time, rec));
    });
    return out;
  }

  let diskFull: DiskFullError | undefined;
  /**
   * Appends the runs to the buffer, removing each from `runs` once stored (the chunk id goes
   * with the last). False when the disk is full: the rest stays in `runs` for a retry, nothing
   * is acked, and the caller waits (backpressure on the sender).
   */
  function commit(runs: Run[], chunk: string | undefined, records: number): boolean {
    try {
      while (runs.length > 0) {
        const r = runs[0]!;
        buffer.append(r.bufs, {
          service: r.service,
          tmin: r.tmin,
          tmax: r.tmax,
          ...(chunk && runs.length === 1 ? { chunk } : {}),
        });
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
    recordsIn.inc(records);
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
      while (buffer.full) await waitForSpace();
      if (commit(runs, chunk, records)) break;
    }
    if (chunk) sock.write(encodeAck(chunk));
  }

  /**
   * Stores one events frame and acks it. Synchronous (the common case: no metadata lookup
   * pending, buffer not full) returns true; otherwise returns the promise of doing it.
   */
  /** Chunks being stored right now: a resend of one (its ack was late) waits for it, not stores it. */
  const pending = new Map<string, Promise<void>>();

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
      const runs = prepare(entries, metas);
      if (commit(runs, chunk, entries.length)) {
        if (chunk) sock.write(encodeAck(chunk));
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
        await commitWhenRoom(sock, prepare(entries, ms), chunk, entries.length);
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
        queue.push(...decoder.push(chunk));
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
  if (cfg.listen) {
    const srv = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(cfg.listen!.port, cfg.listen!.host, () => resolve());
    });
    port = (srv.address() as AddressInfo).port;
    servers.push(srv);
  }
  if (cfg.unixSocket) {
    if (existsSync(cfg.unixSocket)) unlinkSync(cfg.unixSocket);
    const srv = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(cfg.unixSocket, () => resolve());
    });
    servers.push(srv);
  }
  shipper.start();
  log.info(
    { port, unixSocket: cfg.unixSocket, backlog: buffer.backlog, agentId: buffer.agentId },
    'logs agent listening',
  );

  return {
    port,
    buffer,
    shipper,
    metrics,
    async stop() {
      abort.abort();
      for (const s of servers) s.close();
      for (const s of sockets) s.destroy();
      await shipper.flush(3000);
      shipper.stop();
      clearInterval(gaugeTimer);
      buffer.close();
      spaceWaiters = [];
    },
  };
}
