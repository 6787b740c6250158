/**
 * SkyDNS record model, pure: the mapping between DNS names and etcd keys (reversed labels
 * under a prefix) and the record JSON that sidekicks write (`host`, `port`, `priority`,
 * `weight`, `text`, `mail`, `ttl`, `targetstrip`, `group`), checked field by field.
 */
import { isIP } from 'node:net';

export interface ServiceRecord {
  /** IPv4/IPv6 address or a domain name (CNAME target); empty for text-only records. */
  host: string;
  port: number;
  priority: number;
  weight: number;
  text: string;
  mail: boolean;
  /** Record TTL in seconds, 0 when not set. */
  ttl: number;
  targetstrip: number;
  group: string;
  /**
   * Written by `dnsctl alias`: the name answers what its target answers for every type,
   * SRV included (a plain SkyDNS name record makes one SRV of its own instead).
   */
  alias: boolean;
}

export type HostKind = 'ipv4' | 'ipv6' | 'name' | 'none';

export class RecordError extends Error {
  override name = 'RecordError';
}

/** Lower-case labels of a DNS name, without the root: "X1.web.skydns.local." → ["x1","web","skydns","local"]. */
export function labelsOf(name: string): string[] {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed === '') return [];
  return trimmed.toLowerCase().split('.');
}

/** Fully qualified, lower-case form with the trailing dot. */
export function fqdn(name: string): string {
  const labels = labelsOf(name);
  return labels.length === 0 ? '.' : `${labels.join('.')}.`;
}

function normPrefix(prefix: string): string {
  const p = prefix.replace(/\/+$/, '');
  return p.startsWith('/') ? p : `/${p}`;
}

/** `x1.web.skydns.local.` with prefix `/skydns` → `/skydns/local/skydns/web/x1`. */
export function nameToKey(name: string, prefix = '/skydns'): string {
  const labels = labelsOf(name);
  if (labels.some((l) => l === '' || l.includes('/')))
    throw new RecordError(`"${name}" is not a valid domain name`);
  return [normPrefix(prefix), ...labels.reverse()].join('/');
}

/** Inverse of nameToKey; null when the key is not under the prefix. */
export function keyToName(key: string, prefix = '/skydns'): string | null {
  const labels = keyLabels(key, prefix);
  return labels === null ? null : labels.length === 0 ? '.' : `${labels.join('.')}.`;
}

/** Name labels (leftmost first) of a key under the prefix, lower-cased; null when outside. */
export function keyLabels(key: string, prefix = '/skydns'): string[] | null {
  const p = `${normPrefix(prefix)}/`;
  if (!key.startsWith(p)) return null;
  const parts = key.slice(p.length).split('/');
  if (parts.some((x) => x === '')) return null;
  return parts.map((x) => x.toLowerCase()).reverse();
}

export function hostKind(host: string): HostKind {
  if (host === '') return 'none';
  const v = isIP(host);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : 'name';
}

const NAME_RE = /^(?=.{1,253}\.?$)([a-z0-9_*-]{1,63})(\.[a-z0-9_*-]{1,63})*\.?$/i;

function intField(obj: Record<string, unknown>, field: string, max: number, where: string): number {
  const v = obj[field];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw new RecordError(
      `${where}: "${field}" must be a whole number 0..${max}, got ${JSON.stringify(v)}`,
    );
  return v;
}

function strField(obj: Record<string, unknown>, field: string, where: string): string {
  const v = obj[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string')
    throw new RecordError(`${where}: "${field}" must be a string, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Parses one record value as written under `key`. Throws RecordError with the key and the
 * offending field; the caller logs it once and skips the record. Priority 0 / unset → 10,
 * as SkyDNS and CoreDNS do.
 */
export function parseRecord(key: string, value: string): ServiceRecord {
  let obj: unknown;
  try {
    obj = JSON.parse(value);
  } catch (err) {
    throw new RecordError(`record at ${key}: not JSON (${(err as Error).message})`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw new RecordError(`record at ${key}: must be a JSON object like {"host":"10.5.7.2"}`);
  const o = obj as Record<string, unknown>;
  const where = `record at ${key}`;
  const host = strField(o, 'host', where).trim();
  const text = strField(o, 'text', where);
  const group = strField(o, 'group', where);
  const mail = o['mail'];
  if (mail !== undefined && mail !== null && typeof mail !== 'boolean')
    throw new RecordError(`${where}: "mail" must be true or false, got ${JSON.stringify(mail)}`);
  if (host !== '' && isIP(host) === 0 && !NAME_RE.test(host))
    throw new RecordError(
      `${where}: "host" ${JSON.stringify(host)} is neither an IP address nor a domain name`,
    );
  if (host === '' && text === '')
    throw new RecordError(`${where}: needs a "host" (address or name) or a "text"`);
  const priority = intField(o, 'priority', 65535, where);
  return {
    host: isIP(host) === 0 && host !== '' ? fqdn(host) : host,
    port: intField(o, 'port', 65535, where),
    priority: priority === 0 ? 10 : priority,
    weight: intField(o, 'weight', 65535, where),
    text,
    mail: mail === true,
    ttl: intField(o, 'ttl', 0x7fffffff, where),
    targetstrip: intField(o, 'targetstrip', 127, where),
    group,
    // Metadata like `hostname` or `version`: anything but `true` is no alias, never an error.
    alias: o['alias'] === true && isIP(host) === 0 && host !== '',
  };
}

/** The JSON a sidekick writes; fields left at their defaults are omitted. */
export function formatRecord(r: Partial<ServiceRecord> & { host: string }): string {
  const out: Record<string, unknown> = { host: r.host };
  if (r.port) out['port'] = r.port;
  if (r.priority) out['priority'] = r.priority;
  if (r.weight) out['weight'] = r.weight;
  if (r.text) out['text'] = r.text;
  if (r.mail) out['mail'] = true;
  if (r.ttl) out['ttl'] = r.ttl;
  if (r.targetstrip) out['targetstrip'] = r.targetstrip;
  if (r.group) out['group'] = r.group;
  return JSON.stringify(out);
}
