/**
 * A real etcd 3.4 for a run, started inside the run's hub namespace so every test host (over
 * the underlay) and the test process (over the root veth) reach it at `http://<hub ip>:2379`.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { startProcess, waitFor, run, type StartedProcess } from './proc.js';

/** The command line of a single-member etcd (v2 API on, as fleet needs it). */
export function etcdCommand(o: {
  name: string;
  dataDir: string;
  listen: string[];
  advertise: string;
  peer: string;
}): string[] {
  return [
    'etcd',
    '--name',
    o.name,
    '--data-dir',
    o.dataDir,
    '--listen-client-urls',
    o.listen.join(','),
    '--advertise-client-urls',
    o.advertise,
    '--listen-peer-urls',
    o.peer,
    '--initial-advertise-peer-urls',
    o.peer,
    '--initial-cluster',
    `${o.name}=${o.peer}`,
    '--enable-v2=true',
    '--log-level',
    'warn',
  ];
}

/** Resolves once `etcdctl endpoint health` succeeds against `client`. */
export async function waitForEtcd(client: string): Promise<void> {
  await waitFor(
    `etcd at ${client}`,
    async () =>
      (
        await run(
          ['etcdctl', '--endpoints', client, '--dial-timeout', '1s', 'endpoint', 'health'],
          { timeoutMs: 3000 },
        )
      ).code === 0,
    20_000,
    200,
  );
}

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
  const proc = startProcess(
    [
      'nsenter',
      `--net=/var/run/netns/${opts.netns}`,
      ...etcdCommand({
        name: opts.name,
        dataDir,
        listen: [client, 'http://127.0.0.1:2379'],
        advertise: client,
        peer: 'http://127.0.0.1:2380',
      }),
    ],
    { logFile: join(opts.dir, 'etcd.log'), detached: opts.detached ?? false },
  );
  await waitForEtcd(client);
  return { endpoints: [client], proc, dataDir };
}
