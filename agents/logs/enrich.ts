/**
 * Turns a record as Docker's fluentd driver sends it (`container_id`, `container_name` with a
 * leading slash, `source`, `log`, plus chosen labels/env and `partial_*` keys) into the record
 * Flotilla stores: `log`, `stream`, `service`, `host`, `container_name`, `container_id`, and the
 * remaining keys untouched. `service` is the `service` label, else env SERVICE_NAME, else the
 * Compose service label, else the container name, else (a plain Fluentd/Fluent Bit client, no
 * Docker fields) the event's tag (`serviceOf`).
 * Pure, except `MetadataCache`, which asks dockerd (and remembers the answer, so lines a `--rm`
 * container printed just before it was removed are still attributed).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { parseMaxSize } from './inputs/rotation.js';
import type { LogRecord } from './forward/codec.js';

export interface ContainerMeta {
  name: string;
  labels: Record<string, string>;
  env: Record<string, string>;
}

const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : Buffer.isBuffer(v) ? v.toString() : undefined;

/** True when the record alone cannot name its service and container metadata would help. */
export function needsMeta(rec: LogRecord): boolean {
  return str(rec.service) === undefined && str(rec.SERVICE_NAME) === undefined;
}

/** The label Docker Compose puts on every container it starts: the service's name in the file. */
export const COMPOSE_SERVICE = 'com.docker.compose.service';

/**
 * The attribution order, one place for both inputs: label `service`, else env `SERVICE_NAME`,
 * else label `com.docker.compose.service` (a Compose service), else the container name, else
 * (no Docker fields) the tag. A field the driver sent (`--log-opt labels=…`/`env=…`) counts as
 * the label or env it copies.
 */
export function serviceOf(rec: LogRecord, meta?: ContainerMeta, tag?: string): string {
  return (
    str(rec.service) ??
    str(rec.SERVICE_NAME) ??
    (meta?.labels.service || undefined) ??
    (meta?.env.SERVICE_NAME || undefined) ??
    str(rec[COMPOSE_SERVICE]) ??
    (meta?.labels[COMPOSE_SERVICE] || undefined) ??
    containerName(rec, meta) ??
    (tag || undefined) ??
    'unknown'
  );
}

function containerName(rec: LogRecord, meta?: ContainerMeta): string | undefined {
  const n = str(rec.container_name) ?? meta?.name;
  return n?.replace(/^\//, '');
}

export function enrich(
  rec: LogRecord,
  host: string,
  meta?: ContainerMeta,
  tag?: string,
): LogRecord {
  const { source, container_name: _n, container_id, log, ...rest } = rec;
  const out: LogRecord = {
    log: Buffer.isBuffer(log) ? log.toString() : (log ?? ''),
    stream: str(source) ?? str(rec.stream) ?? 'stdout',
    service: serviceOf(rec, meta, tag),
    host: str(rec.host) ?? host,
    container_name: containerName(rec, meta) ?? '',
    container_id: str(container_id) ?? '',
  };
  for (const [k, v] of Object.entries(rest)) if (!(k in out)) out[k] = v;
  return out;
}

/** dockerd's inspect → ContainerMeta. */
export function metaFromInspect(info: Docker.ContainerInspectInfo): ContainerMeta {
  const env: Record<string, string> = {};
  for (const kv of info.Config?.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { name: info.Name.replace(/^\//, ''), labels: info.Config?.Labels ?? {}, env };
}

/**
 * config.v2.json (and hostconfig.json, for the json-file max-size) → metadata (pure).
 */
export function metaFromConfig(
  text: string,
  hostConfig?: string,
): ContainerMeta & { maxSize?: number } {
  const c = JSON.parse(text) as {
    Name?: string;
    Config?: { Labels?: Record<string, string> | null; Env?: string[] | null };
    HostConfig?: { LogConfig?: { Config?: Record<string, string> | null } };
  };
  const env: Record<string, string> = {};
  for (const kv of c.Config?.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  let hc = c.HostConfig;
  try {
    if (hostConfig) hc = JSON.parse(hostConfig) as typeof hc;
  } catch {
    // only the max-size is missing then (skipped bytes are counted lower)
  }
  const maxSize = parseMaxSize(hc?.LogConfig?.Config?.['max-size'] ?? undefined);
  return {
    name: (c.Name ?? '').replace(/^\//, ''),
    labels: c.Config?.Labels ?? {},
    env,
    ...(maxSize ? { maxSize } : {}),
  };
}

/** How dockerd answers an inspect: the metadata, "gone" (404: removed), or a failure to retry. */
export type Lookup = ContainerMeta | 'gone';

/**
 * Container metadata by id, asked of dockerd and kept (bounded, oldest forgotten first).
 * Attribution must not depend on timing: a lookup that fails or times out is retried with
 * backoff for up to `waitMs`, and a failure is never remembered as an answer (the next record
 * asks again). Only "no such container" resolves to undefined at once. `watch` inspects
 * containers as they start, before their first line can race their removal.
 * `docker` may be a promise (the client is loaded after the agent is already listening).
 */
export class MetadataCache {
  private readonly cache = new Map<string, Promise<ContainerMeta | undefined>>();
  private readonly done = new Map<string, ContainerMeta | undefined>();

  constructor(
    private readonly docker: Docker | Promise<Docker | undefined> | undefined,
    /** Docker's containers directory: `config.v2.json` is read from there first. */
    private readonly containersDir?: string,
    private readonly max = 10_000,
    private readonly attemptMs = 2000,
    private readonly waitMs = 5000,
  ) {}

  get(id: string): Promise<ContainerMeta | undefined> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    if (this.known(id)) return Promise.resolve(this.done.get(id));
    const p = this.lookupWithRetry(id).then((m) => {
      if (m === undefined)
        this.cache.delete(id); // failed: ask again for the next record
      else {
        const meta = m === 'gone' ? undefined : m;
        this.done.set(id, meta);
        return meta;
      }
      return undefined;
    });
    this.cache.set(id, p);
    if (this.cache.size > this.max) {
      const oldest = this.cache.keys().next().value!;
      this.cache.delete(oldest);
      this.done.delete(oldest);
    }
    return p;
  }

  /**
   * True once the metadata of `id` is at hand (its answer is in `resolved`). Tries the
   * container's config.v2.json first, synchronously: unlike an inspect, reading it never waits
   * on dockerd, which holds a container's lock while it waits (up to 10 s) for the log driver
   * to drain after the container exits, and the driver waits for our ack: an inspect then
   * stalls the very lines it is for until dockerd gives up on them.
   */
  known(id: string): boolean {
    if (this.done.has(id)) return true;
    if (!this.containersDir || !/^[0-9a-f]{64}$/.test(id)) return false;
    try {
      const m = metaFromConfig(
        readFileSync(join(this.containersDir, id, 'config.v2.json'), 'utf8'),
      );
      this.done.set(id, m);
      this.cache.set(id, Promise.resolve(m));
      return true;
    } catch {
      return false;
    }
  }

  resolved(id: string): ContainerMeta | undefined {
    return this.done.get(id);
  }

  async watch(signal: AbortSignal): Promise<void> {
    const docker = await this.docker;
    if (!docker) return;
    const stream = (await docker.getEvents({
      filters: { type: ['container'], event: ['start'] },
    })) as NodeJS.ReadableStream & { destroy(): void };
    signal.addEventListener('abort', () => stream.destroy(), { once: true });
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const ev = JSON.parse(line) as { id?: string };
          if (ev.id) void this.get(ev.id);
        } catch {
          // partial or foreign line: the lookup on first record covers it
        }
      }
    });
    stream.on('error', () => undefined);
  }

  /** Retries until dockerd answers or `waitMs` has passed; undefined = no answer in time. */
  private async lookupWithRetry(id: string): Promise<Lookup | undefined> {
    const docker = await this.docker;
    if (!docker || !id) return 'gone';
    const end = Date.now() + this.waitMs;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      const r = await this.lookup(docker, id);
      if (r !== undefined || Date.now() + delay >= end) return r;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  private async lookup(docker: Docker, id: string): Promise<Lookup | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const info = await Promise.race([
        docker.getContainer(id).inspect(),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), this.attemptMs);
        }),
      ]);
      return info ? metaFromInspect(info) : undefined;
    } catch (err) {
      return (err as { statusCode?: number }).statusCode === 404 ? 'gone' : undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
