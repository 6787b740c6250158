/**
 * Keeping one record alive in etcd: the sidekick (`announce`) and the registrator both use
 * `Announcement`. The record is written under a lease of `ttl` seconds that the etcd3 client
 * keeps alive; if the lease is lost (etcd unreachable longer than the TTL) it is granted again
 * and the record rewritten, retrying every second. `update()` changes the value and moves the
 * record between its DNS key and its withdrawn key (instances.ts) in one transaction, under the
 * same lease. `stop()` revokes the lease, which deletes the record at once rather than after
 * the TTL.
 */
import type { Etcd3, Lease } from 'etcd3';
import type Docker from 'dockerode';
import { isIP } from 'node:net';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { explainDenied } from '../common/etcd.js';
import { withdrawnKey } from './instances.js';
import { dockerHealthOf, type DockerHealth } from './health.js';

export class Announcement {
  private lease: Lease | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  /** What etcd holds now under the lease (key and value), null before the first write. */
  private applied: { key: string; value: string } | null = null;
  private syncing: Promise<void> = Promise.resolve();
  private syncRetry: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Etcd3,
    readonly key: string,
    private value: string,
    private readonly ttl: number,
    private readonly log: Logger,
    /** false: start withdrawn (out of DNS), e.g. until a health check passes. */
    private inDns = true,
  ) {}

  /** Where the record should be now: its DNS key, or its withdrawn key. */
  private get target(): string {
    return this.inDns ? this.key : withdrawnKey(this.key);
  }

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
      this.applied = null;
      lease.release();
      this.scheduleRetry();
    });
    lease.on('keepaliveFailed', (err) =>
      this.log.debug({ key: this.key, err: errorMessage(err) }, 'keepalive failed'),
    );
    this.lease = lease;
    const key = this.target;
    const value = this.value;
    try {
      // The other location goes in the same step: a copy left by an earlier run of this
      // announcer (until its lease ran out) would show the instance twice in `dnsctl ls`.
      await this.write(lease, key, value, key === this.key ? withdrawnKey(this.key) : this.key);
    } catch (err) {
      this.lease = null;
      lease.release();
      throw err;
    }
    this.applied = { key, value };
    this.log.info({ key, value, ttl: this.ttl }, this.inDns ? 'announced' : 'announced withdrawn');
    if (key !== this.target || value !== this.value) this.sync();
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

  /**
   * Sets the record's value and whether it answers DNS; etcd follows at once (one transaction:
   * put the new key under the lease, delete the old one). Resolves when etcd has it, or when
   * the change is left to the retry (etcd unreachable: logged, retried every second).
   */
  update(value: string, inDns: boolean): Promise<void> {
    this.value = value;
    this.inDns = inDns;
    return this.sync();
  }

  private sync(): Promise<void> {
    this.syncing = this.syncing.then(() => this.applyState());
    return this.syncing;
  }

  private async applyState(): Promise<void> {
    const lease = this.lease;
    const was = this.applied;
    if (this.stopped || !lease || !was) return; // publish() writes the current state
    const key = this.target;
    const value = this.value;
    if (was.key === key && was.value === value) return;
    try {
      await this.write(lease, key, value, was.key === key ? null : was.key);
      if (this.lease !== lease) return;
      this.applied = { key, value };
      this.log.info({ key, value }, key === this.key ? 'in DNS' : 'withdrawn from DNS');
    } catch (err) {
      this.log.warn({ key, err: errorMessage(err) }, 'could not update record; retrying in 1 s');
      clearTimeout(this.syncRetry);
      this.syncRetry = setTimeout(() => void this.sync(), 1000);
    }
  }

  /** One transaction: `key` = `value` under the lease, and `remove` deleted (when given). */
  private async write(lease: Lease, key: string, value: string, remove: string | null) {
    const id = await lease.grant();
    const put = { request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: id } };
    const del = remove ? [{ request_delete_range: { key: Buffer.from(remove) } }] : [];
    await this.client
      .if(key, 'Version', '>', -1)
      .then(put, ...del)
      .commit()
      .catch(explainDenied('write', remove ? `${key} (and delete ${remove})` : key));
  }

  /** Deletes the record (revoking its lease); best effort when etcd is gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearTimeout(this.syncRetry);
    await this.syncing;
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
  /** The image as the container was created from it (Config.Image), e.g. nginx:1.25. */
  image?: string;
  /** Its Docker HEALTHCHECK status. */
  health?: DockerHealth;
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

/** The address of a container plus its image, for announce --container. */
export function containerDetails(info: Docker.ContainerInspectInfo): ContainerAddress {
  return {
    ...containerAddress(info),
    image: info.Config?.Image ?? '',
    health: dockerHealthOf(info),
  };
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
      const a = containerDetails(await docker.getContainer(name).inspect());
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

/**
 * Follows a container's Docker HEALTHCHECK status: a reading at once, on every health_status,
 * start and die event of the container, and every `pollMs` (in case an event was missed).
 * `onHealth` gets each reading; an inspect failure is logged once per kind and skipped.
 */
export function followDockerHealth(
  docker: Docker,
  name: string,
  pollMs: number,
  onHealth: (h: DockerHealth) => void,
  log: Logger,
): { stop(): void } {
  let stopped = false;
  let lastErr = '';
  const read = async () => {
    try {
      const h = dockerHealthOf(await docker.getContainer(name).inspect());
      lastErr = '';
      if (!stopped) onHealth(h);
    } catch (err) {
      const msg = errorMessage(err);
      if (msg !== lastErr) log.warn({ container: name, err: msg }, 'cannot read container health');
      lastErr = msg;
    }
  };
  void read();
  const timer = setInterval(() => void read(), pollMs);
  let events: NodeJS.ReadableStream | null = null;
  docker
    .getEvents({
      filters: { type: ['container'], container: [name], event: ['health_status', 'start', 'die'] },
    })
    .then(
      (s) => {
        events = s as NodeJS.ReadableStream;
        if (stopped) return (events as unknown as { destroy(): void }).destroy();
        events.on('data', () => void read());
        events.on('error', () => undefined);
      },
      (err: unknown) =>
        log.warn(
          { err: errorMessage(err) },
          `docker events unavailable; polling every ${pollMs} ms`,
        ),
    );
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      (events as unknown as { destroy?: () => void } | null)?.destroy?.();
    },
  };
}
