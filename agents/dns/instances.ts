/**
 * Instance metadata, pure: the extra fields announce and registrator mode write into a SkyDNS
 * record (`hostname` of the announcer, `version`, `health`), where a withdrawn (failing)
 * instance is kept while it is out of DNS, and the rows `dnsctl ls` prints.
 *
 * SkyDNS and CoreDNS decode a record with Go's `json.Unmarshal` into `msg.Service`, which
 * ignores unknown fields; Go matches field names case-insensitively, so the extra names must not
 * fold to one of msg.Service's (host, port, priority, weight, text, mail, ttl, targetstrip,
 * group, key). instances.test.ts checks that.
 */
import { fqdn, hostKind, keyToName, parseRecord, RecordError } from './records.js';
import type { Health } from './health.js';

/** msg.Service's JSON fields (SkyDNS 2.5, CoreDNS plugin/etcd/msg). */
export const SKYDNS_FIELDS = [
  'host',
  'port',
  'priority',
  'weight',
  'text',
  'mail',
  'ttl',
  'targetstrip',
  'group',
  'key',
];

export interface InstanceMeta {
  /** Hostname of the machine that announces it. */
  hostname?: string | undefined;
  /** `announce --version-label`, or the container's image tag. */
  version?: string | undefined;
  health: Health;
}

export const META_FIELDS = ['hostname', 'version', 'health'] as const;

/** Adds the metadata to a record's JSON (as formatRecord writes it); empty fields are left out. */
export function withMeta(recordJson: string, meta: InstanceMeta): string {
  const o = JSON.parse(recordJson) as Record<string, unknown>;
  if (meta.hostname) o['hostname'] = meta.hostname;
  if (meta.version) o['version'] = meta.version;
  o['health'] = meta.health;
  return JSON.stringify(o);
}

/**
 * A failing instance's record moves here, outside every DNS prefix, under the same lease: dnsd
 * and SkyDNS no longer see it, `dnsctl ls` still does, and it still dies with its announcer.
 */
export const WITHDRAWN_PREFIX = '/flotilla/dns/withdrawn';

export function withdrawnKey(key: string): string {
  return `${WITHDRAWN_PREFIX}${key}`;
}

/** The DNS key a withdrawn key stands for; null when `key` is not under WITHDRAWN_PREFIX. */
export function dnsKeyOf(withdrawn: string): string | null {
  return withdrawn.startsWith(`${WITHDRAWN_PREFIX}/`)
    ? withdrawn.slice(WITHDRAWN_PREFIX.length)
    : null;
}

/** The tag of an image reference: `nginx:1.25` → 1.25, `reg:5000/app` → latest, `app@sha256:…` → sha256:… (12 hex). */
export function imageTag(image: string): string {
  if (image === '' || /^sha256:[0-9a-f]+$/.test(image)) return '';
  const at = image.indexOf('@');
  if (at !== -1) return image.slice(at + 1, at + 1 + 'sha256:'.length + 12);
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  return colon === -1 ? 'latest' : image.slice(colon + 1);
}

export interface InstanceRow {
  name: string;
  key: string;
  /** "10.5.7.2:80", "10.5.7.2" without a port, "→ target." for an alias. */
  address: string;
  host: string;
  version: string;
  /** Health as announced; `alias` for a dnsctl alias, `-` for a record without metadata. */
  health: Health | 'alias' | '-';
  /** Seconds left on the record's lease; null for a record without a lease. */
  ttlLeft: number | null;
  /** Whether the record is in DNS (false: withdrawn while failing). */
  inDns: boolean;
}

function str(o: Record<string, unknown>, f: string): string {
  const v = o[f];
  return typeof v === 'string' ? v : '';
}

/**
 * One row from an etcd key/value: a DNS record under `prefix`, or a withdrawn one. Throws
 * RecordError (naming the key) for a value that is not a valid record.
 */
export function instanceRow(
  key: string,
  value: string,
  prefix: string,
  ttlLeft: number | null,
): InstanceRow {
  const dnsKey = dnsKeyOf(key);
  const name = keyToName(dnsKey ?? key, prefix);
  if (name === null) throw new RecordError(`key ${key}: not under ${prefix}/`);
  const r = parseRecord(key, value);
  const o = JSON.parse(value) as Record<string, unknown>;
  const isName = hostKind(r.host) === 'name';
  const health = str(o, 'health');
  const ip = r.host.includes(':') ? `[${r.host}]` : r.host;
  return {
    name,
    key: dnsKey ?? key,
    address: isName ? `→ ${r.host}` : r.host === '' ? '' : r.port ? `${ip}:${r.port}` : r.host,
    host: str(o, 'hostname'),
    version: str(o, 'version'),
    health:
      o['alias'] === true
        ? 'alias'
        : health === 'passing' ||
            health === 'failing' ||
            health === 'starting' ||
            health === 'unchecked'
          ? health
          : '-',
    ttlLeft,
    inDns: dnsKey === null,
  };
}

/** Rows at or below `name` (every row when name is undefined), sorted by key (so by service). */
export function rowsUnder(rows: InstanceRow[], name: string | undefined): InstanceRow[] {
  const n = name ? fqdn(name) : undefined;
  return rows
    .filter((r) => !n || n === '.' || r.name === n || r.name.endsWith(`.${n}`))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The human table of `dnsctl ls`. */
export function formatTable(rows: InstanceRow[]): string {
  const head = ['NAME', 'ADDRESS', 'HOST', 'VERSION', 'HEALTH', 'TTL'];
  const body = rows.map((r) => [
    r.name,
    r.address || '-',
    r.host || '-',
    r.version || '-',
    r.inDns ? r.health : `${r.health} (withdrawn)`,
    r.ttlLeft === null ? '-' : `${r.ttlLeft}s`,
  ]);
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all
    .map((row) =>
      row
        .map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

/** The record `dnsctl alias` writes: a CNAME-style SkyDNS record, marked so ls can tell it apart. */
export function aliasRecord(target: string, ttl: number): string {
  return JSON.stringify({ host: fqdn(target), ttl, alias: true });
}
