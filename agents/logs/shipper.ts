/**
 * Ships the agent's sources to the aggregator: PackedForward batches of whole blocks, each with
 * a chunk id, at most `maxInFlight` unacked batches on the wire. A source is the durable buffer
 * (forward input) or one container log file (file input); each has its own dedup id and seq
 * space. A source's cursor moves only when the aggregator acks, so a lost connection, a killed
 * aggregator or a killed agent all end in a resend from the last ack. Resends are harmless: the
 * option map carries the source id and first seq, and the aggregator drops records it already
 * stored.
 * Several `--aggregator` targets: on failure the next one is tried (failover), with backoff.
 *
 * Option map of a batch (the first two are standard):
 *   chunk "<agent>:<firstSeq>", size N, agent "<uuid>", seq firstSeq,
 *   parts [[service, count, bytes, tmin, tmax], ...]   (consecutive runs of the blob)
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import type { Block, DiskBuffer, ReadPos } from './buffer.js';
import { ForwardDecoder, encodePacked } from './forward/codec.js';
import { checkPong, encodePing, parseHelo } from './forward/handshake.js';

export interface Target {
  host: string;
  port: number;
}

/**
 * What the shipper reads from: blocks with consecutive seqs under one dedup `id`. `pos` is the
 * source's own cursor type; `ackedPos` is where a (re)connect resends from.
 */
export interface ShipSource<P = unknown> {
  readonly id: string;
  /** Records not yet acked by the aggregator. */
  readonly backlog: number;
  ackedPos(): P;
  /** Blocks from `pos`; `id` (default the source's) is the dedup id of all of them. */
  read(pos: P, maxBytes: number): { blocks: Block[]; next: P; id?: string };
  /** The aggregator stored everything of dedup id `id` up to `seq`. */
  ack(seq: number, id: string): void;
}

export interface ShipperOptions {
  targets: Target[];
  buffer: DiskBuffer;
  log: Logger;
  hostname: string;
  batchBytes?: number;
  maxInFlight?: number;
  ackTimeoutMs?: number;
  sharedKey?: string;
  /** TLS to the aggregator when set. */
  tls?: ConnectionOptions;
  compress?: boolean;
  /** How long a new record may wait for company before a batch is sent (default 10 ms). */
  lingerMs?: number;
  onShipped?: (records: number) => void;
  onRetry?: () => void;
}

interface InFlight {
  source: ShipSource;
  id: string;
  chunk: string;
  lastSeq: number;
  records: number;
  sentAt: number;
}

export class Shipper {
  private sock: Socket | undefined;
  private ready = false;
  private inflight: InFlight[] = [];
  private readonly sources: ShipSource[];
  private readonly pos = new Map<ShipSource, unknown>();
  private turn = 0;
  private target = 0;
  private failures = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private drained: (() => void)[] = [];
  private lingerTimer: NodeJS.Timeout | undefined;
  /** The last pump stopped at `maxInFlight` (so an ack should pump again at once). */
  private saturated = false;
  /** Address of the aggregator currently connected, for readiness. */
  connectedTo: string | undefined;

  constructor(private readonly o: ShipperOptions) {
    this.sources = [bufferSource(o.buffer)];
  }

  /** Ships `src` too (from its acked position once connected). */
  add(src: ShipSource): void {
    this.sources.push(src);
    if (this.ready) this.pos.set(src, src.ackedPos());
    this.kick();
  }

  /** Stops shipping `src` (finished and fully acked, or given up). */
  remove(src: ShipSource): void {
    const i = this.sources.indexOf(src);
    if (i >= 0) this.sources.splice(i, 1);
    this.pos.delete(src);
  }

  /** Records not yet acked, over all sources. */
  get backlog(): number {
    return this.sources.reduce((n, s) => n + s.backlog, 0);
  }

  start(): void {
    this.connect();
    this.watchdog = setInterval(() => this.checkAcks(), 1000);
    this.watchdog.unref();
  }

  /**
   * Call after appending to the buffer. Shipping lingers `lingerMs` so records arriving one by
   * one (Docker sends each line alone) travel in batches.
   */
  kick(): void {
    if (!this.ready || this.lingerTimer) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      this.pump(true);
    }, this.o.lingerMs ?? 10);
  }

  /** Resolves when everything appended so far is acked (or after `ms`). */
  flush(ms: number): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.drained.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.lingerTimer);
    clearInterval(this.watchdog);
    this.sock?.destroy();
  }

  private connect(): void {
    if (this.stopped) return;
    const t = this.o.targets[this.target % this.o.targets.length]!;
    const addr = `${t.host}:${t.port}`;
    const sock = this.o.tls
      ? tlsConnect({ ...this.o.tls, host: t.host, port: t.port })
      : netConnect({ host: t.host, port: t.port });
    this.sock = sock;
    sock.setNoDelay(true);
    const decoder = new ForwardDecoder();
    let salt = '';
    let nonce: Buffer | undefined;
    const onUp = () => {
      this.ready = true;
      this.failures = 0;
      this.connectedTo = addr;
      this.inflight = [];
      this.pos.clear();
      for (const src of this.sources) this.pos.set(src, src.ackedPos());
      this.o.log.info({ aggregator: addr, backlog: this.backlog }, 'connected to aggregator');
      this.pump(true);
    };
    sock.once(this.o.tls ? 'secureConnect' : 'connect', () => {
      if (!this.o.sharedKey) onUp();
    });
    sock.on('data', (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) {
          if (f.kind === 'ack') this.onAck(f.chunk);
          else if (f.kind === 'handshake' && f.type === 'HELO' && this.o.sharedKey) {
            nonce = parseHelo(f.body);
            salt = randomBytes(16).toString('hex');
            sock.write(encodePing(nonce, this.o.hostname, this.o.sharedKey, salt));
          } else if (f.kind === 'handshake' && f.type === 'PONG' && this.o.sharedKey && nonce) {
            const problem = checkPong(f.body, nonce, this.o.sharedKey, salt);
            if (problem) throw new Error(`handshake with ${addr}: ${problem}`);
            onUp();
          }
        }
      } catch (err) {
        this.o.log.warn({ aggregator: addr, err: errorMessage(err) }, 'bad answer from aggregator');
        sock.destroy();
      }
    });
    sock.on('error', (err) => {
      this.o.log.debug({ aggregator: addr, err: errorMessage(err) }, 'aggregator connection error');
    });
    sock.on('close', () => {
      if (this.sock !== sock) return;
      const wasReady = this.ready;
      this.ready = false;
      this.connectedTo = undefined;
      this.inflight = [];
      this.sock = undefined;
      if (this.stopped) return;
      if (wasReady)
        this.o.log.warn({ aggregator: addr }, 'aggregator connection lost; will resend unacked');
      this.failures++;
      this.o.onRetry?.();
      this.target++;
      const delay = wasReady ? 100 : Math.min(5000, 100 * 2 ** Math.min(this.failures, 6));
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  /**
   * Sends batches while fewer than `maxInFlight` are unacked. `partial`: also batches smaller
   * than half of `batchBytes`. Only the linger timer (and a new connection) sends those: an ack
   * (after a full window) sends full batches at once but leaves a few fresh records to wait for
   * company, else a sender that delivers one record per round trip (Docker's driver with acks)
   * gets one aggregator batch per record, and the agent twice the socket work per line.
   */
  private pump(partial = false): void {
    const sock = this.sock;
    if (!sock || !this.ready) return;
    const maxInFlight = this.o.maxInFlight ?? 8;
    const batchBytes = this.o.batchBytes ?? 1 << 20;
    // Round robin over the sources, one batch each per turn, so a busy container cannot starve
    // the others.
    let idle = 0;
    let held = false;
    while (this.inflight.length < maxInFlight && idle < this.sources.length) {
      const src = this.sources[this.turn++ % this.sources.length]!;
      if (!this.pos.has(src)) this.pos.set(src, src.ackedPos());
      const { blocks, next, id = src.id } = src.read(this.pos.get(src), batchBytes);
      if (blocks.length === 0) {
        idle++;
        continue;
      }
      let bytes = 0;
      for (const b of blocks) bytes += b.blob.length;
      if (!partial && bytes < batchBytes / 2) {
        held = true;
        idle++;
        continue;
      }
      idle = 0;
      const first = blocks[0]!;
      const last = blocks[blocks.length - 1]!;
      const count = blocks.reduce((n, b) => n + b.count, 0);
      const chunk = `${id}:${first.firstSeq}`;
      const frame = encodePacked(
        'flotilla',
        blocks.length === 1 ? first.blob : Buffer.concat(blocks.map((b) => b.blob)),
        count,
        { chunk, agent: id, seq: first.firstSeq, parts: partsOf(blocks) },
        this.o.compress ?? false,
      );
      this.inflight.push({
        source: src,
        id,
        chunk,
        lastSeq: last.firstSeq + last.count - 1,
        records: count,
        sentAt: Date.now(),
      });
      this.pos.set(src, next);
      sock.write(frame);
    }
    this.saturated = this.inflight.length >= maxInFlight;
    if (held) this.kick();
  }

  private onAck(chunk: string): void {
    const i = this.inflight.findIndex((b) => b.chunk === chunk);
    if (i < 0) return;
    // Acks come in order on one connection; an ack for batch i also settles earlier ones.
    const done = this.inflight.splice(0, i + 1);
    for (const b of done) b.source.ack(b.lastSeq, b.id);
    this.o.onShipped?.(done.reduce((n, b) => n + b.records, 0));
    if (this.backlog === 0) for (const f of this.drained.splice(0)) f();
    // Only a full window may have left whole batches behind; anything newer came with a kick.
    if (this.saturated) this.pump();
  }

  private checkAcks(): void {
    const oldest = this.inflight[0];
    if (oldest && Date.now() - oldest.sentAt > (this.o.ackTimeoutMs ?? 10_000)) {
      this.o.log.warn({ chunk: oldest.chunk }, 'no ack from aggregator in time; reconnecting');
      this.sock?.destroy();
    }
  }
}

/**
 * The batch's `parts`: consecutive blocks of one service merged into one run, so the aggregator
 * writes one store block per run, not one per driver line (Docker sends each line alone).
 */
export function partsOf(blocks: Block[]): [string, number, number, number, number][] {
  const parts: [string, number, number, number, number][] = [];
  for (const b of blocks) {
    const last = parts[parts.length - 1];
    if (last && last[0] === b.meta.service) {
      last[1] += b.count;
      last[2] += b.blob.length;
      last[3] = Math.min(last[3], b.meta.tmin);
      last[4] = Math.max(last[4], b.meta.tmax);
    } else parts.push([b.meta.service, b.count, b.blob.length, b.meta.tmin, b.meta.tmax]);
  }
  return parts;
}

/** The durable buffer as a ship source (the forward input's records). */
export function bufferSource(b: DiskBuffer): ShipSource<ReadPos> {
  return {
    id: b.agentId,
    get backlog() {
      return b.backlog;
    },
    ackedPos: () => b.ackedPos(),
    read: (pos, maxBytes) => b.read(pos, maxBytes),
    ack: (seq) => b.ack(seq),
  };
}
