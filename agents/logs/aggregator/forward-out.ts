/**
 * Optional onward output: every newly stored part is also sent as a PackedForward frame (tag =
 * service, with a chunk id, acks requested) to another forward-protocol receiver (Fluentd,
 * Fluent Bit, Vector). Best-effort by design: the aggregator's own store is the record of
 * truth, so the queue lives in memory, bounded (`maxBytes`); when it overflows the oldest
 * batches are dropped with a warning and a count, never silently. Unacked frames are resent
 * after a reconnect (the receiver may see a frame twice).
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../common/logger.js';
import { ForwardDecoder, encodePacked } from '../forward/codec.js';
import type { Target } from '../shipper.js';
import type { Part } from './store.js';

export class ForwardOut {
  private queue: { chunk: string; frame: Buffer }[] = [];
  private sent = 0;
  private bytes = 0;
  private sock: Socket | undefined;
  private ready = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  dropped = 0;

  constructor(
    private readonly target: Target,
    private readonly log: Logger,
    private readonly maxBytes = 64 << 20,
    private readonly maxInFlight = 16,
  ) {
    this.connect();
  }

  send(parts: Part[]): void {
    for (const p of parts) {
      const chunk = randomBytes(12).toString('base64');
      const frame = encodePacked(p.service, p.blob, p.count, { chunk });
      this.queue.push({ chunk, frame });
      this.bytes += frame.length;
    }
    while (this.bytes > this.maxBytes && this.queue.length > this.sent) {
      const old = this.queue.splice(this.sent, 1)[0]!;
      this.bytes -= old.frame.length;
      this.dropped++;
      if (this.dropped % 1000 === 1)
        this.log.warn(
          { dropped: this.dropped },
          'onward output queue full; dropping oldest unsent',
        );
    }
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.sock?.destroy();
  }

  private connect(): void {
    if (this.stopped) return;
    const sock = connect(this.target);
    this.sock = sock;
    const dec = new ForwardDecoder();
    sock.on('connect', () => {
      this.ready = true;
      this.sent = 0;
      this.pump();
    });
    sock.on('data', (d: Buffer) => {
      try {
        for (const f of dec.push(d)) {
          if (f.kind !== 'ack') continue;
          const i = this.queue.findIndex((q) => q.chunk === f.chunk);
          if (i < 0 || i >= this.sent) continue;
          const done = this.queue.splice(0, i + 1);
          this.sent -= done.length;
          for (const q of done) this.bytes -= q.frame.length;
        }
        this.pump();
      } catch {
        sock.destroy();
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.ready = false;
      this.sent = 0;
      if (!this.stopped) this.timer = setTimeout(() => this.connect(), 1000);
    });
  }

  private pump(): void {
    if (!this.ready || !this.sock) return;
    while (this.sent < this.queue.length && this.sent < this.maxInFlight) {
      this.sock.write(this.queue[this.sent]!.frame);
      this.sent++;
    }
  }
}
