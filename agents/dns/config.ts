/**
 * dnsd's flag table and the validated config built from it. Defaults follow SkyDNS
 * (`--domain skydns.local.`, `--prefix /skydns`, `--ttl 3600`, `--min-ttl 60`); listen
 * addresses and forwarding networks also pick up the overlay's subnet file when present.
 */
import { dockerFlags } from '../common/docker.js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { Flags, FlagTable } from '../common/cli.js';
import { UsageError } from '../common/errors.js';
import { etcdFlags } from '../common/etcd.js';
import { splitHostPort } from '../common/http.js';
import { logFlags } from '../common/logger.js';
import { parseUpstream, readResolvConf, type Upstream } from './forwarder.js';
import { fqdn } from './records.js';
import { UDP_IO_MODES, type UdpIoMode } from './udp.js';

export const dnsdFlags = {
  addr: {
    type: 'list',
    value: 'HOST:PORT',
    help: 'listen address for UDP and TCP (default 127.0.0.1:53 plus the Docker bridge address from --subnet-file)',
    env: ['SKYDNS_ADDR'],
  },
  domain: {
    type: 'list',
    value: 'ZONE',
    help: 'zone answered from etcd',
    default: ['skydns.local.'],
    env: ['SKYDNS_DOMAIN'],
  },
  prefix: {
    type: 'string',
    value: 'PATH',
    help: 'etcd key prefix of the records',
    default: '/skydns',
  },
  ...etcdFlags('SKYDNS'),
  nameservers: {
    type: 'list',
    value: 'IP[:PORT]',
    help: 'upstream servers for names outside the zones (default: nameserver lines of /etc/resolv.conf)',
    env: ['SKYDNS_NAMESERVERS'],
  },
  'no-rec': { type: 'bool', help: 'do not forward names outside the zones (answer REFUSED)' },
  'forward-networks': {
    type: 'list',
    value: 'CIDR',
    help: 'clients allowed to use forwarding (default loopback plus FLANNEL_NETWORK from --subnet-file)',
  },
  'forward-timeout': {
    type: 'duration',
    help: 'wait per upstream attempt (one retry follows)',
    default: '2s',
  },
  ttl: { type: 'int', help: 'TTL of records without their own', default: 3600 },
  'min-ttl': { type: 'int', help: 'SOA minimum and TTL of negative answers', default: 60 },
  'min-lease-ttl': {
    type: 'int',
    help: "lowest TTL taken from the time left on a record's etcd lease (as CoreDNS)",
    default: 30,
  },
  'max-lease-ttl': {
    type: 'int',
    help: "highest TTL taken from the time left on a record's etcd lease (as CoreDNS)",
    default: 86400,
  },
  'round-robin': {
    type: 'bool',
    help: 'rotate A/AAAA answers and order SRV by weight per query (RFC 2782); --round-robin=false keeps the stored order',
    default: true,
  },
  'udp-io': {
    type: 'string',
    value: 'auto|batch|dgram',
    help: "UDP I/O: batch = dnsd's native addon (native/udp.node), one read and one send system call per batch of up to 64 datagrams; dgram = Node's dgram; auto takes batch when the addon loads, else dgram with a warning",
    default: 'auto',
  },
  'subnet-file': {
    type: 'string',
    value: 'FILE',
    help: 'overlay subnet file (FLANNEL_NETWORK, FLANNEL_SUBNET)',
    default: '/run/flannel/subnet.env',
  },
  'metrics-addr': {
    type: 'string',
    value: 'HOST:PORT',
    help: 'serve /healthz /readyz /metrics here; empty to disable',
    default: '127.0.0.1:9153',
  },
  docker: {
    type: 'bool',
    help: 'registrator mode: announce running containers with SERVICE_NAME (env or label) or a service=NAME label; SERVICE_CHECK_HTTP/TCP and Docker HEALTHCHECK withdraw failing ones',
  },
  hostname: {
    type: 'string',
    value: 'NAME',
    help: 'host that --docker instances show in dnsctl ls',
    default: hostname(),
  },
  ...dockerFlags('Docker API for --docker'),
  ...logFlags,
} satisfies FlagTable;

export type DnsdFlags = Flags<typeof dnsdFlags>;

export interface DnsdConfig {
  addrs: { host: string; port: number }[];
  zones: string[];
  prefix: string;
  upstreams: Upstream[];
  noRec: boolean;
  forwardNetworks: string[];
  forwardTimeoutMs: number;
  ttl: number;
  minTtl: number;
  minLeaseTtl: number;
  maxLeaseTtl: number;
  roundRobin: boolean;
  udpIo: UdpIoMode;
  metrics: { host: string; port: number } | null;
  /** Said once at start: the default listen addresses left the bridge out (no subnet file). */
  notice?: string;
}

/** FLANNEL_NETWORK and the bridge address (FLANNEL_SUBNET's IP) of an overlay subnet file. */
export function readSubnetFile(path: string): { network?: string; bridgeIp?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  const get = (k: string) => new RegExp(`^${k}=(\\S+)`, 'm').exec(text)?.[1];
  const network = get('FLANNEL_NETWORK');
  const subnet = get('FLANNEL_SUBNET');
  const ip = subnet?.split('/')[0];
  return {
    ...(network ? { network } : {}),
    ...(ip && isIP(ip) ? { bridgeIp: ip } : {}),
  };
}

export function buildConfig(f: DnsdFlags): DnsdConfig {
  const overlay = readSubnetFile(f.subnetFile);
  const addrList = f.addr.length
    ? f.addr
    : ['127.0.0.1:53', ...(overlay.bridgeIp ? [`${overlay.bridgeIp}:53`] : [])];
  const addrs = addrList.map((a) => {
    try {
      return splitHostPort(a, '--addr');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  if (f.domain.length === 0) throw new UsageError('--domain: at least one zone is needed');
  for (const d of f.domain)
    if (!/^([a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?$/i.test(d))
      throw new UsageError(`--domain: "${d}" is not a domain name like skydns.local.`);
  if (!f.prefix.startsWith('/') || f.prefix.length < 2)
    throw new UsageError(`--prefix: "${f.prefix}" must be an etcd path like /skydns`);
  let upstreams: Upstream[];
  try {
    upstreams = f.nameservers.length ? f.nameservers.map(parseUpstream) : readResolvConf();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (f.ttl < 0 || f.minTtl < 0) throw new UsageError('--ttl and --min-ttl must not be negative');
  if (f.minLeaseTtl < 0 || f.maxLeaseTtl < f.minLeaseTtl)
    throw new UsageError(
      `--min-lease-ttl (${f.minLeaseTtl}) and --max-lease-ttl (${f.maxLeaseTtl}) need 0 <= min <= max`,
    );
  if (!(UDP_IO_MODES as readonly string[]).includes(f.udpIo))
    throw new UsageError(`--udp-io: "${f.udpIo}" is not one of ${UDP_IO_MODES.join(', ')}`);
  let metrics: DnsdConfig['metrics'] = null;
  if (f.metricsAddr) {
    try {
      metrics = splitHostPort(f.metricsAddr, '--metrics-addr');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  return {
    ...(f.addr.length === 0 && !overlay.bridgeIp
      ? {
          notice: `no Docker bridge address in --subnet-file ${f.subnetFile}: listening only on 127.0.0.1:53 (containers cannot reach it; give --addr to choose)`,
        }
      : {}),
    addrs,
    zones: f.domain.map(fqdn),
    prefix: f.prefix.replace(/\/+$/, ''),
    upstreams,
    noRec: f.noRec,
    forwardNetworks: f.forwardNetworks.length
      ? f.forwardNetworks
      : ['127.0.0.0/8', '::1/128', ...(overlay.network ? [overlay.network] : [])],
    forwardTimeoutMs: f.forwardTimeout,
    ttl: f.ttl,
    minTtl: f.minTtl,
    minLeaseTtl: f.minLeaseTtl,
    maxLeaseTtl: f.maxLeaseTtl,
    roundRobin: f.roundRobin,
    udpIo: f.udpIo as UdpIoMode,
    metrics,
  };
}
