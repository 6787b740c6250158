/**
 * A real etcd on 127.0.0.1 free ports in a temp dir, for tests that need etcd but no namespaces
 * (DNS store, announce, overlay lease store). `stop()` kills it by PID and removes the dir.
 * `startLocalEtcd({ secure: true })`: TLS with client-certificate auth and RBAC (etcd-auth.ts);
 * `as(user)` gives the settings an agent of that role runs with.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, stopPid } from './proc.js';
import { etcdCommand, waitForEtcd } from './etcd.js';
import {
  enableEtcdRoles,
  etcdClientFlags,
  etcdClientSettings,
  etcdServerTlsArgs,
  etcdctlTlsArgs,
  issueEtcdCerts,
  type EtcdClientSettings,
  type EtcdUser,
} from './etcd-auth.js';
import { onProcessExit } from './state.js';

export interface LocalEtcd {
  endpoints: string[];
  dir: string;
  pid: number;
  /** Directory of ca.pem, <user>.pem, <user>-key.pem when secure. */
  pki?: string;
  /** Settings for one user (secure), or just the endpoints. */
  as(user: EtcdUser): EtcdClientSettings;
  /** The same as agent flags. */
  flags(user: EtcdUser): string[];
  stop(): Promise<void>;
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startLocalEtcd(opts: { secure?: boolean } = {}): Promise<LocalEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'flt-etcd-'));
  const forgetDir = onProcessExit(() => rmSync(dir, { recursive: true, force: true }));
  const removeDir = () => {
    forgetDir();
    rmSync(dir, { recursive: true, force: true });
  };
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `${opts.secure ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const pki = opts.secure ? join(dir, 'pki') : undefined;
  if (pki)
    await issueEtcdCerts(pki, ['127.0.0.1']).catch((err: unknown) => {
      removeDir();
      throw err;
    });
  const proc = startProcess(
    [
      ...etcdCommand({
        name: 'local',
        dataDir: join(dir, 'data'),
        listen: [client],
        advertise: client,
        peer,
      }),
      ...(pki ? etcdServerTlsArgs(pki) : []),
    ],
    { logFile: join(dir, 'etcd.log') },
  );
  const forget = onProcessExit(() => {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  const stop = async () => {
    forget();
    await stopPid(proc.pid, 5000);
    removeDir();
  };
  try {
    await waitForEtcd(client, pki ? etcdctlTlsArgs(pki) : []);
    if (pki) await enableEtcdRoles(client, pki);
  } catch (err) {
    await stop();
    throw err;
  }
  const as = (user: EtcdUser) => etcdClientSettings([client], pki, user);
  return {
    endpoints: [client],
    dir,
    pid: proc.pid,
    ...(pki ? { pki } : {}),
    as,
    flags: (user) => etcdClientFlags(as(user)),
    stop,
  };
}
