/**
 * A real dockerd per test host, started with `nsenter --net` into the host's namespace (`ip
 * netns exec` would remount /sys and break dockerd's cgroups), with its own socket, data-root,
 * exec-root and pidfile under the run's temp dir, and the bridge/DNS/log options the caller gives.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { startProcess, waitFor, type StartedProcess } from './proc.js';

export interface DockerOptions {
  bip?: string;
  mtu?: number;
  dns?: string[];
  dnsSearch?: string[];
  logDriver?: string;
  logOpts?: Record<string, string>;
  /** Extra raw dockerd flags. */
  extra?: string[];
}

export interface DockerHandle {
  proc: StartedProcess;
  socket: string;
  docker: Docker;
}

export function dockerdArgs(
  netns: string,
  dir: string,
  o: DockerOptions,
): { args: string[]; socket: string } {
  const socket = join(dir, 'docker.sock');
  const args = [
    'nsenter',
    `--net=/var/run/netns/${netns}`,
    'dockerd',
    '--host',
    `unix://${socket}`,
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'docker.pid'),
    '--shutdown-timeout',
    '2',
    '--storage-driver',
    'overlay2',
    '--userland-proxy=false',
  ];
  if (o.bip) args.push('--bip', o.bip);
  if (o.mtu) args.push('--mtu', String(o.mtu));
  for (const d of o.dns ?? []) args.push('--dns', d);
  for (const d of o.dnsSearch ?? []) args.push('--dns-search', d);
  if (o.logDriver) args.push('--log-driver', o.logDriver);
  for (const [k, v] of Object.entries(o.logOpts ?? {})) args.push('--log-opt', `${k}=${v}`);
  args.push(...(o.extra ?? []));
  return { args, socket };
}

export async function startDockerd(
  netns: string,
  dir: string,
  o: DockerOptions,
  detached = false,
): Promise<DockerHandle> {
  mkdirSync(dir, { recursive: true });
  const { args, socket } = dockerdArgs(netns, dir, o);
  const proc = startProcess(args, { logFile: join(dir, 'dockerd.log'), detached });
  const docker = new Docker({ socketPath: socket });
  let exitedEarly: number | string | undefined;
  void proc.exited.then((c) => (exitedEarly = c));
  await waitFor(
    `dockerd in ${netns} (log: ${join(dir, 'dockerd.log')})`,
    async () => {
      if (exitedEarly !== undefined) throw new Error(`dockerd exited with ${exitedEarly}`);
      await docker.ping();
      return true;
    },
    30_000,
    150,
  );
  return { proc, socket, docker };
}
