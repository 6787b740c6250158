#!/usr/bin/env node
/**
 * `announce`, the sidekick: writes one SkyDNS record under an etcd lease, keeps it alive,
 * deletes it on SIGTERM/SIGINT. Exit 1 with a clear error when etcd is unreachable at start.
 * With --check-http/--check-tcp/--check-cmd (and with --container, the container's Docker
 * HEALTHCHECK) the record is in DNS only while the instance is healthy; the process keeps
 * running and checking while it is not.
 */
import { hostname } from 'node:os';
import { dockerClient, dockerFlags } from '../common/docker.js';
import { runCommand } from '../common/agent.js';
import type { FlagTable } from '../common/cli.js';
import { ConfigError, UsageError } from '../common/errors.js';
import { checkEtcdReachable, createEtcd, etcdFlags } from '../common/etcd.js';
import { splitHostPort, startHealthServer, type HealthServer } from '../common/http.js';
import { logFlags } from '../common/logger.js';
import { metricsFor } from '../common/metrics.js';
import { followDockerHealth, waitForContainer } from './announce.js';
import { CheckedAnnouncement, CheckStats, registerCheckStats } from './checker.js';
import {
  checkTiming,
  cmdTarget,
  httpTarget,
  tcpTarget,
  type CheckSpec,
  type CheckTarget,
  type DockerHealth,
} from './health.js';
import { imageTag } from './instances.js';
import { formatRecord, hostKind, nameToKey, RecordError } from './records.js';

const flags = {
  name: {
    type: 'string',
    value: 'FQDN',
    help: 'name to announce, e.g. x1.web.skydns.local (key derived under --prefix)',
  },
  key: { type: 'string', value: 'KEY', help: 'etcd key to write instead of --name' },
  prefix: { type: 'string', value: 'PATH', help: 'etcd prefix for --name', default: '/skydns' },
  host: { type: 'string', value: 'IP|NAME', help: 'address (A/AAAA) or name (CNAME) to announce' },
  port: { type: 'int', help: 'port for SRV answers (default: first port the container exposes)' },
  priority: { type: 'int', help: 'SRV priority', default: 0 },
  weight: { type: 'int', help: 'SRV weight', default: 0 },
  text: { type: 'string', help: 'TXT text' },
  group: { type: 'string', help: 'SkyDNS group' },
  ttl: { type: 'int', help: 'lease and record TTL in seconds', default: 30 },
  container: {
    type: 'string',
    value: 'NAME',
    help: 'take --host (and --port) from this container, waiting for it to run',
  },
  'container-timeout': {
    type: 'duration',
    help: 'how long to wait for --container',
    default: '5m',
  },
  'check-http': {
    type: 'string',
    value: 'URL|PATH',
    help: 'in DNS only while this answers 2xx/3xx; a PATH (/health) is on --host:--port',
  },
  'check-tcp': {
    type: 'string',
    value: 'HOST:PORT|PORT',
    help: 'in DNS only while this accepts TCP connections; a PORT is on --host',
  },
  'check-cmd': {
    type: 'string',
    value: 'CMD',
    help: 'in DNS only while this shell command exits 0',
  },
  'check-interval': { type: 'duration', help: 'time between checks', default: '3s' },
  'check-timeout': {
    type: 'duration',
    help: 'a check that takes longer fails (at most --check-interval)',
    default: '1s',
  },
  'check-rise': { type: 'int', help: 'passes in a row that bring it back into DNS', default: 1 },
  'check-fall': { type: 'int', help: 'failures in a row that withdraw it from DNS', default: 1 },
  'version-label': {
    type: 'string',
    value: 'TEXT',
    help: 'version shown by dnsctl ls (default: the --container image tag)',
  },
  hostname: {
    type: 'string',
    value: 'NAME',
    help: 'host shown by dnsctl ls',
    default: hostname(),
  },
  'metrics-addr': {
    type: 'string',
    value: 'HOST:PORT',
    help: 'serve /healthz /readyz /metrics (check counters) here; empty to disable',
    default: '',
  },
  ...dockerFlags('Docker API for --container'),
  ...etcdFlags('SKYDNS'),
  ...logFlags,
} satisfies FlagTable;

await runCommand({
  name: 'announce',
  usage: '--name FQDN (--host IP | --container NAME) [--port N] [--ttl S]',
  description:
    'Announces one service record in etcd for dnsd/SkyDNS, kept alive under a lease and\n' +
    'deleted when this process is stopped (SIGTERM/SIGINT).',
  flags,
  async start(f, { log }) {
    if (!f.name === !f.key) throw new UsageError('give exactly one of --name or --key');
    if (!f.host && !f.container && !f.text)
      throw new UsageError('give --host, --container or --text');
    if (f.ttl < 1) throw new UsageError(`--ttl: must be at least 1 second, got ${f.ttl}`);
    let key: string;
    try {
      key = f.key ?? nameToKey(f.name, f.prefix);
    } catch (err) {
      if (err instanceof RecordError) throw new UsageError(`--name: ${err.message}`);
      throw err;
    }
    if (f.host && hostKind(f.host) === 'none') throw new UsageError('--host: empty');
    let metrics: { host: string; port: number } | null = null;
    if (f.metricsAddr) {
      try {
        metrics = splitHostPort(f.metricsAddr, '--metrics-addr');
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    if ([f.checkHttp, f.checkTcp, f.checkCmd].filter((c) => c !== undefined).length > 1)
      throw new UsageError('give at most one of --check-http, --check-tcp and --check-cmd');
    // Flag errors before etcd is contacted; with --container the target is final only once
    // the container's address is known.
    if (!f.container) checkOf(f, f.host ?? '', f.port ?? 0);
    else checkOf(f, f.host || '192.0.2.1', f.port || 1);
    const stats = new CheckStats();
    let health: HealthServer | null = null;
    if (metrics) {
      const m = metricsFor('announce');
      registerCheckStats(m.registry, stats);
      health = await startHealthServer({ ...metrics, registry: m.registry, ready: () => true });
    }
    const client = createEtcd(f);
    try {
      await checkEtcdReachable(client, f.etcdEndpoints, 5000);
    } catch (err) {
      client.close();
      throw err;
    }
    let host = f.host ?? '';
    let port = f.port ?? 0;
    let image = '';
    let dockerHealth: DockerHealth = 'none';
    const docker = f.container ? dockerClient(f.dockerHost) : null;
    if (f.container && docker) {
      try {
        const a = await waitForContainer(docker, f.container, f.containerTimeout, log);
        host ||= a.ip;
        port ||= a.port;
        image = a.image ?? '';
        dockerHealth = a.health ?? 'none';
        if (!port)
          log.warn(
            { container: f.container },
            'the container exposes no port: SRV answers say port 0 (give --port)',
          );
      } catch (err) {
        client.close();
        throw new ConfigError(`--container: ${(err as Error).message}`);
      }
    }
    const value = formatRecord({
      host,
      port,
      priority: f.priority,
      weight: f.weight,
      text: f.text ?? '',
      ttl: f.ttl,
      group: f.group ?? '',
    });
    let check: CheckSpec | null;
    try {
      check = checkOf(f, host, port);
    } catch (err) {
      client.close();
      throw err;
    }
    const inst = new CheckedAnnouncement({
      client,
      key,
      record: value,
      meta: { hostname: f.hostname, version: f.versionLabel ?? imageTag(image) },
      ttl: f.ttl,
      log,
      check,
      docker: dockerHealth,
      stats,
    });
    try {
      await inst.start();
    } catch (err) {
      client.close();
      throw new ConfigError(`cannot write ${key} to etcd: ${(err as Error).message}`);
    }
    const follow =
      f.container && docker
        ? followDockerHealth(
            docker,
            f.container,
            Math.min(f.checkInterval, 5000),
            (h) => void inst.setDockerHealth(h),
            log,
          )
        : null;
    return async () => {
      follow?.stop();
      await inst.stop();
      await health?.close();
      client.close();
    };
  },
});

/** The check the --check-* flags ask for, null for none; UsageError naming the bad flag. */
function checkOf(
  f: {
    checkHttp?: string | undefined;
    checkTcp?: string | undefined;
    checkCmd?: string | undefined;
    checkInterval: number;
    checkTimeout: number;
    checkRise: number;
    checkFall: number;
  },
  host: string,
  port: number,
): CheckSpec | null {
  const wrap = <T>(flag: string, make: () => T): T => {
    try {
      return make();
    } catch (err) {
      throw new UsageError(flag ? `${flag}: ${(err as Error).message}` : (err as Error).message);
    }
  };
  let target: CheckTarget;
  if (f.checkHttp !== undefined)
    target = wrap('--check-http', () => httpTarget(f.checkHttp!, host, port));
  else if (f.checkTcp !== undefined)
    target = wrap('--check-tcp', () => tcpTarget(f.checkTcp!, host, port));
  else if (f.checkCmd !== undefined) target = wrap('--check-cmd', () => cmdTarget(f.checkCmd!));
  else return null;
  const timing = wrap('', () =>
    checkTiming(
      {
        intervalMs: f.checkInterval,
        timeoutMs: f.checkTimeout,
        rise: f.checkRise,
        fall: f.checkFall,
      },
      {
        interval: '--check-interval',
        timeout: '--check-timeout',
        rise: '--check-rise',
        fall: '--check-fall',
      },
    ),
  );
  return { target, ...timing };
}
