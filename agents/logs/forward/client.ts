/**
 * A forward-protocol sender that behaves like Docker's fluentd driver with
 * `fluentd-request-ack=true`: one Message-mode frame at a time, each with a chunk id, waiting
 * for its ack; on a lost connection or ack timeout it reconnects and resends the same bytes
 * until acked. Used by tests and the benchmark as a stand-in for dockerd.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { EventTime, ForwardDecoder, encodeMessage, type LogRecord } from './codec.js';

export type SenderTarget = { host: string; port: number } | { path: string };

export class AckingSender {
  private sock: Socket | undefined;
  private decoder = new ForwardDecoder();
  private waiting: { chunk: string; done: () => void } | undefined;
  private closed = false;
  /** Frames sent again after a connection loss or ack timeout. */
  resends = 0;

  constructor(
    private readonly target: SenderTarget,
    private readonly ackTimeoutMs = 5000,
    private readonly retryMs = 100,
  ) {}

  async send(
    tag: string,
    record: LogRecord,
    time = EventTime.fromMillis(Date.now()),
  ): Promise<void> {
    const chunk = randomBytes(16).toString('base64');
    const frame = encodeMessage(tag, time, record, { chunk });
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error('sender closed');
      if (attempt > 0) this.resends++;
      try {
        const sock = await this.connection();
        await new Promise<void>((resolve, reject) => {
          const onClose = () => {
            clearTimeout(timer);
            reject(new Error('connection closed'));
          };
          const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error('ack timeout'));
          }, this.ackTimeoutMs);
          this.waiting = {
            chunk,
            done: () => {
              clearTimeout(timer);
              sock.off('close', onClose);
              resolve();
            },
          };
          sock.once('close', onClose);
          sock.write(frame);
        });
        return;
      } catch {
        this.sock?.destroy();
        this.sock = undefined;
        await new Promise((r) => setTimeout(r, this.retryMs));
      }
    }
  }

  close(): void {
    this.closed = true;
    this.sock?.destroy();
  }

  private connection(): Promise<Socket> {
    if (this.sock && !this.sock.destroyed) return Promise.resolve(this.sock);
    return new Promise((resolve, reject) => {
      const sock = connect(this.target as { host: string; port: number });
      sock.setNoDelay(true);
      this.decoder = new ForwardDecoder();
      sock.once('connect', () => {
        this.sock = sock;
        resolve(sock);
      });
      sock.once('error', reject);
      sock.on('error', () => undefined);
      sock.on('data', (d: Buffer) => {
        for (const f of this.decoder.push(d)) {
          if (f.kind === 'ack' && this.waiting?.chunk === f.chunk) {
            const w = this.waiting;
            this.waiting = undefined;
            w.done();
          }
        }
      });
    });
  }
}
