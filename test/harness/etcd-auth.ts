/**
 * etcd as operators are told to run it (docs/operations.md): TLS with client-certificate auth and
 * RBAC on. The certificates and roles come from the shipped scripts (scripts/release/etcd-certs.sh
 * and etcd-roles.sh), so the tests exercise exactly what an operator runs. Used by the local etcd
 * (`startLocalEtcd({ secure: true })`) and the cluster's hub etcd (`secureEtcd: true`).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { must } from './proc.js';

/** etcd users the role script creates, each with a certificate of that CN. */
export type EtcdUser = 'root' | 'overlayd' | 'dnsd' | 'registrator' | 'announce' | 'logsd';

/** What an agent's --etcd-* flags take (agents/common/etcd.ts EtcdSettings). */
export interface EtcdClientSettings {
  etcdEndpoints: string[];
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
}

/** A shipped script of scripts/release. */
export function releaseScript(name: string): string {
  return fileURLToPath(new URL(`../../../scripts/release/${name}`, import.meta.url));
}

/** CA, server certificate (for `ips`) and one client certificate per user, into `pki`. */
export async function issueEtcdCerts(pki: string, ips: string[]): Promise<void> {
  await must(['sh', releaseScript('etcd-certs.sh'), pki, ...ips.flatMap((ip) => ['--ip', ip])], {
    timeoutMs: 30_000,
  });
}

/** etcd's own flags for client-certificate auth with the certificates in `pki`. */
export function etcdServerTlsArgs(pki: string): string[] {
  return [
    '--client-cert-auth',
    '--trusted-ca-file',
    join(pki, 'ca.pem'),
    '--cert-file',
    join(pki, 'server.pem'),
    '--key-file',
    join(pki, 'server-key.pem'),
  ];
}

/** `etcdctl` flags for one user. */
export function etcdctlTlsArgs(pki: string, user: EtcdUser = 'root'): string[] {
  return [
    `--cacert=${join(pki, 'ca.pem')}`,
    `--cert=${join(pki, `${user}.pem`)}`,
    `--key=${join(pki, `${user}-key.pem`)}`,
  ];
}

/** Creates the users and roles and turns auth on (as root, by certificate). */
export async function enableEtcdRoles(endpoint: string, pki: string): Promise<void> {
  await must(
    [
      'env',
      `ETCDCTL_ENDPOINTS=${endpoint}`,
      `ETCDCTL_CACERT=${join(pki, 'ca.pem')}`,
      `ETCDCTL_CERT=${join(pki, 'root.pem')}`,
      `ETCDCTL_KEY=${join(pki, 'root-key.pem')}`,
      'sh',
      releaseScript('etcd-roles.sh'),
    ],
    { timeoutMs: 30_000 },
  );
}

/** Client settings for `user`; without `pki` (plain etcd) just the endpoints. */
export function etcdClientSettings(
  endpoints: string[],
  pki: string | undefined,
  user: EtcdUser,
): EtcdClientSettings {
  if (!pki) return { etcdEndpoints: endpoints };
  return {
    etcdEndpoints: endpoints,
    etcdCafile: join(pki, 'ca.pem'),
    etcdCertfile: join(pki, `${user}.pem`),
    etcdKeyfile: join(pki, `${user}-key.pem`),
  };
}

/** The same settings as agent flags (--etcd-endpoints=… --etcd-cafile=… …). */
export function etcdClientFlags(s: EtcdClientSettings): string[] {
  return [
    `--etcd-endpoints=${s.etcdEndpoints.join(',')}`,
    ...(s.etcdCafile ? [`--etcd-cafile=${s.etcdCafile}`] : []),
    ...(s.etcdCertfile ? [`--etcd-certfile=${s.etcdCertfile}`] : []),
    ...(s.etcdKeyfile ? [`--etcd-keyfile=${s.etcdKeyfile}`] : []),
  ];
}
