/**
 * Wiring of the dnsd agent: config → zone tree + etcd store → resolver + UDP/TCP server →
 * health/metrics endpoint (→ registrator with --docker). Returns the stop function.
 * etcd being down at start is not fatal: the server answers (empty zone, forwarding works)
 * and /readyz says not ready until the first snapshot loads.
 */
import { dockerSocketPath } from '../common/docker.js';
import { createEtcd } from '../common/etcd.js';
import { startHealthServer, type HealthServer } from '../common/http.js';
import type { Logger } from '../common/logger.js';
import { metricsFor } from '../common/metrics.js';
import { AnswerCache } from './cache.js';
import { buildConfig, type DnsdFlags } from './config.js';
import { allowed, Forwarder, networkList } from './forwarder.js';
import { DnsServer, Resolver } from './server.js';
import { DnsStats, registerStats } from './stats.js';
import { RecordStore } from './store.js';
import { ZoneTree } from './tree.js';
import { UsageError } from '../common/errors.js';
import { CheckStats, registerCheckStats } from './checker.js';
import { pickUdpTransport } from './udp.js';
import { loadBatchTransport } from './udp-batch.js';
import { dgramTransport } from './udp-dgram.js';

export async function startDnsd(flags: DnsdFlags, log: Logger): Promise<() => Promise<void>> {
  const cfg = buildConfig(flags);
  if (cfg.notice) log.warn(cfg.notice);
  let nets;
  try {
    nets = networkList(cfg.forwardNetworks);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const udp = pickUdpTransport(
    cfg.udpIo,
    dgramTransport,
    cfg.udpIo === 'dgram' ? new Error('not asked for') : loadBatchTransport(),
  );
  if (udp.warning) log.warn(udp.warning);
  const client = createEtcd(flags);
  const tree = new ZoneTree();
  const cache = new AnswerCache();
  const stats = new DnsStats();
  const checkStats = new CheckStats();
  const store = new RecordStore({
    client,
    prefix: cfg.prefix,
    tree,
    log,
    onChange: () => cache.clear(),
  });
  // Forwarding to ourselves (resolv.conf naming this host's dnsd) would loop until timeout.
  const self = (u: { host: string; port: number }) =>
    cfg.addrs.some(
      (a) => a.port === u.port && (a.host === u.host || a.host === '0.0.0.0' || a.host === '::'),
    );
  const upstreams = cfg.upstreams.filter((u) => {
    if (self(u)) log.warn({ upstream: `${u.host}:${u.port}` }, 'not forwarding to our own address');
    return !self(u);
  });
  const forwarder =
    cfg.noRec || upstreams.length === 0 ? null : new Forwarder(upstreams, cfg.forwardTimeoutMs);
  if (!cfg.noRec && !forwarder)
    log.warn('no upstream nameservers (none given, none in /etc/resolv.conf): not forwarding');
  const resolver = new Resolver({
    tree,
    cache,
    stats,
    forwarder,
    mayForward: (ip) => allowed(nets, ip),
    zoneLoaded: () => store.loaded,
    roundRobin: cfg.roundRobin,
    config: () => ({
      zones: cfg.zones,
      defaultTtl: cfg.ttl,
      minTtl: cfg.minTtl,
      minLeaseTtl: cfg.minLeaseTtl,
      maxLeaseTtl: cfg.maxLeaseTtl,
      serial: store.revision,
    }),
    log,
  });
  const server = new DnsServer(resolver, log, udp.transport);
  await server.listen(cfg.addrs);
  store.start();
  let health: HealthServer | null = null;
  let registrator: { stop(): Promise<void> } | null = null;
  try {
    if (cfg.metrics) {
      const m = metricsFor('dns');
      registerStats(m.registry, stats, {
        etcd_up: { help: '1 while etcd answers', read: () => (store.up ? 1 : 0) },
        zone_loaded: {
          help: '1 once the zone was loaded from etcd (before that, in-zone names get SERVFAIL)',
          read: () => (store.loaded ? 1 : 0),
        },
        records: { help: 'records in the in-memory zone', read: () => tree.size },
        revision: { help: 'etcd revision the zone reflects', read: () => store.revision },
        bad_records_total: {
          help: 'records skipped for bad JSON',
          read: () => store.badRecords,
          counter: true,
        },
        watch_events_total: {
          help: 'etcd watch events applied',
          read: () => store.changes,
          counter: true,
        },
        cache_entries: { help: 'encoded answers cached', read: () => cache.size },
        udp_send_failures_total: {
          help: 'UDP answers not sent: refused by the kernel, or dropped while the send buffer stayed full (--udp-io batch)',
          read: () =>
            server.udpListeners.reduce((n, l) => {
              const s = l.stats?.();
              return n + Number(s?.['sendErrors'] ?? 0) + Number(s?.['dropped'] ?? 0);
            }, 0),
          counter: true,
        },
      });
      registerCheckStats(m.registry, checkStats);
      health = await startHealthServer({
        ...cfg.metrics,
        registry: m.registry,
        ready: () =>
          !store.loaded
            ? 'zone not loaded from etcd yet'
            : store.up
              ? true
              : `etcd unreachable; answering from memory (${tree.size} records)`,
      });
    }
    if (flags.docker) {
      const { startRegistrator } = await import('./registrator.js');
      registrator = await startRegistrator({
        client,
        prefix: cfg.prefix,
        zone: cfg.zones[0]!,
        socketPath: dockerSocketPath(flags.dockerHost),
        log,
        hostname: flags.hostname,
        stats: checkStats,
      });
    }
  } catch (err) {
    await server.close();
    await store.stop();
    client.close();
    throw err;
  }
  log.info(
    {
      listen: server.listeners.map((l) => `${l.host}:${l.port}`),
      udpIo: udp.transport.name,
      zones: cfg.zones,
      upstreams: forwarder ? upstreams.map((u) => `${u.host}:${u.port}`) : [],
      metrics: health ? `${cfg.metrics!.host}:${health.port}` : null,
    },
    'dnsd serving',
  );
  return async () => {
    await registrator?.stop();
    await server.close();
    await store.stop();
    forwarder?.close();
    await health?.close();
    client.close();
  };
}
