/**
 * The etcd3 (gRPC) client of dnsd, announce, dnsctl and logsd: a connected `Etcd3` that only
 * talks to members that have a leader (see `leaderAwareOptions`). The flags, their validation
 * and the permission errors live in etcd-settings.ts (re-exported here). overlayd uses our own
 * lighter client instead (etcd-client.ts); the others can move to it the same way.
 */
// Before etcd3: it builds its gRPC client at import time (see etcd-proto.ts).
import './etcd-proto.js';
import { createRequire } from 'node:module';
import type * as Grpc from '@grpc/grpc-js';
import type { Etcd3, IOptions } from 'etcd3';
import { ConfigError, errorMessage } from './errors.js';
import {
  ENDPOINTS_HINT,
  REQUIRE_LEADER,
  UNARY_DEADLINE_MS,
  etcdErrorLine,
  validateEtcdSettings,
  type EtcdSettings,
} from './etcd-settings.js';

export {
  EtcdPermissionError,
  REQUIRE_LEADER,
  UNARY_DEADLINE_MS,
  etcdErrorLine,
  etcdFlags,
  explainDenied,
  isPermissionDenied,
  type EtcdSettings,
} from './etcd-settings.js';

/**
 * etcd3 and gRPC are loaded when a client is made, not at import: together they take over a
 * second, which commands that only parse etcd flags (logsd agent, logs with --server) should
 * not pay.
 */
function load<T>(name: string): T {
  return createRequire(import.meta.url)(name) as T;
}

/** Checks endpoints and TLS files; throws UsageError/ConfigError naming the flag. */
export function etcdOptions(s: EtcdSettings): IOptions {
  const v = validateEtcdSettings(s);
  const rootCertificate = v.ca;
  const certChain = v.cert;
  const privateKey = v.key;
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

/** Creates the client (no I/O yet). */
export function createEtcd(s: EtcdSettings): Etcd3 {
  const { Etcd3: E } = load<typeof import('etcd3')>('etcd3');
  return new E(etcdOptions(s));
}

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
