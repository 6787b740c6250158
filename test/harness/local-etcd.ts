/**
 * A real etcd on 127.0.0.1 free ports in a temp dir, for tests that need etcd but no namespaces
 * (DNS store, announce, overlay lease store). Its PID and dir are recorded in a harness run state
 * (see tracked.ts), as is every process the test adds with `track()`, so a later run sweeps them
 * if this process dies. `stop()` kills them by PID and removes the dir.
 * `startLocalEtcd({ secure: true })`: TLS with client-certificate auth and RBAC (etcd-auth.ts);
 * `as(user)` gives the settings an agent of that role runs with.
 */
import { createServer } from 'node:net';
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
import { startTrackedRun } from './tracked.js';

export interface LocalEtcd {
  endpoints: string[];
  /** The run's temp dir (etcd's data and log); tests may put their own files here. */
  dir: string;
  pid: number;
  /** Directory of ca.pem, <user>.pem, <user>-key.pem when secure. */
  pki?: string;
  /** Settings for one user (secure), or just the endpoints. */
  as(user: EtcdUser): EtcdClientSettings;
  /** The same as agent flags. */
  flags(user: EtcdUser): string[];
  /** Records a process the test started against this etcd, so a crashed run's sweep kills it. */
  track(pid: number, what: string): void;
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
  const tracked = startTrackedRun('etcd');
  const dir = tracked.dir;
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `${opts.secure ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const pki = opts.secure ? join(dir, 'pki') : undefined;
  if (pki)
    await issueEtcdCerts(pki, ['127.0.0.1']).catch((err: unknown) => {
      tracked.stop();
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
  tracked.addPid(proc.pid, 'etcd (loopback)');
  const stop = async () => {
    await stopPid(proc.pid, 5000);
    tracked.stop();
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
    track: (pid, what) => tracked.addPid(pid, what),
    stop,
  };
}
