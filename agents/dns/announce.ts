/**
 * Keeping one record alive in etcd: the sidekick (`announce`) and the registrator both use
 * `Announcement`. The record is written under a lease of `ttl` seconds that the etcd3 client
 * keeps alive; if the lease is lost (etcd unreachable longer than the TTL) it is granted again
 * and the record rewritten, retrying every second. `stop()` revokes the lease, which deletes
 * the record at once rather than after the TTL.
 */
import type { Etcd3, Lease } from 'etcd3';
import type Docker from 'dockerode';
import { isIP } from 'node:net';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';

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

export interface ContainerAddress {
  ip: string;
  /** First exposed TCP/UDP port, 0 when none. */
  port: number;
  running: boolean;
}

/** Address and first exposed port of a container from `docker inspect` data. */
export function containerAddress(info: Docker.ContainerInspectInfo): ContainerAddress {
  const nets = Object.values(info.NetworkSettings?.Networks ?? {});
  const ip =
    (info.NetworkSettings as { IPAddress?: string } | undefined)?.IPAddress ||
    nets.map((n) => n.IPAddress).find((a) => a && isIP(a)) ||
    nets.map((n) => n.GlobalIPv6Address).find((a) => a && isIP(a)) ||
    '';
  const exposed = Object.keys(info.Config?.ExposedPorts ?? {})
    .map((p) => Number(p.split('/')[0]))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => a - b);
  return { ip, port: exposed[0] ?? 0, running: info.State?.Running === true };
}

/**
 * Waits until container `name` exists, runs and has an address; polls every 500 ms.
 * Rejects after `timeoutMs` naming the container and what was missing.
 */
export async function waitForContainer(
  docker: Docker,
  name: string,
  timeoutMs: number,
  log: Logger,
): Promise<ContainerAddress> {
  const deadline = Date.now() + timeoutMs;
  let last = 'does not exist';
  let logged = '';
  for (;;) {
    try {
      const a = containerAddress(await docker.getContainer(name).inspect());
      if (a.running && a.ip) return a;
      last = a.running ? 'has no IP address yet' : 'is not running';
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      last = code === 404 ? 'does not exist' : `cannot be inspected (${errorMessage(err)})`;
    }
    if (last !== logged) log.info({ container: name }, `waiting: container ${last}`);
    logged = last;
    if (Date.now() > deadline)
      throw new Error(`container "${name}" ${last} after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
