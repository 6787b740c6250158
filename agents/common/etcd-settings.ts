/**
 * What every etcd client of the agents shares, whichever client library speaks to etcd: the
 * flags (`--etcd-endpoints` and the TLS files, with ETCDCTL_* / FLANNELD_* env equivalents),
 * their validation into one-line errors, the leader-aware call policy, and the typed
 * permission-denied error. Loads no client library (etcd.ts: etcd3; etcd-client.ts: our own).
 */
import { readFileSync } from 'node:fs';
import type { FlagTable } from './cli.js';
import { ConfigError, UsageError, errorMessage } from './errors.js';

/** etcdctl (v3)'s own names for the TLS files, so a shell set up for etcdctl serves the agents. */
const ETCDCTL_V3: Record<string, string> = {
  ETCD_CAFILE: 'ETCDCTL_CACERT',
  ETCD_CERTFILE: 'ETCDCTL_CERT',
  ETCD_KEYFILE: 'ETCDCTL_KEY',
};

/** Flag table fragment; spread it into an agent's table. `envPrefix` adds e.g. FLANNELD_ETCD_ENDPOINTS. */
export function etcdFlags(envPrefix?: string) {
  const env = (name: string) => [
    ...(envPrefix ? [`${envPrefix}_${name}`] : []),
    `ETCDCTL_${name.replace('ETCD_', '')}`,
    ...(ETCDCTL_V3[name] ? [ETCDCTL_V3[name]] : []),
  ];
  return {
    'etcd-endpoints': {
      type: 'list',
      value: 'URLS',
      help: 'etcd endpoints, comma-separated',
      default: ['http://127.0.0.1:2379'],
      env: env('ETCD_ENDPOINTS'),
    },
    'etcd-cafile': {
      type: 'string',
      value: 'FILE',
      help: 'CA bundle to verify etcd servers (TLS)',
      env: env('ETCD_CAFILE'),
    },
    'etcd-certfile': {
      type: 'string',
      value: 'FILE',
      help: 'client certificate for etcd (TLS)',
      env: env('ETCD_CERTFILE'),
    },
    'etcd-keyfile': {
      type: 'string',
      value: 'FILE',
      help: 'client key for etcd (TLS)',
      env: env('ETCD_KEYFILE'),
    },
  } satisfies FlagTable;
}

export interface EtcdSettings {
  etcdEndpoints: string[];
  etcdCafile?: string | undefined;
  etcdCertfile?: string | undefined;
  etcdKeyfile?: string | undefined;
}

/** Validated settings: endpoint URLs and the TLS files' contents. */
export interface EtcdConnectSettings {
  endpoints: URL[];
  /** True when any endpoint is https. */
  tls: boolean;
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
}

/** Checks endpoints and TLS files; throws UsageError/ConfigError naming the flag. */
export function validateEtcdSettings(s: EtcdSettings): EtcdConnectSettings {
  if (s.etcdEndpoints.length === 0) throw new UsageError('--etcd-endpoints: no endpoint given');
  const endpoints = s.etcdEndpoints.map((ep) => {
    let url: URL;
    try {
      url = new URL(ep);
    } catch {
      throw new UsageError(`--etcd-endpoints: "${ep}" is not a URL like http://127.0.0.1:2379`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UsageError(`--etcd-endpoints: "${ep}" must start with http:// or https://`);
    if (!url.port)
      throw new UsageError(`--etcd-endpoints: "${ep}" has no port (etcd listens on 2379)`);
    return url;
  });
  const read = (flag: string, file: string | undefined): Buffer | undefined => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`--${flag}: cannot read "${file}": ${errorMessage(err)}`);
    }
  };
  const ca = read('etcd-cafile', s.etcdCafile);
  const cert = read('etcd-certfile', s.etcdCertfile);
  const key = read('etcd-keyfile', s.etcdKeyfile);
  if (Boolean(cert) !== Boolean(key))
    throw new UsageError('--etcd-certfile and --etcd-keyfile must be given together');
  return { endpoints, tls: endpoints.some((u) => u.protocol === 'https:'), ca, cert, key };
}

/** gRPC metadata that makes etcd refuse (or cancel) a call on a member without a leader. */
export const REQUIRE_LEADER: Readonly<Record<string, string>> = { hasleader: 'true' };

/** Unary calls give up after this long (a member cut off mid-call must not hang an agent). */
export const UNARY_DEADLINE_MS = 5000;

/**
 * gRPC's message for an unreachable etcd as one line without its noise
 * ("14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED …
 * Resolution note: " → "connect ECONNREFUSED …").
 */
export function etcdErrorLine(message: string): string {
  const m = message
    .replace(/\s*Resolution note:[\s\S]*$/, '')
    .replace(/^\d+ [A-Z_]+: (No connection established\. )?(Last error: )?(Error: )?/, '')
    .replace(/\s+/g, ' ')
    .replace(/[.;, ]+$/, '');
  return m || message.trim();
}

export const ENDPOINTS_HINT = '(check --etcd-endpoints or ETCDCTL_ENDPOINTS)';

/**
 * etcd refused an operation because the client's etcd user (the CN of its certificate, with
 * client-certificate auth) has no role granting it. Names the key and the access needed, so
 * the log line says what to grant, or that the agent tried to reach outside its prefix.
 */
export class EtcdPermissionError extends ConfigError {
  override name = 'EtcdPermissionError';
  constructor(
    readonly access: 'read' | 'write',
    readonly key: string,
  ) {
    super(
      `etcd refused to ${access} ${key}: permission denied (the etcd user of this client's ` +
        `certificate has no role granting ${access} on that key; see "etcd users and roles" in docs/operations.md)`,
    );
  }
}

/** True for etcd's "permission denied" (RBAC) answer, from etcd3 or from etcd-client.ts. */
export function isPermissionDenied(err: unknown): boolean {
  // By name and message: neither client library is loaded here.
  return (
    (err as { name?: string } | undefined)?.name === 'EtcdPermissionDeniedError' ||
    /etcdserver: permission denied/.test(errorMessage(err))
  );
}

/**
 * For `.catch(...)` on an etcd call: a permission denial becomes an EtcdPermissionError naming
 * `key` (a prefix is written `prefix*`) and the access; any other error is rethrown as it is.
 */
export function explainDenied(access: 'read' | 'write', key: string): (err: unknown) => never {
  return (err: unknown) => {
    if (isPermissionDenied(err)) throw new EtcdPermissionError(access, key);
    throw err;
  };
}
