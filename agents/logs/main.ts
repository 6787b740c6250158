#!/usr/bin/env node
/** `logsd agent` and `logsd aggregator`: flags → config → start → stop on signal. */
import { dockerFlags, dockerSocketPath } from '../common/docker.js';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { packageVersion, runCommand } from '../common/agent.js';
import type { FlagTable } from '../common/cli.js';
import { ConfigError, UsageError } from '../common/errors.js';
import { splitHostPort } from '../common/http.js';
import { secretFrom } from '../common/secret.js';
import { logFlags } from '../common/logger.js';
import { startAgent } from './agent.js';
import { startAggregator } from './aggregator/server.js';
import { etcdFlags } from '../common/etcd.js';
import { AGGREGATOR_KEY, advertisedHost, announceAggregator } from './discovery.js';
import type { FsyncPolicy } from './buffer.js';
import { FORWARD_IO_MODES, type ForwardIoMode } from './inputs/forward.js';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/** "512MiB", "10G", "1048576" → bytes. */
export function parseSize(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--${flag}: "${text}" is not a size like 512MiB or 10GiB`);
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
}

function fsyncPolicy(v: string): FsyncPolicy {
  if (v === 'always' || v === 'interval' || v === 'never') return v;
  throw new UsageError(`--fsync: "${v}" must be always, interval or never`);
}

function forwardIoMode(v: string): ForwardIoMode {
  if ((FORWARD_IO_MODES as readonly string[]).includes(v)) return v as ForwardIoMode;
  throw new UsageError(`--forward-io: "${v}" must be ${FORWARD_IO_MODES.join(', ')}`);
}

function readFile(flag: string, file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`--${flag}: cannot read "${file}": ${(err as Error).message}`);
  }
}

/** --shared-key and --shared-key-file, for either end of the agent → aggregator link. */
function sharedKeyFlags(what: string) {
  return {
    'shared-key': {
      type: 'string',
      value: 'KEY',
      help: `${what} (prefer --shared-key-file)`,
      env: ['LOGSD_SHARED_KEY'],
    },
    'shared-key-file': {
      type: 'string',
      value: 'FILE',
      help: 'read --shared-key from this file, first line (the units: /etc/flotilla/logs-shared-key)',
      env: ['LOGSD_SHARED_KEY_FILE'],
    },
  } satisfies FlagTable;
}

const fsyncFlag = {
  type: 'string',
  value: 'POLICY',
  help: 'when to fdatasync: always (before each ack), interval (every second), never',
  default: 'interval',
} as const;

const tlsFlags = {
  'tls-ca': { type: 'string', value: 'FILE', help: 'CA bundle to verify the peer (TLS)' },
  'tls-cert': { type: 'string', value: 'FILE', help: 'certificate (TLS)' },
  'tls-key': { type: 'string', value: 'FILE', help: 'private key (TLS)' },
} satisfies FlagTable;

const agentFlags = {
  'containers-dir': {
    type: 'string',
    value: 'DIR',
    help: 'file input: Docker\'s containers directory, whose <id>/<id>-json.log files (json-file log driver) are read; "" to turn off',
    default: '/var/lib/docker/containers',
  },
  listen: {
    type: 'string',
    value: 'HOST:PORT',
    help: 'forward input: forward-protocol address for log drivers (Docker: --log-opt fluentd-address); "" to turn off',
    default: '127.0.0.1:24224',
    env: ['LOGSD_LISTEN'],
  },
  'unix-socket': { type: 'string', value: 'PATH', help: 'also listen on this unix socket' },
  'forward-io': {
    type: 'string',
    value: 'auto|native|node',
    help: "forward input transport: native (Docker's Message frames journaled and acked in C, native/forward.c), node (Node sockets), auto (native if it loads, else node with a warning)",
    default: 'auto',
  },
  aggregator: {
    type: 'list',
    value: 'HOST:PORT',
    help: 'aggregator to ship to; repeat for failover, tried in order',
    env: ['LOGSD_AGGREGATOR'],
  },
  'buffer-dir': {
    type: 'string',
    value: 'DIR',
    help: 'durable buffer directory (records wait here until the aggregator acks)',
    default: '/var/lib/flotilla/logs-buffer',
  },
  'buffer-max-size': {
    type: 'string',
    value: 'SIZE',
    help: 'buffer bound; when full, inputs are paused and not acked (backpressure, no drop)',
    default: '1GiB',
  },
  fsync: fsyncFlag,
  hostname: {
    type: 'string',
    value: 'NAME',
    help: 'host name stamped on records',
    default: hostname(),
  },
  ...dockerFlags('dockerd for container metadata (service label/env); "" to skip'),
  ...sharedKeyFlags('forward-protocol shared key for the aggregator link'),
  tls: { type: 'bool', help: 'use TLS to the aggregator' },
  ...tlsFlags,
  http: {
    type: 'string',
    value: 'HOST:PORT',
    help: 'health and metrics address (/healthz /readyz /metrics)',
    default: '127.0.0.1:24230',
  },
  ...logFlags,
} satisfies FlagTable;

const aggregatorFlags = {
  listen: {
    type: 'string',
    value: 'HOST:PORT',
    help: 'forward-protocol address agents ship to',
    default: '0.0.0.0:24240',
    env: ['LOGSD_LISTEN'],
  },
  http: {
    type: 'string',
    value: 'HOST:PORT',
    help: 'query API, live tail page (/), health and metrics address',
    default: '0.0.0.0:24241',
  },
  'http-token': {
    type: 'string',
    value: 'TOKEN',
    help: 'require this bearer token for the page and query API (not /healthz, /metrics)',
    env: ['LOGSD_HTTP_TOKEN'],
  },
  'http-token-file': {
    type: 'string',
    value: 'FILE',
    help: 'read --http-token from this file (first line)',
    env: ['LOGSD_HTTP_TOKEN_FILE'],
  },
  'data-dir': {
    type: 'string',
    value: 'DIR',
    help: 'store directory',
    default: '/var/lib/flotilla/logs',
  },
  retention: { type: 'duration', help: 'delete records older than this', default: '168h' },
  'retention-size': {
    type: 'string',
    value: 'SIZE',
    help: 'delete the oldest segments while the store is bigger than this',
    default: '10GiB',
  },
  fsync: fsyncFlag,
  ...sharedKeyFlags('require agents to prove this forward-protocol shared key'),
  'handshake-timeout': {
    type: 'duration',
    help: 'with --shared-key: close a connection that has not passed the handshake by then',
    default: '10s',
  },
  'max-pending': {
    type: 'int',
    value: 'N',
    help: 'unauthenticated connections kept at most; beyond, the oldest is closed',
    default: 256,
  },
  ...tlsFlags,
  'forward-out': {
    type: 'string',
    value: 'HOST:PORT',
    help: 'also send stored records to this forward-protocol receiver (Fluentd, Fluent Bit, Vector)',
  },
  hostname: {
    type: 'string',
    value: 'NAME',
    help: 'name used in the handshake',
    default: hostname(),
  },
  announce: {
    type: 'bool',
    help: `keep the query address in etcd at ${AGGREGATOR_KEY} (under a lease), so \`logs\` finds it without --server`,
  },
  advertise: {
    type: 'string',
    value: 'URL',
    help: `query URL announced in etcd at ${AGGREGATOR_KEY} for \`logs\` (default: from --http; 0.0.0.0 → this host's first IPv4)`,
  },
  ...etcdFlags('FLOTILLA'),
  ...logFlags,
} satisfies FlagTable;

function addr(flag: string, v: string) {
  try {
    return splitHostPort(v, `--${flag}`);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** --shared-key or the first line of --shared-key-file. */
function sharedKeyOf(f: { sharedKey: string; sharedKeyFile: string }): string | undefined {
  return secretFrom({
    flag: 'shared-key',
    value: f.sharedKey,
    fileFlag: 'shared-key-file',
    file: f.sharedKeyFile,
  });
}

const TOP = `Usage: logsd <agent|aggregator> [flags]

Flotilla's log pipeline daemons.
  agent        per host: reads Docker's json-file logs (and/or its fluentd driver), ships
  aggregator   central: stores logs per service, serves the query API for \`logs\`

Run \`logsd <command> --help\` for its flags; \`logsd --version\` prints the version.
`;

const [sub, ...rest] = process.argv.slice(2);
if (sub === 'agent') {
  await runCommand(
    {
      name: 'logsd agent',
      usage: '--aggregator HOST:PORT [flags]',
      description:
        "Collects every container's output on this host: the file input reads Docker's json-file\n" +
        'logs under --containers-dir (checkpointed, resumes after a restart, follows rotation); the\n' +
        "forward input receives Docker's fluentd log driver (or any Fluentd client) on --listen and\n" +
        'acks a record only once it is in the durable buffer. Records are tagged with service, host\n' +
        'and container and shipped to the aggregator, which acks what it has stored.',
      flags: agentFlags,
      async start(f, { log }) {
        if (f.aggregator.length === 0)
          throw new UsageError('--aggregator: at least one HOST:PORT needed');
        const aggregators = f.aggregator.map((a) => addr('aggregator', a));
        const listen = f.listen ? addr('listen', f.listen) : undefined;
        const ca = readFile('tls-ca', f.tlsCa);
        const cert = readFile('tls-cert', f.tlsCert);
        const key = readFile('tls-key', f.tlsKey);
        const sharedKey = sharedKeyOf(f);
        const agent = await startAgent({
          ...(listen ? { listen } : {}),
          ...(f.unixSocket ? { unixSocket: f.unixSocket } : {}),
          forwardIo: forwardIoMode(f.forwardIo),
          bufferDir: f.bufferDir,
          bufferMaxBytes: parseSize('buffer-max-size', f.bufferMaxSize),
          fsync: fsyncPolicy(f.fsync),
          aggregators,
          hostname: f.hostname,
          ...(sharedKey ? { sharedKey } : {}),
          ...(f.tls || ca || cert
            ? { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } }
            : {}),
          ...(f.dockerHost ? { dockerSocket: dockerSocketPath(f.dockerHost) } : {}),
          ...(f.containersDir ? { containersDir: f.containersDir } : {}),
          log,
        });
        const { startHealthServer } = await import('../common/http.js');
        const h = addr('http', f.http);
        const health = await startHealthServer({
          ...h,
          registry: agent.metrics.registry,
          ready: () => (agent.shipper.connectedTo ? true : 'no aggregator connected'),
        });
        return async () => {
          await health.close();
          await agent.stop();
        };
      },
    },
    rest,
  );
} else if (sub === 'aggregator') {
  await runCommand(
    {
      name: 'logsd aggregator',
      usage: '[flags]',
      description:
        'Receives log batches from agents over the Fluentd Forward protocol, stores them per service\n' +
        '(append-only segments, time index, dedup of resent batches, retention by age and size) and\n' +
        'serves the query API used by `logs tail`, `logs services` and `logs export`.',
      flags: aggregatorFlags,
      async start(f, { log }) {
        const cert = readFile('tls-cert', f.tlsCert);
        const key = readFile('tls-key', f.tlsKey);
        const ca = readFile('tls-ca', f.tlsCa);
        if (Boolean(cert) !== Boolean(key))
          throw new UsageError('--tls-cert and --tls-key go together');
        const httpToken = secretFrom({
          flag: 'http-token',
          value: f.httpToken,
          fileFlag: 'http-token-file',
          file: f.httpTokenFile,
        });
        const sharedKey = sharedKeyOf(f);
        if (!sharedKey)
          log.warn(
            `no --shared-key-file: any host that reaches ${f.listen} can write logs under any service name (install.sh makes /etc/flotilla/logs-shared-key)`,
          );
        if (!httpToken)
          log.warn(
            `no --http-token-file: anyone who reaches ${f.http} can read every log (install.sh makes /etc/flotilla/logs-token)`,
          );
        const agg = await startAggregator({
          listen: addr('listen', f.listen),
          http: addr('http', f.http),
          ...(httpToken ? { httpToken } : {}),
          dataDir: f.dataDir,
          fsync: fsyncPolicy(f.fsync),
          retentionMs: f.retention,
          maxBytes: parseSize('retention-size', f.retentionSize),
          ...(sharedKey ? { sharedKey } : {}),
          handshakeTimeoutMs: f.handshakeTimeout,
          maxPending: f.maxPending,
          ...(cert && key ? { tls: { cert, key, ...(ca ? { ca, requestCert: true } : {}) } } : {}),
          ...(f.forwardOut ? { forwardOut: addr('forward-out', f.forwardOut) } : {}),
          hostname: f.hostname,
          log,
        });
        const http = addr('http', f.http);
        const fwd = addr('listen', f.listen);
        const unannounce = f.announce
          ? await announceAggregator(
              f,
              {
                query: f.advertise ?? `http://${advertisedHost(http.host)}:${agg.httpPort}`,
                forward: `${advertisedHost(fwd.host)}:${agg.port}`,
                host: f.hostname,
              },
              log,
            )
          : async () => undefined;
        return async () => {
          await unannounce();
          await agg.stop();
        };
      },
    },
    rest,
  );
} else if (sub === '--version') {
  process.stdout.write(`logsd ${packageVersion()}\n`);
} else if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
  process.stdout.write(TOP);
  process.exit(sub === undefined ? 2 : 0);
} else {
  process.stderr.write(`logsd: unknown command "${sub}" (agent or aggregator)\n`);
  process.exit(2);
}
