/**
 * The one health checker behind `announce --check-*` and registrator mode's SERVICE_CHECK_*:
 * a `CheckedAnnouncement` keeps an instance's record in etcd (Announcement) and moves it out of
 * DNS while the instance is unhealthy, back when it is healthy again. Health comes from its own
 * check (a probe every interval, rise/fall from health.ts) and from the container's Docker
 * HEALTHCHECK status, which the caller feeds in with `setDockerHealth`.
 *
 * Timing: probes start `intervalMs` apart (the next one waits for the previous one, which
 * ends within `timeoutMs`), and a change of health is written to etcd at once. With fall=1 a
 * failing instance leaves DNS within interval + timeout; with rise=1 it returns within one
 * interval of passing.
 *
 *   const inst = new CheckedAnnouncement({ client, key, record, meta, ttl, log, check, stats });
 *   await inst.start();  // rejects when etcd is unreachable
 *   inst.setDockerHealth('unhealthy');  // withdrawn at once
 *   await inst.stop();   // record deleted
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../common/logger.js';
import { Counter, Gauge, type Registry } from '../common/metrics.js';
import { Announcement } from './announce.js';
import {
  answersDns,
  combinedHealth,
  INITIAL_CHECK,
  nextCheck,
  type CheckSpec,
  type CheckState,
  type DockerHealth,
  type Health,
} from './health.js';
import { withMeta } from './instances.js';
import { runProbe, type Probe, type ProbeResult } from './probes.js';
import { errorMessage } from '../common/errors.js';

/** Counters shared by every instance of a process, read when /metrics is scraped. */
export class CheckStats {
  checks = 0;
  checkFailures = 0;
  /** Instances whose health is `failing` now. */
  readonly failing = new Set<object>();
}

/** `flotilla_dns_checks_total`, `flotilla_dns_check_failures_total`, `flotilla_dns_failing_instances`. */
export function registerCheckStats(registry: Registry, stats: CheckStats): void {
  const counter = (name: string, help: string, read: () => number) => {
    let last = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = read();
        this.inc(now - last);
        last = now;
      },
    });
  };
  counter('flotilla_dns_checks_total', 'health check probes run', () => stats.checks);
  counter(
    'flotilla_dns_check_failures_total',
    'health check probes that failed',
    () => stats.checkFailures,
  );
  new Gauge({
    name: 'flotilla_dns_failing_instances',
    help: 'announced instances withdrawn from DNS because they are failing',
    registers: [registry],
    collect() {
      this.set(stats.failing.size);
    },
  });
}

export interface CheckedOptions {
  client: Etcd3;
  key: string;
  /** The SkyDNS record JSON (formatRecord) without metadata. */
  record: string;
  meta: { hostname?: string | undefined; version?: string | undefined };
  ttl: number;
  log: Logger;
  /** The instance's own check; null for none (Docker health alone, or always in DNS). */
  check: CheckSpec | null;
  /** The container's Docker health at start; 'none' without a container or HEALTHCHECK. */
  docker?: DockerHealth;
  stats: CheckStats;
  probe?: Probe;
}

export class CheckedAnnouncement {
  private state: CheckState | null;
  private docker: DockerHealth;
  private current: Health;
  private readonly ann: Announcement;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private lastDetail = '';

  constructor(private readonly o: CheckedOptions) {
    this.state = o.check ? INITIAL_CHECK : null;
    this.docker = o.docker ?? 'none';
    this.current = combinedHealth(this.state, this.docker);
    this.ann = new Announcement(
      o.client,
      o.key,
      this.value(),
      o.ttl,
      o.log,
      answersDns(this.current),
    );
  }

  get key(): string {
    return this.o.key;
  }

  get health(): Health {
    return this.current;
  }

  private value(): string {
    return withMeta(this.o.record, { ...this.o.meta, health: this.current });
  }

  /** Writes the record (withdrawn until healthy when there is a check) and starts checking. */
  async start(): Promise<void> {
    await this.ann.start();
    if (this.current === 'failing') this.o.stats.failing.add(this);
    if (this.o.check) this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.probeOnce();
    }, delayMs);
  }

  private async probeOnce(): Promise<void> {
    const check = this.o.check!;
    const started = Date.now();
    const r = await (this.o.probe ?? runProbe)(check.target, check.timeoutMs).catch(
      (err: unknown): ProbeResult => ({ ok: false, detail: errorMessage(err) }),
    );
    if (this.stopped) return;
    this.o.stats.checks++;
    if (!r.ok) this.o.stats.checkFailures++;
    const before = this.state!;
    this.state = nextCheck(before, r.ok, check.rise, check.fall);
    if (!r.ok && r.detail !== this.lastDetail)
      this.o.log.info({ key: this.o.key, check: check.target, result: r.detail }, 'check failed');
    this.lastDetail = r.ok ? '' : r.detail;
    await this.apply();
    this.schedule(Math.max(0, started + check.intervalMs - Date.now()));
  }

  /** Feeds the container's Docker HEALTHCHECK status (from `docker inspect` or an event). */
  setDockerHealth(h: DockerHealth): Promise<void> {
    if (h === this.docker) return Promise.resolve();
    this.docker = h;
    return this.apply();
  }

  private async apply(): Promise<void> {
    const next = combinedHealth(this.state, this.docker);
    if (next === this.current || this.stopped) return;
    this.o.log.info(
      { key: this.o.key, health: next, was: this.current, docker: this.docker },
      `instance ${next}`,
    );
    this.current = next;
    if (next === 'failing') this.o.stats.failing.add(this);
    else this.o.stats.failing.delete(this);
    await this.ann.update(this.value(), answersDns(next));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.o.stats.failing.delete(this);
    await this.running;
    await this.ann.stop();
  }
}
