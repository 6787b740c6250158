/**
 * Registrator's conventions, pure: which records a container should have in registrator mode
 * (`dnsd --docker`), from its env and labels, as gliderlabs/registrator reads them (labels win
 * over env; SERVICE_<port>_X wins over SERVICE_X for that port):
 *
 *   SERVICE_NAME, SERVICE_<port>_NAME   the service; a container without one is skipped
 *                                       (registrator's -explicit mode). With several exposed
 *                                       ports, a name not given per port gets "-<port>".
 *   SERVICE_ID                          the instance label (default: the first 12 characters of
 *                                       the container id, "-<port>" with several ports)
 *   SERVICE_IGNORE, SERVICE_<port>_IGNORE   skip the container / that port
 *   SERVICE_TAGS                        comma-separated; published as the record's TXT text
 *   SERVICE_CHECK_HTTP (path or URL), SERVICE_CHECK_TCP (true, PORT or HOST:PORT),
 *   SERVICE_CHECK_INTERVAL, SERVICE_CHECK_TIMEOUT (Go durations: 3s, 500ms)
 *
 * Flotilla's own `service=NAME` label (+ `service.port=N`) still gives one record per container.
 * The record: `<id>.<name>.<zone>` → container IP and port, with hostname, image tag as
 * version, and the container's Docker health.
 */
import type Docker from 'dockerode';
import { parseDuration } from '../common/cli.js';
import { containerAddress } from './announce.js';
import {
  checkTiming,
  CheckSpecError,
  dockerHealthOf,
  httpTarget,
  tcpTarget,
  type CheckSpec,
  type DockerHealth,
} from './health.js';
import { imageTag } from './instances.js';
import { formatRecord, nameToKey } from './records.js';

/** SERVICE_* metadata of a container: env first, then labels over it. */
export function serviceMetadata(
  env: string[] | undefined,
  labels: Record<string, string> | undefined,
): Map<string, string> {
  const meta = new Map<string, string>();
  for (const e of env ?? []) {
    const eq = e.indexOf('=');
    if (eq > 0 && e.startsWith('SERVICE_')) meta.set(e.slice(0, eq), e.slice(eq + 1));
  }
  for (const [k, v] of Object.entries(labels ?? {})) if (k.startsWith('SERVICE_')) meta.set(k, v);
  return meta;
}

export interface RegistratorService {
  name: string;
  /** The instance's own (leftmost) label. */
  id: string;
  /** 0 when the container exposes none. */
  port: number;
  tags: string[];
  check: { http?: string; tcp?: string; interval?: string; timeout?: string };
}

const NAME_RE = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;
const LABEL_RE = /^[a-z0-9_-]{1,63}$/;

/** Exposed container ports, lowest first; "80/tcp" → 80. */
function exposedPorts(info: Docker.ContainerInspectInfo): number[] {
  const ports = Object.keys(info.Config?.ExposedPorts ?? {})
    .map((p) => Number(p.split('/')[0]))
    .filter((n) => Number.isInteger(n) && n > 0 && n < 65536);
  return [...new Set(ports)].sort((a, b) => a - b);
}

/**
 * The services a container announces, plus one message per problem (a bad name or id, a
 * duplicate); the caller logs those once and skips just that service.
 */
export function registratorServices(info: Docker.ContainerInspectInfo): {
  services: RegistratorService[];
  errors: string[];
} {
  const meta = serviceMetadata(info.Config?.Env, info.Config?.Labels);
  const id12 = info.Id.slice(0, 12);
  const errors: string[] = [];
  const services: RegistratorService[] = [];
  const tags = (v: string | undefined) =>
    (v ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
  const checkOf = (get: (k: string) => string | undefined): RegistratorService['check'] => {
    const c: RegistratorService['check'] = {};
    for (const [field, k] of [
      ['http', 'CHECK_HTTP'],
      ['tcp', 'CHECK_TCP'],
      ['interval', 'CHECK_INTERVAL'],
      ['timeout', 'CHECK_TIMEOUT'],
    ] as const) {
      const v = get(k);
      if (v) c[field] = v;
    }
    return c;
  };
  const add = (s: RegistratorService, where: string) => {
    s.name = s.name.toLowerCase().replace(/\.$/, '');
    s.id = s.id.toLowerCase();
    if (!NAME_RE.test(s.name))
      errors.push(`${where}: service name "${s.name}" is not a DNS name (letters, digits, -, _)`);
    else if (!LABEL_RE.test(s.id))
      errors.push(`${where}: service id "${s.id}" is not one DNS label (letters, digits, -, _)`);
    else if (services.some((o) => o.name === s.name && o.id === s.id))
      errors.push(`${where}: ${s.id}.${s.name} is already announced for another port`);
    else services.push(s);
  };

  const labels = info.Config?.Labels ?? {};
  if (meta.get('SERVICE_IGNORE')) return { services, errors };
  const flotilla = labels['service'];
  if (flotilla) {
    const labelPort = Number(labels['service.port']);
    const port =
      Number.isInteger(labelPort) && labelPort > 0 && labelPort < 65536
        ? labelPort
        : (exposedPorts(info)[0] ?? 0);
    add(
      {
        name: flotilla,
        id: meta.get('SERVICE_ID') ?? id12,
        port,
        tags: tags(meta.get('SERVICE_TAGS')),
        check: checkOf((k) => meta.get(`SERVICE_${k}`)),
      },
      'label service',
    );
    return { services, errors };
  }
  const ports = exposedPorts(info);
  if (ports.length === 0) {
    const name = meta.get('SERVICE_NAME');
    if (name)
      add(
        {
          name,
          id: meta.get('SERVICE_ID') ?? id12,
          port: 0,
          tags: tags(meta.get('SERVICE_TAGS')),
          check: checkOf((k) => meta.get(`SERVICE_${k}`)),
        },
        'SERVICE_NAME',
      );
    return { services, errors };
  }
  const group = ports.length > 1;
  for (const port of ports) {
    const get = (k: string) => meta.get(`SERVICE_${port}_${k}`) ?? meta.get(`SERVICE_${k}`);
    if (get('IGNORE')) continue;
    const own = meta.get(`SERVICE_${port}_NAME`);
    let name = own ?? meta.get('SERVICE_NAME');
    if (!name) continue;
    if (group && !own) name = `${name}-${port}`;
    add(
      {
        name,
        id: get('ID') ?? (group ? `${id12}-${port}` : id12),
        port,
        tags: tags(get('TAGS')),
        check: checkOf(get),
      },
      own ? `SERVICE_${port}_NAME` : 'SERVICE_NAME',
    );
  }
  return { services, errors };
}

export interface CheckDefaults {
  intervalMs: number;
  timeoutMs: number;
}

/** The check of a service from its SERVICE_CHECK_* values; null without HTTP or TCP check. */
export function serviceCheck(
  s: RegistratorService,
  ip: string,
  defaults: CheckDefaults,
): CheckSpec | null {
  const c = s.check;
  if (!c.http && !c.tcp) return null;
  if (c.http && c.tcp)
    throw new CheckSpecError('give SERVICE_CHECK_HTTP or SERVICE_CHECK_TCP, not both');
  const dur = (v: string | undefined, field: string, def: number) => {
    if (!v) return def;
    try {
      return parseDuration(v);
    } catch (err) {
      throw new CheckSpecError(`SERVICE_CHECK_${field}: ${(err as Error).message}`);
    }
  };
  const wrap = <T>(field: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new CheckSpecError(`SERVICE_CHECK_${field}: ${(err as Error).message}`);
    }
  };
  const target = c.http
    ? wrap('HTTP', () => httpTarget(c.http!, ip, s.port))
    : wrap('TCP', () => tcpTarget(c.tcp!, ip, s.port));
  const intervalMs = dur(c.interval, 'INTERVAL', defaults.intervalMs);
  // A short SERVICE_CHECK_INTERVAL alone shortens the default timeout with it.
  const timeoutMs = dur(c.timeout, 'TIMEOUT', Math.min(defaults.timeoutMs, intervalMs));
  const timing = checkTiming(
    { intervalMs, timeoutMs, rise: 1, fall: 1 },
    {
      interval: 'SERVICE_CHECK_INTERVAL',
      timeout: 'SERVICE_CHECK_TIMEOUT',
      rise: 'rise',
      fall: 'fall',
    },
  );
  return { target, ...timing };
}

export interface DesiredInstance {
  key: string;
  record: string;
  meta: { hostname: string; version: string };
  check: CheckSpec | null;
  docker: DockerHealth;
  /** Changes whenever the instance must be announced anew (record, meta or check differ). */
  fingerprint: string;
}

export interface DesiredOptions {
  prefix: string;
  /** Zone the names go under, e.g. "skydns.local.". */
  zone: string;
  ttl: number;
  hostname: string;
  defaults: CheckDefaults;
}

/** The instances a running container should have; none while it is not running or has no IP. */
export function desiredInstances(
  info: Docker.ContainerInspectInfo,
  o: DesiredOptions,
): { instances: DesiredInstance[]; errors: string[] } {
  const a = containerAddress(info);
  if (!a.running || !a.ip) return { instances: [], errors: [] };
  const { services, errors } = registratorServices(info);
  const instances: DesiredInstance[] = [];
  const meta = { hostname: o.hostname, version: imageTag(info.Config?.Image ?? '') };
  for (const s of services) {
    let check: CheckSpec | null;
    try {
      check = serviceCheck(s, a.ip, o.defaults);
    } catch (err) {
      errors.push(`${s.id}.${s.name}: ${(err as Error).message}`);
      continue;
    }
    const key = nameToKey(`${s.id}.${s.name}.${o.zone}`, o.prefix);
    const record = formatRecord({
      host: a.ip,
      port: s.port,
      ttl: o.ttl,
      text: s.tags.join(','),
    });
    instances.push({
      key,
      record,
      meta,
      check,
      docker: dockerHealthOf(info),
      fingerprint: JSON.stringify([record, meta, check]),
    });
  }
  return { instances, errors };
}
