/**
 * etcd access shared by every agent: the flags (`--etcd-endpoints` and the TLS files, with
 * ETCDCTL_* / FLANNELD_* env equivalents), validation that turns a bad endpoint or missing TLS
 * file into a one-line error, and a connected `Etcd3` client.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import type { FlagTable } from './cli.js';
import { ConfigError, UsageError, errorMessage } from './errors.js';

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
  const opts: IOptions = { hosts: s.etcdEndpoints, dialTimeout: 3000 };
  if (tls || rootCertificate || certChain) {
    opts.credentials = {
      rootCertificate: rootCertificate ?? Buffer.alloc(0),
      ...(certChain ? { certChain } : {}),
      ...(privateKey ? { privateKey } : {}),
    } as IOptions['credentials'];
  }
  return opts;
}

/** Creates the client (no I/O yet). */
export function createEtcd(s: EtcdSettings): Etcd3 {
  return new Etcd3(etcdOptions(s));
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
