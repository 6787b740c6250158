#!/usr/bin/env node
/** overlayd: flannel-compatible overlay agent. Wiring only: flags → network loop → health server. */
import '../common/compile-cache.js';
import { runCommand } from '../common/agent.js';
import { createEtcdClient } from '../common/etcd-client.js';
import { etcdFlags } from '../common/etcd-settings.js';
import { startHealthServer } from '../common/http.js';
import { logFlags } from '../common/logger.js';
import { metricsFor } from '../common/metrics.js';
import { UsageError, errorMessage } from '../common/errors.js';
import type { FlagTable } from '../common/cli.js';
import { OverlayNetwork } from './network.js';
import { releaseStartupPages } from './startup-memory.js';

const env = (name: string) => [`FLANNELD_${name}`];

const flags = {
  ...etcdFlags('FLANNELD'),
  'etcd-prefix': {
    type: 'string',
    value: 'PATH',
    help: 'etcd prefix holding config and subnets',
    default: '/coreos.com/network',
    env: env('ETCD_PREFIX'),
  },
  iface: {
    type: 'string',
    value: 'NAME|IP',
    help: 'external interface (name or address); default: the default route interface',
    env: env('IFACE'),
  },
  'public-ip': {
    type: 'string',
    value: 'IP',
    help: 'IP other hosts reach us on; default: the interface address',
    env: env('PUBLIC_IP'),
  },
  'public-ipv6': {
    type: 'string',
    value: 'IP',
    help: 'IPv6 address other hosts reach us on (with "EnableIPv6"); default: the interface address',
    env: env('PUBLIC_IPV6'),
  },
  'subnet-file': {
    type: 'string',
    value: 'FILE',
    help: 'where to write the flannel subnet.env',
    default: '/run/flannel/subnet.env',
    env: env('SUBNET_FILE'),
  },
  'docker-opts-file': {
    type: 'string',
    value: 'FILE',
    help: 'where to write DOCKER_OPT_BIP/MTU/IPMASQ and DOCKER_OPTS ("" to skip)',
    default: '/run/flannel/docker',
    env: env('DOCKER_OPTS_FILE'),
  },
  'ip-masq': {
    type: 'bool',
    help: 'masquerade traffic leaving the overlay (and remove the rules when false)',
    env: env('IP_MASQ'),
  },
  'iptables-forward-rules': {
    type: 'bool',
    help: 'accept forwarded overlay traffic in FLANNEL-FWD',
    default: true,
    env: env('IPTABLES_FORWARD_RULES'),
  },
  'subnet-lease-renew-margin': {
    type: 'int',
    value: 'MINUTES',
    help: 'renew the lease at least this long before it expires',
    default: 60,
    env: env('SUBNET_LEASE_RENEW_MARGIN'),
  },
  'subnet-lease-ttl': {
    type: 'duration',
    value: 'DURATION',
    help: 'TTL of the etcd lease attached to our subnet',
    default: '24h',
    env: env('SUBNET_LEASE_TTL'),
  },
  'resync-interval': {
    type: 'duration',
    value: 'DURATION',
    help: 'how often to re-check the device, iptables and kernel state',
    default: '10s',
    env: env('RESYNC_INTERVAL'),
  },
  'healthz-ip': {
    type: 'string',
    value: 'IP',
    help: 'address for /healthz, /readyz, /metrics',
    default: '0.0.0.0',
    env: env('HEALTHZ_IP'),
  },
  'healthz-port': {
    type: 'int',
    value: 'PORT',
    help: 'port for /healthz, /readyz, /metrics (0 = off)',
    default: 0,
    env: env('HEALTHZ_PORT'),
  },
  ...logFlags,
} satisfies FlagTable;

await runCommand({
  name: 'overlayd',
  usage: '[flags]',
  description:
    'Per-host overlay agent, interoperable with flannel (etcd v3): claims a subnet lease in etcd,\n' +
    'writes subnet.env, and programs a VXLAN (or host-gw) overlay through netlink.',
  flags,
  async start(f, { log }) {
    const ttlSeconds = Math.round(f.subnetLeaseTtl / 1000);
    if (ttlSeconds < 1) throw new UsageError('--subnet-lease-ttl: must be at least 1s');
    if (f.subnetLeaseRenewMargin < 0)
      throw new UsageError('--subnet-lease-renew-margin: must not be negative');
    if (f.healthzPort < 0 || f.healthzPort > 65535)
      throw new UsageError(`--healthz-port: ${f.healthzPort} is not a port`);
    const metrics = metricsFor('overlay');
    const etcd = createEtcdClient(f);
    const net = new OverlayNetwork({
      etcd,
      etcdEndpoints: f.etcdEndpoints,
      prefix: f.etcdPrefix,
      iface: f.iface || undefined,
      publicIP: f.publicIp || undefined,
      publicIPv6: f.publicIpv6 || undefined,
      subnetFile: f.subnetFile,
      dockerOptsFile: f.dockerOptsFile || undefined,
      ipMasq: f.ipMasq,
      forwardRules: f.iptablesForwardRules,
      leaseTtlSeconds: ttlSeconds,
      renewMarginMs: f.subnetLeaseRenewMargin * 60_000,
      resyncMs: f.resyncInterval,
      log,
      metrics,
      onColdStart: () => releaseStartupPages(log),
      onFatal: (err) => {
        log.fatal(`overlayd cannot continue: ${errorMessage(err)}`);
        process.stderr.write(`overlayd: ${errorMessage(err)}\n`);
        void net.stop().finally(() => process.exit(1));
      },
    });
    try {
      await net.start();
    } catch (err) {
      etcd.close();
      throw err;
    }
    const health =
      f.healthzPort > 0
        ? await startHealthServer({
            host: f.healthzIp,
            port: f.healthzPort,
            registry: metrics.registry,
            ready: () => net.ready(),
          })
        : undefined;
    return async () => {
      await net.stop();
      await health?.close();
      etcd.close();
    };
  },
});
