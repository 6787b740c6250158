/**
 * `dnsd --docker`: announces running containers labelled `service=NAME` (optional
 * `service.port=N`, else the first exposed port) as `<id12>.NAME.<zone>`, and removes them when
 * they stop. Reconciles desired (running labelled containers) against announced on every Docker
 * event and every 5 s, so a missed event cannot leave a stale record.
 */
import Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { Announcement, containerAddress } from './announce.js';
import { formatRecord, nameToKey } from './records.js';

export interface RegistratorOptions {
  client: Etcd3;
  prefix: string;
  /** Zone names are announced under, e.g. "skydns.local.". */
  zone: string;
  socketPath: string;
  log: Logger;
  ttl?: number;
}

export interface Desired {
  key: string;
  value: string;
}

/** The record a labelled container should have; null when it should have none. */
export function desiredRecord(
  info: Docker.ContainerInspectInfo,
  prefix: string,
  zone: string,
  ttl: number,
): Desired | null {
  const service = info.Config?.Labels?.['service'];
  if (!service || !/^[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})*$/i.test(service)) return null;
  const a = containerAddress(info);
  if (!a.running || !a.ip) return null;
  const labelPort = Number(info.Config?.Labels?.['service.port']);
  const port =
    Number.isInteger(labelPort) && labelPort > 0 && labelPort < 65536 ? labelPort : a.port;
  const name = `${info.Id.slice(0, 12)}.${service}.${zone}`;
  return { key: nameToKey(name, prefix), value: formatRecord({ host: a.ip, port, ttl }) };
}

export async function startRegistrator(o: RegistratorOptions): Promise<{ stop(): Promise<void> }> {
  const docker = new Docker({ socketPath: o.socketPath });
  const ttl = o.ttl ?? 15;
  const announced = new Map<string, { ann: Announcement; value: string }>();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let again = false;

  const reconcile = async () => {
    const want = new Map<string, string>();
    const list = await docker.listContainers({ filters: { label: ['service'] } });
    for (const c of list) {
      try {
        const d = desiredRecord(await docker.getContainer(c.Id).inspect(), o.prefix, o.zone, ttl);
        if (d) want.set(d.key, d.value);
      } catch (err) {
        o.log.debug({ container: c.Id, err: errorMessage(err) }, 'inspect failed');
      }
    }
    for (const [key, cur] of announced)
      if (want.get(key) !== cur.value) {
        announced.delete(key);
        await cur.ann.stop();
      }
    for (const [key, value] of want) {
      if (announced.has(key) || stopped) continue;
      const ann = new Announcement(o.client, key, value, ttl, o.log);
      try {
        await ann.start();
        announced.set(key, { ann, value });
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
      filters: { type: ['container'], event: ['start', 'die', 'stop', 'destroy'] },
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
      await Promise.all([...announced.values()].map((a) => a.ann.stop()));
      announced.clear();
    },
  };
}
