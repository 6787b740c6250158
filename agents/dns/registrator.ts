/**
 * `dnsd --docker`, registrator mode: announces the running containers that ask for it
 * (registrator's SERVICE_* env/labels or Flotilla's `service=NAME` label, see
 * registrator-meta.ts) and removes them when they stop. Each instance is a
 * CheckedAnnouncement, so SERVICE_CHECK_HTTP/TCP and the container's Docker HEALTHCHECK take it
 * out of DNS while it fails. Reconciles desired (inspect of every running container) against
 * announced on every Docker event (start, die, stop, destroy, health_status) and every 5 s, so
 * a missed event cannot leave a stale record.
 */
import Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { hostname } from 'node:os';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { CheckedAnnouncement, CheckStats } from './checker.js';
import { desiredInstances, type DesiredInstance } from './registrator-meta.js';

export interface RegistratorOptions {
  client: Etcd3;
  prefix: string;
  /** Zone names are announced under, e.g. "skydns.local.". */
  zone: string;
  socketPath: string;
  log: Logger;
  ttl?: number;
  /** Shown by `dnsctl ls` as the instances' host; default os.hostname(). */
  hostname?: string;
  /** Check interval and timeout when SERVICE_CHECK_INTERVAL/TIMEOUT are not set. */
  checkIntervalMs?: number;
  checkTimeoutMs?: number;
  stats?: CheckStats;
}

export async function startRegistrator(o: RegistratorOptions): Promise<{ stop(): Promise<void> }> {
  const docker = new Docker({ socketPath: o.socketPath });
  const ttl = o.ttl ?? 15;
  const stats = o.stats ?? new CheckStats();
  const opts = {
    prefix: o.prefix,
    zone: o.zone,
    ttl,
    hostname: o.hostname ?? hostname(),
    defaults: { intervalMs: o.checkIntervalMs ?? 3000, timeoutMs: o.checkTimeoutMs ?? 1000 },
  };
  const announced = new Map<string, { inst: CheckedAnnouncement; fingerprint: string }>();
  /** Problems already logged, per container (forgotten when the container is gone). */
  const reported = new Map<string, Set<string>>();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let again = false;

  const reconcile = async () => {
    const want = new Map<string, DesiredInstance>();
    const list = await docker.listContainers();
    for (const id of reported.keys()) if (!list.some((c) => c.Id === id)) reported.delete(id);
    for (const c of list) {
      try {
        const { instances, errors } = desiredInstances(
          await docker.getContainer(c.Id).inspect(),
          opts,
        );
        const seen = reported.get(c.Id) ?? new Set<string>();
        for (const e of errors) {
          if (!seen.has(e)) o.log.warn({ container: c.Id.slice(0, 12) }, `${e}; not announced`);
          seen.add(e);
        }
        if (errors.length) reported.set(c.Id, seen);
        for (const d of instances) want.set(d.key, d);
      } catch (err) {
        o.log.debug({ container: c.Id, err: errorMessage(err) }, 'inspect failed');
      }
    }
    for (const [key, cur] of announced) {
      const d = want.get(key);
      if (d?.fingerprint === cur.fingerprint) continue;
      announced.delete(key);
      await cur.inst.stop();
    }
    for (const [key, d] of want) {
      const cur = announced.get(key);
      if (cur) {
        await cur.inst.setDockerHealth(d.docker);
        continue;
      }
      if (stopped) continue;
      const inst = new CheckedAnnouncement({
        client: o.client,
        key,
        record: d.record,
        meta: d.meta,
        ttl,
        log: o.log,
        check: d.check,
        docker: d.docker,
        stats,
      });
      try {
        await inst.start();
        announced.set(key, { inst, fingerprint: d.fingerprint });
      } catch (err) {
        o.log.warn({ key, err: errorMessage(err) }, 'could not announce; next pass retries');
      }
    }
  };
  const trigger = () => {
    if (stopped) return;
    again = true;
    running = running.then(async () => {
      if (!again || stopped) return;
      again = false;
      try {
        await reconcile();
      } catch (err) {
        o.log.warn({ err: errorMessage(err) }, 'registrator pass failed');
      }
    });
  };
  trigger();
  const timer = setInterval(trigger, 5000);
  let events: NodeJS.ReadableStream | null = null;
  try {
    events = (await docker.getEvents({
      filters: {
        type: ['container'],
        event: ['start', 'die', 'stop', 'destroy', 'health_status'],
      },
    })) as NodeJS.ReadableStream;
    events.on('data', trigger);
    events.on('error', () => undefined);
  } catch (err) {
    o.log.warn({ err: errorMessage(err) }, 'docker events unavailable; polling every 5 s');
  }
  await running;
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      (events as unknown as { destroy?: () => void } | null)?.destroy?.();
      await running;
      await Promise.all([...announced.values()].map((a) => a.inst.stop()));
      announced.clear();
    },
  };
}
