/**
 * Keeping one record alive in etcd under a lease: the DNS sidekick (`announce`), the registrator
 * and the log aggregator (its query address) all use `Announcement`. The record is written under
 * a lease of `ttl` seconds that the etcd3 client keeps alive; if the lease is lost (etcd
 * unreachable longer than the TTL) it is granted again and the record rewritten, retrying every
 * second. `stop()` revokes the lease, which deletes the record at once rather than after the TTL.
 */
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from './logger.js';
import { errorMessage } from './errors.js';

export class Announcement {
  private lease: Lease | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Etcd3,
    readonly key: string,
    private readonly value: string,
    private readonly ttl: number,
    private readonly log: Logger,
  ) {}

  /** Writes the record; rejects when etcd refuses or is unreachable (the first time only). */
  async start(): Promise<void> {
    await this.publish();
  }

  private async publish(): Promise<void> {
    const lease = this.client.lease(this.ttl);
    lease.on('lost', (err) => {
      if (this.stopped || this.lease !== lease) return;
      this.log.warn({ key: this.key, err: errorMessage(err) }, 'lease lost; re-announcing');
      this.lease = null;
      lease.release();
      this.scheduleRetry();
    });
    lease.on('keepaliveFailed', (err) =>
      this.log.debug({ key: this.key, err: errorMessage(err) }, 'keepalive failed'),
    );
    this.lease = lease;
    try {
      await lease.put(this.key).value(this.value);
    } catch (err) {
      this.lease = null;
      lease.release();
      throw err;
    }
    this.log.info({ key: this.key, value: this.value, ttl: this.ttl }, 'announced');
  }

  private scheduleRetry(): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (this.stopped) return;
      this.publish().catch((err: unknown) => {
        this.log.warn(
          { key: this.key, err: errorMessage(err) },
          'announce failed; retrying in 1 s',
        );
        this.scheduleRetry();
      });
    }, 1000);
  }

  /** Deletes the record (revoking its lease); best effort when etcd is gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const lease = this.lease;
    this.lease = null;
    if (!lease) return;
    try {
      await Promise.race([
        lease.revoke(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 3000)),
      ]);
      this.log.info({ key: this.key }, 'record removed');
    } catch (err) {
      lease.release();
      this.log.warn(
        { key: this.key, err: errorMessage(err) },
        'could not remove record; it expires with its lease',
      );
    }
  }
}
