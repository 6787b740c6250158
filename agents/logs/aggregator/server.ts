/**
 * `logsd aggregator`: receives forward-protocol events from agents (or any Fluentd-compatible
 * sender), stores them (store.ts), acks each chunk after it is written, and serves the query
 * API (http.ts) on the health server. Batches from Flotilla agents carry `parts` (service runs
 * with byte lengths) and are stored without decoding a single record; other senders' events are
 * decoded and grouped by their `service` field, else their tag.
 */
import { createServer as netServer, type Server, type Socket } from 'node:net';
import { createServer as tlsServer, type TlsOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/logger.js';
import { DiskFullError, errorMessage } from '../../common/errors.js';
import { metricsFor, type MetricSet } from '../../common/metrics.js';
import { startHealthServer, type HealthServer } from '../../common/http.js';
import {
  ForwardDecoder,
  FrameError,
  decodeEntries,
  encodeAck,
  encodeEntry,
  type Frame,
} from '../forward/codec.js';
import { checkPing, encodeHelo, encodePong, newNonce } from '../forward/handshake.js';
import { queryRoutes } from './http.js';
import { withToken } from './web/auth.js';
import { webRoutes } from './web/routes.js';
import { Store, type Batch, type FsyncPolicy, type Part } from './store.js';
import { ForwardOut } from './forward-out.js';
import type { Target } from '../shipper.js';

export interface AggregatorConfig {
  listen: { host: string; port: number };
  http?: { host: string; port: number };
  /** When set, the page and query API need it (web/auth.ts); health and metrics stay open. */
  httpToken?: string;
  dataDir: string;
  fsync: FsyncPolicy;
  retentionMs?: number;
  maxBytes?: number;
  segmentBytes?: number;
  sharedKey?: string;
  /**
   * With a shared key: a connection that has not passed the handshake (a valid PING) within this
   * long is closed (default 10 s); for TLS it also bounds the TLS handshake.
   */
  handshakeTimeoutMs?: number;
  /**
   * Connections that have not authenticated yet (or, without a key, have sent no frame) beyond
   * this many: the oldest of them is closed, so a flood of idle sockets cannot push out a real
   * agent, whose handshake takes milliseconds (default 256).
   */
  maxPending?: number;
  tls?: TlsOptions;
  hostname: string;
  forwardOut?: Target;
  log: Logger;
  metrics?: MetricSet;
}

export interface RunningAggregator {
  port: number;
  httpPort: number;
  store: Store;
  metrics: MetricSet;
  stop(): Promise<void>;
}

/** Turns an events frame into a store batch (pure apart from decoding). */
export function toBatch(f: Extract<Frame, { kind: 'events' }>): Batch {
  const o = f.option;
  const batch: Batch = { parts: [] };
  if (typeof o.chunk === 'string') batch.chunk = o.chunk;
  if (
    typeof o.agent === 'string' &&
    typeof o.seq === 'number' &&
    Array.isArray(o.parts) &&
    f.blob
  ) {
    batch.agent = o.agent;
    batch.seq = o.seq;
    let off = 0;
    for (const raw of o.parts as unknown[]) {
      const [service, count, bytes, tmin, tmax] = raw as unknown[];
      if (
        typeof service !== 'string' ||
        typeof count !== 'number' ||
        typeof bytes !== 'number' ||
        typeof tmin !== 'number' ||
        typeof tmax !== 'number'
      )
        throw new FrameError('option "parts" must be [[service, count, bytes, tmin, tmax], ...]');
      batch.parts.push({ service, count, blob: f.blob.subarray(off, off + bytes), tmin, tmax });
      off += bytes;
    }
    if (off !== f.blob.length)
      throw new FrameError('option "parts" does not add up to the entries');
    return batch;
  }
  const entries = f.entries ?? decodeEntries(f.blob!);
  let run: (Part & { bufs: Buffer[] }) | undefined;
  const runs: (Part & { bufs: Buffer[] })[] = [];
  for (const e of entries) {
    const service = typeof e.record.service === 'string' ? e.record.service : f.tag;
    const record = typeof e.record.service === 'string' ? e.record : { ...e.record, service };
    const ms = e.time.toMillis();
    if (!run || run.service !== service) {
      run = { service, count: 0, blob: Buffer.alloc(0), tmin: ms, tmax: ms, bufs: [] };
      runs.push(run);
    }
    run.count++;
    run.tmin = Math.min(run.tmin, ms);
    run.tmax = Math.max(run.tmax, ms);
    run.bufs.push(encodeEntry(e.time, record));
  }
  batch.parts = runs.map(({ bufs, ...p }) => ({ ...p, blob: Buffer.concat(bufs) }));
  return batch;
}

export async function startAggregator(cfg: AggregatorConfig): Promise<RunningAggregator> {
  const { log } = cfg;
  const metrics = cfg.metrics ?? metricsFor('logs_aggregator');
  const stored = metrics.counter('records_stored_total', 'records written to the store');
  const dups = metrics.counter('records_duplicate_total', 'resent records dropped by dedup');
  const malformed = metrics.counter('malformed_total', 'connections closed for malformed input');
  const authFail = metrics.counter('auth_failures_total', 'shared-key handshakes that failed');
  const timedOut = metrics.counter(
    'handshake_timeouts_total',
    'connections closed for not completing the shared-key handshake in time',
  );
  const evicted = metrics.counter(
    'pending_evicted_total',
    'unauthenticated connections closed because too many were pending (oldest first)',
  );
  const refused = metrics.counter(
    'refused_disk_full_total',
    'batches refused (not acked) because the data dir was full',
  );
  const segmentReads = metrics.counter(
    'query_segment_reads_total',
    'segment files read from disk to answer queries',
  );
  let full = false;
  const store = new Store({
    dir: cfg.dataDir,
    fsync: cfg.fsync,
    onSegmentRead: () => segmentReads.inc(),
    ...(cfg.retentionMs ? { retentionMs: cfg.retentionMs } : {}),
    ...(cfg.maxBytes ? { maxBytes: cfg.maxBytes } : {}),
    ...(cfg.segmentBytes ? { segmentBytes: cfg.segmentBytes } : {}),
  });
  const retention = setInterval(() => {
    const n = store.enforceRetention();
    if (n > 0) log.info({ segments: n }, 'retention removed segments');
  }, 30_000);
  retention.unref();
  const out = cfg.forwardOut ? new ForwardOut(cfg.forwardOut, log) : undefined;

  const handshakeMs = cfg.handshakeTimeoutMs ?? 10_000;
  const maxPending = cfg.maxPending ?? 256;
  const sockets = new Set<Socket>();
  // Connections not yet authenticated, oldest first (a Map keeps insertion order).
  const pending = new Map<Socket, NodeJS.Timeout | undefined>();
  // One warning per 10 s for dropped unauthenticated connections, however many there are.
  let quietUntil = 0;
  let unlogged = 0;
  const warnDropped = (peer: string, why: string) => {
    unlogged++;
    if (Date.now() < quietUntil) return;
    log.warn(
      { peer, connections: unlogged, handshakeTimeoutMs: handshakeMs, maxPending },
      `closing unauthenticated connection: ${why} (counted in handshake_timeouts_total / pending_evicted_total; further ones logged at most every 10 s)`,
    );
    unlogged = 0;
    quietUntil = Date.now() + 10_000;
  };
  const admitted = (sock: Socket) => {
    clearTimeout(pending.get(sock));
    pending.delete(sock);
  };
  const onConnection = (sock: Socket) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    const peer = `${sock.remoteAddress}:${sock.remotePort}`;
    const decoder = new ForwardDecoder();
    const nonce = cfg.sharedKey ? newNonce() : undefined;
    let authed = !cfg.sharedKey;
    // Without a key an idle agent is legitimate, so only the cap applies, not the timeout.
    pending.set(
      sock,
      nonce
        ? setTimeout(() => {
            timedOut.inc();
            warnDropped(peer, `no shared-key handshake within ${handshakeMs} ms`);
            admitted(sock);
            sock.destroy();
          }, handshakeMs).unref()
        : undefined,
    );
    if (pending.size > maxPending) {
      const [oldest] = pending.keys();
      admitted(oldest!);
      evicted.inc();
      warnDropped(
        `${oldest!.remoteAddress}:${oldest!.remotePort}`,
        `more than ${maxPending} pending`,
      );
      oldest!.destroy();
    }
    if (nonce) sock.write(encodeHelo(nonce));
    sock.on('data', (chunk: Buffer) => {
      try {
        const acks: Buffer[] = [];
        for (const f of decoder.push(chunk)) {
          if (!nonce) admitted(sock);
          if (f.kind === 'handshake' && f.type === 'PING' && nonce && !authed) {
            const check = checkPing(f.body, nonce, cfg.sharedKey!);
            sock.write(encodePong(check, cfg.hostname, nonce, cfg.sharedKey!));
            if (!check.ok) {
              authFail.inc();
              log.warn({ peer, reason: check.reason }, 'handshake failed');
              sock.end();
              return;
            }
            authed = true;
            admitted(sock);
            continue;
          }
          if (f.kind !== 'events') continue;
          if (!authed) {
            authFail.inc();
            log.warn({ peer }, 'handshake failed: events before the shared-key handshake');
            sock.destroy();
            return;
          }
          const batch = toBatch(f);
          const r = store.ingest(batch);
          stored.inc(r.stored);
          dups.inc(r.duplicates);
          if (r.stored > 0) out?.send(batch.parts);
          if (f.option.chunk) acks.push(encodeAck(f.option.chunk));
        }
        if (acks.length) sock.write(Buffer.concat(acks));
        // Before the handshake only a PING (~200 bytes) is expected: do not buffer more.
        if (!authed && decoder.pending > 16 * 1024) {
          authFail.inc();
          log.warn({ peer }, 'handshake failed: more than 16 KiB before the shared-key handshake');
          sock.destroy();
          return;
        }
      } catch (err) {
        if (err instanceof DiskFullError) {
          // Refused, not lost: nothing of it is acked, the agent keeps it and sends it again.
          refused.inc();
          if (!full)
            log.error({ peer }, `cannot store records: ${err.message}; refusing writes (no ack)`);
          full = true;
        } else {
          malformed.inc();
          log.warn({ peer, err: errorMessage(err) }, 'malformed forward input; closing connection');
        }
        sock.destroy();
        return;
      }
      if (full && !store.diskFull) {
        full = false;
        log.info('data dir has space again; storing records');
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      admitted(sock);
      sockets.delete(sock);
    });
  };
  const srv: Server = cfg.tls
    ? tlsServer({ handshakeTimeout: handshakeMs, ...cfg.tls }, onConnection)
    : netServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(cfg.listen.port, cfg.listen.host, () => resolve());
  });
  const port = (srv.address() as AddressInfo).port;
  let health: HealthServer | undefined;
  if (cfg.http)
    health = await startHealthServer({
      host: cfg.http.host,
      port: cfg.http.port,
      registry: metrics.registry,
      ready: () => (store.diskFull ? `data dir ${cfg.dataDir} is full; refusing writes` : true),
      routes: withToken({ ...webRoutes(), ...queryRoutes(store) }, cfg.httpToken),
    });
  log.info({ port, http: health?.port, dataDir: cfg.dataDir }, 'logs aggregator listening');
  return {
    port,
    httpPort: health?.port ?? 0,
    store,
    metrics,
    async stop() {
      clearInterval(retention);
      srv.close();
      for (const s of sockets) s.destroy();
      await health?.close();
      out?.stop();
      store.close();
    },
  };
}
