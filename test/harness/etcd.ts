/**
 * A real etcd 3.4 for a run, started inside the run's hub namespace so every test host (over
 * the underlay) and the test process (over the root veth) reach it at `http://<hub ip>:2379`.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { startProcess, waitFor, run, type StartedProcess } from './proc.js';

export interface EtcdHandle {
  endpoints: string[];
  proc: StartedProcess;
  dataDir: string;
}

export async function startEtcd(opts: {
  netns: string;
  ip: string;
  dir: string;
  name: string;
  detached?: boolean;
}): Promise<EtcdHandle> {
  const dataDir = join(opts.dir, 'etcd');
  mkdirSync(dataDir, { recursive: true });
  const client = `http://${opts.ip}:2379`;
  const peer = `http://127.0.0.1:2380`;
  const proc = startProcess(
    [
      'nsenter',
      `--net=/var/run/netns/${opts.netns}`,
      'etcd',
      '--name',
      opts.name,
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      `${client},http://127.0.0.1:2379`,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `${opts.name}=${peer}`,
      '--enable-v2=true',
      '--log-level',
      'warn',
    ],
    { logFile: join(opts.dir, 'etcd.log'), detached: opts.detached ?? false },
  );
  await waitFor(
    `etcd at ${client}`,
    async () => {
      const r = await run(
        ['etcdctl', '--endpoints', client, '--dial-timeout', '1s', 'endpoint', 'health'],
        {
          env: { ...process.env, ETCDCTL_API: '3' },
          timeoutMs: 3000,
        },
      );
      return r.code === 0;
    },
    20_000,
    200,
  );
  return { endpoints: [client], proc, dataDir };
}
