/**
 * Ships the durable buffer to the aggregator: PackedForward batches of whole buffer blocks,
 * each with a chunk id, at most `maxInFlight` unacked batches on the wire. The buffer cursor
 * moves only when the aggregator acks, so a lost connection, a killed aggregator or a killed
 * agent all end in a resend from the last ack. Resends are harmless: the option map carries
 * the agent id and first seq, and the aggregator drops records it already stored.
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
import type { DiskBuffer, ReadPos } from './buffer.js';
import { ForwardDecoder, encodePacked } from './forward/codec.js';
import { checkPong, encodePing, parseHelo } from './forward/handshake.js';

export interface Target {
  host: string;
  port: number;
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
  chunk: string;
  lastSeq: number;
  records: number;
  end: ReadPos;
  sentAt: number;
}

export class Shipper {
  private sock: Socket | undefined;
  private ready = false;
  private inflight: InFlight[] = [];
  private pos: ReadPos | undefined;
  private target = 0;
  private failures = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private drained: (() => void)[] = [];
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Address of the aggregator currently connected, for readiness. */
  connectedTo: string | undefined;

  constructor(private readonly o: ShipperOptions) {}

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
      this.pump();
    }, this.o.lingerMs ?? 10);
  }

  /** Resolves when everything appended so far is acked (or after `ms`). */
  flush(ms: number): Promise<void> {
    if (this.o.buffer.backlog === 0) return Promise.resolve();
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
      this.pos = this.o.buffer.ackedPos();
      this.o.log.info(
        { aggregator: addr, backlog: this.o.buffer.backlog },
        'connected to aggregator',
      );
      this.pump();
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

  private pump(): void {
    const sock = this.sock;
    if (!sock || !this.ready || !this.pos) return;
    const maxInFlight = this.o.maxInFlight ?? 8;
    const batchBytes = this.o.batchBytes ?? 1 << 20;
    while (this.inflight.length < maxInFlight) {
      const { blocks, next } = this.o.buffer.read(this.pos, batchBytes);
      if (blocks.length === 0) break;
      const first = blocks[0]!;
      const last = blocks[blocks.length - 1]!;
      const count = blocks.reduce((n, b) => n + b.count, 0);
      const chunk = `${this.o.buffer.agentId}:${first.firstSeq}`;
      const parts = blocks.map((b) => [
        b.meta.service,
        b.count,
        b.blob.length,
        b.meta.tmin,
        b.meta.tmax,
      ]);
      const frame = encodePacked(
        'flotilla',
        Buffer.concat(blocks.map((b) => b.blob)),
        count,
        { chunk, agent: this.o.buffer.agentId, seq: first.firstSeq, parts },
        this.o.compress ?? false,
      );
      this.inflight.push({
        chunk,
        lastSeq: last.firstSeq + last.count - 1,
        records: count,
        end: next,
        sentAt: Date.now(),
      });
      this.pos = next;
      sock.write(frame);
    }
  }

  private onAck(chunk: string): void {
    const i = this.inflight.findIndex((b) => b.chunk === chunk);
    if (i < 0) return;
    // Acks come in order on one connection; an ack for batch i also settles earlier ones.
    const done = this.inflight.splice(0, i + 1);
    const last = done[done.length - 1]!;
    this.o.buffer.ack(last.lastSeq);
    this.o.onShipped?.(done.reduce((n, b) => n + b.records, 0));
    if (this.o.buffer.backlog === 0) for (const f of this.drained.splice(0)) f();
    this.pump();
  }

  private checkAcks(): void {
    const oldest = this.inflight[0];
    if (oldest && Date.now() - oldest.sentAt > (this.o.ackTimeoutMs ?? 10_000)) {
      this.o.log.warn({ chunk: oldest.chunk }, 'no ack from aggregator in time; reconnecting');
      this.sock?.destroy();
    }
  }
}
