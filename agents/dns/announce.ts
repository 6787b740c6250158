/**
 * What the sidekick and the registrator announce about a container: its address (from
 * `docker inspect`) and waiting for it to run. The lease-kept record itself is
 * `Announcement` (agents/common/announcement.ts), re-exported here for them.
 */
import type Docker from 'dockerode';
import { isIP } from 'node:net';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';

export { Announcement } from '../common/announcement.js';

export interface ContainerAddress {
  ip: string;
  /** First exposed TCP/UDP port, 0 when none. */
  port: number;
  running: boolean;
}

/** Address and first exposed port of a container from `docker inspect` data. */
export function containerAddress(info: Docker.ContainerInspectInfo): ContainerAddress {
  const nets = Object.values(info.NetworkSettings?.Networks ?? {});
  const ip =
    (info.NetworkSettings as { IPAddress?: string } | undefined)?.IPAddress ||
    nets.map((n) => n.IPAddress).find((a) => a && isIP(a)) ||
    nets.map((n) => n.GlobalIPv6Address).find((a) => a && isIP(a)) ||
    '';
  const exposed = Object.keys(info.Config?.ExposedPorts ?? {})
    .map((p) => Number(p.split('/')[0]))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => a - b);
  return { ip, port: exposed[0] ?? 0, running: info.State?.Running === true };
}

/**
 * Waits until container `name` exists, runs and has an address; polls every 500 ms.
 * Rejects after `timeoutMs` naming the container and what was missing.
 */
export async function waitForContainer(
  docker: Docker,
  name: string,
  timeoutMs: number,
  log: Logger,
): Promise<ContainerAddress> {
  const deadline = Date.now() + timeoutMs;
  let last = 'does not exist';
  let logged = '';
  for (;;) {
    try {
      const a = containerAddress(await docker.getContainer(name).inspect());
      if (a.running && a.ip) return a;
      last = a.running ? 'has no IP address yet' : 'is not running';
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      last = code === 404 ? 'does not exist' : `cannot be inspected (${errorMessage(err)})`;
    }
    if (last !== logged) log.info({ container: name }, `waiting: container ${last}`);
    logged = last;
    if (Date.now() > deadline)
      throw new Error(`container "${name}" ${last} after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
