#!/usr/bin/env node
/**
 * `announce`, the sidekick: writes one SkyDNS record under an etcd lease, keeps it alive,
 * deletes it on SIGTERM/SIGINT. Exit 1 with a clear error when etcd is unreachable at start.
 */
import { dockerClient, dockerFlags } from '../common/docker.js';
import { runCommand } from '../common/agent.js';
import type { FlagTable } from '../common/cli.js';
import { ConfigError, UsageError } from '../common/errors.js';
import { checkEtcdReachable, createEtcd, etcdFlags } from '../common/etcd.js';
import { logFlags } from '../common/logger.js';
import { Announcement, waitForContainer } from './announce.js';
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
    const client = createEtcd(f);
    try {
      await checkEtcdReachable(client, f.etcdEndpoints, 5000);
    } catch (err) {
      client.close();
      throw err;
    }
    let host = f.host ?? '';
    let port = f.port ?? 0;
    if (f.container) {
      const docker = dockerClient(f.dockerHost);
      try {
        const a = await waitForContainer(docker, f.container, f.containerTimeout, log);
        host ||= a.ip;
        port ||= a.port;
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
    const ann = new Announcement(client, key, value, f.ttl, log);
    try {
      await ann.start();
    } catch (err) {
      client.close();
      throw new ConfigError(`cannot write ${key} to etcd: ${(err as Error).message}`);
    }
    return async () => {
      await ann.stop();
      client.close();
    };
  },
});
