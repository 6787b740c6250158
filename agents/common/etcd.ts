/**
 * etcd access shared by every agent: the flags (`--etcd-endpoints` and the TLS files, with
 * ETCDCTL_* / FLANNELD_* env equivalents), validation that turns a bad endpoint or missing TLS
 * file into a one-line error, and a connected `Etcd3` client that only talks to members that
 * have a leader (see `leaderAwareOptions`).
 */
// Before etcd3: it builds its gRPC client at import time (see etcd-proto.ts).
import './etcd-proto.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Grpc from '@grpc/grpc-js';
import type { Etcd3, IOptions } from 'etcd3';
import type { FlagTable } from './cli.js';
import { ConfigError, UsageError, errorMessage } from './errors.js';

/**
 * etcd3 and gRPC are loaded when a client is made, not at import: together they take over a
 * second, which commands that only parse etcd flags (logsd agent, logs with --server) should
 * not pay.
 */
function load<T>(name: string): T {
  return createRequire(import.meta.url)(name) as T;
}

/** Flag table fragment; spread it into an agent's table. `envPrefix` adds e.g. FLANNELD_ETCD_ENDPOINTS. */
export function etcdFlags(envPrefix?: string) {
  const env = (name: string) => [
    ...(envPrefix ? [`${envPrefix}_${name}`] : []),
    `ETCDCTL_${name.replace('ETCD_', '')}`,
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

/** Checks endpoints and TLS files; throws UsageError/ConfigError naming the flag. */
export function etcdOptions(s: EtcdSettings): IOptions {
  if (s.etcdEndpoints.length === 0) throw new UsageError('--etcd-endpoints: no endpoint given');
  for (const ep of s.etcdEndpoints) {
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
  }
  const read = (flag: string, file: string | undefined): Buffer | undefined => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`--${flag}: cannot read "${file}": ${errorMessage(err)}`);
    }
  };
  const rootCertificate = read('etcd-cafile', s.etcdCafile);
  const certChain = read('etcd-certfile', s.etcdCertfile);
  const privateKey = read('etcd-keyfile', s.etcdKeyfile);
  if (Boolean(certChain) !== Boolean(privateKey))
    throw new UsageError('--etcd-certfile and --etcd-keyfile must be given together');
  const tls = s.etcdEndpoints.some((e) => e.startsWith('https:'));
  if (tls) quietIpServernameWarning();
  const opts: IOptions = { hosts: s.etcdEndpoints, dialTimeout: 3000, ...leaderAwareOptions() };
  if (tls || rootCertificate || certChain) {
    opts.credentials = {
      rootCertificate: rootCertificate ?? Buffer.alloc(0),
      ...(certChain ? { certChain } : {}),
      ...(privateKey ? { privateKey } : {}),
    } as IOptions['credentials'];
  }
  return opts;
}

let quieted = false;
/**
 * grpc-js hands an endpoint's IP address to TLS as the SNI server name; Node ignores it (SNI is
 * for names) and prints deprecation DEP0123 on stderr of every agent that reaches etcd by IP over
 * TLS. The certificate is still verified against the IP (its subjectAltName), so only that one
 * warning is dropped; every other warning is printed as before.
 */
function quietIpServernameWarning(): void {
  if (quieted) return;
  quieted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const [, opts, code] = args;
    const c = typeof opts === 'object' && opts !== null ? (opts as { code?: string }).code : code;
    if (c === 'DEP0123') return;
    emit(...args);
  }) as typeof process.emitWarning;
}

/** gRPC metadata that makes etcd refuse (or cancel) a call on a member without a leader. */
export const REQUIRE_LEADER: Readonly<Record<string, string>> = { hasleader: 'true' };

/** Unary calls give up after this long (a member cut off mid-call must not hang an agent). */
export const UNARY_DEADLINE_MS = 5000;

/** A backoff that doubles from `ms` up to `maxMs` (cockatiel's IBackoff shape, as etcd3 uses it). */
function doubling(
  ms: number,
  maxMs: number,
): { duration: number; next(): ReturnType<typeof doubling> } {
  return { duration: ms, next: () => doubling(Math.min(ms * 2, maxMs), maxMs) };
}

/**
 * Client options that keep an agent on the majority side of an etcd cluster:
 * - every call carries `hasleader=true` (clientv3's `WithRequireLeader`): a member without a
 *   leader refuses unary calls at once with "etcdserver: no leader", and cancels open watch and
 *   keep-alive streams after ~3 election timeouts. The etcd3 client then marks that member
 *   failed and reconnects through another endpoint; watchers resume from their last revision;
 * - unary calls carry a 5 s deadline, and gRPC keep-alive pings (every 10 s, 5 s to answer)
 *   notice a member that vanished without closing the connection (link down);
 * - a broken watch reconnects after 250 ms doubling to 1 s (etcd3's default grows to 30 s, far
 *   too late after an outage).
 */
export function leaderAwareOptions(): Pick<
  IOptions,
  'defaultCallOptions' | 'grpcOptions' | 'faultHandling'
> {
  const { Metadata, credentials: grpcCredentials } = load<typeof Grpc>('@grpc/grpc-js');
  const requireLeader = grpcCredentials.createFromMetadataGenerator((_params, callback) => {
    const md = new Metadata();
    for (const [k, v] of Object.entries(REQUIRE_LEADER)) md.set(k, v);
    callback(null, md);
  });
  return {
    defaultCallOptions: (ctx) =>
      ctx.isStream
        ? { credentials: requireLeader }
        : { credentials: requireLeader, deadline: Date.now() + UNARY_DEADLINE_MS },
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5000,
    },
    faultHandling: {
      watchBackoff: doubling(250, 1000) as never,
    },
  };
}

/**
 * One lease keep-alive round trip: resolves the lease's remaining TTL in seconds (0 = the lease
 * is gone). Each attempt opens a fresh stream (the pool picks a member, skipping ones marked
 * failed) and gives up after `timeoutMs`; a member without a leader refuses it at once, so
 * the next attempt goes elsewhere. Rejects with the last error after `attempts` tries.
 */
export async function keepAliveOnce(
  client: Etcd3,
  id: string,
  { attempts = 3, timeoutMs = 3000 } = {},
): Promise<number> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      const stream = await client.leaseClient.leaseKeepAlive();
      let timer: NodeJS.Timeout | undefined;
      try {
        return await new Promise<number>((resolve, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no keep-alive answer within ${timeoutMs} ms`)),
            timeoutMs,
          );
          stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
          stream.on('error', reject);
          stream.write({ ID: id });
        });
      } finally {
        clearTimeout(timer);
        stream.end();
      }
    } catch (err) {
      last = err;
    }
  }
  throw last instanceof Error ? last : new Error(errorMessage(last));
}

/** Creates the client (no I/O yet). */
export function createEtcd(s: EtcdSettings): Etcd3 {
  const { Etcd3: E } = load<typeof import('etcd3')>('etcd3');
  return new E(etcdOptions(s));
}

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

const ENDPOINTS_HINT = '(check --etcd-endpoints or ETCDCTL_ENDPOINTS)';

/**
 * Resolves when etcd answers a status call, or throws ConfigError after `timeoutMs`,
 * naming the endpoints: for commands that must fail fast when etcd is unreachable at start.
 */
export async function checkEtcdReachable(
  client: Etcd3,
  endpoints: string[],
  timeoutMs = 5000,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ConfigError(
            `etcd unreachable at ${endpoints.join(',')}: no answer within ${timeoutMs} ms ${ENDPOINTS_HINT}`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    await Promise.race([client.maintenance.status(), timeout]);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      `etcd unreachable at ${endpoints.join(',')}: ${etcdErrorLine(errorMessage(err))} ${ENDPOINTS_HINT}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

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

/** True for etcd's "permission denied" (RBAC) answer. */
export function isPermissionDenied(err: unknown): boolean {
  // By name and message: etcd3 is loaded only when a client is made (see `load`).
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
