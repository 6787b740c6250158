/**
 * A real etcd on 127.0.0.1 free ports in a temp dir, for tests that need etcd but no namespaces
 * (DNS store, announce, overlay lease store). `stop()` kills it by PID and removes the dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, stopPid } from './proc.js';
import { etcdCommand, waitForEtcd } from './etcd.js';
import { onProcessExit } from './state.js';

export interface LocalEtcd {
  endpoints: string[];
  dir: string;
  pid: number;
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

export async function startLocalEtcd(): Promise<LocalEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'flt-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = startProcess(
    etcdCommand({
      name: 'local',
      dataDir: join(dir, 'data'),
      listen: [client],
      advertise: client,
      peer,
    }),
    { logFile: join(dir, 'etcd.log') },
  );
  const forget = onProcessExit(() => {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const stop = async () => {
    forget();
    await stopPid(proc.pid, 5000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForEtcd(client);
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoints: [client], dir, pid: proc.pid, stop };
}
