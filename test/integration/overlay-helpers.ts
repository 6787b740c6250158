/** Shared steps for the overlay integration tests and bench: run overlayd on a harness host and read what it did. */
import { readFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { waitFor, type Host, type StartedProcess } from '../harness/index.js';
import { nodeFlags } from '../../agents/common/node-flags.js';

export const OVERLAYD = new URL('../../agents/overlay/main.js', import.meta.url).pathname;
export const HEALTH_PORT = 18471;

export function startOverlayd(h: Host, endpoints: string[], extra: string[] = []): StartedProcess {
  return h.spawn(
    [
      process.execPath,
      // As the units run it (release bin/ wrapper); OVERLAYD_NODE_FLAGS replaces them, for
      // measuring another choice ("" = none).
      ...(process.env['OVERLAYD_NODE_FLAGS'] !== undefined
        ? process.env['OVERLAYD_NODE_FLAGS'].split(' ').filter(Boolean)
        : nodeFlags('overlayd')),
      ...(process.env['OVERLAYD_PROF']
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env['OVERLAYD_PROF']}`]
        : []),
      OVERLAYD,
      '--etcd-endpoints',
      endpoints.join(','),
      '--iface',
      'eth0',
      '--subnet-file',
      join(h.dir, 'subnet.env'),
      '--docker-opts-file',
      join(h.dir, 'docker.env'),
      '--healthz-port',
      String(HEALTH_PORT),
      '--resync-interval',
      '2s',
      ...extra,
    ],
    { logName: 'overlayd' },
  );
}

export async function subnetEnv(h: Host): Promise<Record<string, string>> {
  const text = await readFile(join(h.dir, 'subnet.env'), 'utf8');
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
}

/** Waits for the subnet file; on timeout the error carries the tail of the agent's log. */
export async function waitSubnetEnv(h: Host, timeoutMs = 15_000): Promise<Record<string, string>> {
  try {
    return await waitFor(
      `${h.name}: subnet.env`,
      () => subnetEnv(h).catch(() => undefined),
      timeoutMs,
    );
  } catch (err) {
    const log = await readFile(join(h.dir, 'overlayd.log'), 'utf8').catch(() => '(no log)');
    throw new Error(`${(err as Error).message}\n${log.split('\n').slice(-15).join('\n')}`);
  }
}

/** GET on the agent's health port from the test process (the host IP is reachable from here). */
export function httpGet(
  h: Host,
  path: string,
  port = HEALTH_PORT,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: h.ip, port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** Sum of a metric's samples (all label sets) from /metrics. */
export async function metric(h: Host, name: string): Promise<number> {
  const { body } = await httpGet(h, '/metrics');
  let sum = 0;
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) sum += Number(m[3]);
  }
  return sum;
}

/** Routes, neighbours and FDB entries of the overlay, as text, for "appears/disappears" checks. */
export async function overlayState(h: Host, dev = 'flannel.1'): Promise<string> {
  const r = await h.exec([
    'sh',
    '-c',
    `ip route; ip neigh show dev ${dev}; bridge fdb show dev ${dev}`,
  ]);
  return r.stdout;
}

export async function logOf(p: StartedProcess): Promise<string> {
  return readFile(p.logFile, 'utf8').catch(() => '');
}
