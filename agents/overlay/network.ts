/**
 * The network loop: wait for the config, set up the backend device, claim a subnet, write the
 * subnet file, then keep the kernel equal to what the leases say. Lease events, a periodic
 * resync and our own lease's loss all lead to one serialized `reconcile()`; nothing is applied
 * event by event. Stopping leaves the lease and the kernel state in place for a seamless restart.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../common/logger.js';
import { ConfigError, errorMessage } from '../common/errors.js';
import type { MetricSet } from '../common/metrics.js';
import { chooseSubnet } from './allocator.js';
import { parseNetworkConfig, type NetworkConfig } from './config.js';
import { formatCidr, formatIPv4, mask, parseIPv4, type Cidr } from './ip.js';
import { Kernel } from './kernel.js';
import { LeaseStore, type Held } from './lease-store.js';
import { desiredState, diffState } from './reconcile.js';
import {
  readPreviousSubnet,
  renderDockerOpts,
  renderSubnetEnv,
  writeFileAtomic,
} from './subnet-env.js';
import { ensureChain, forwardChain, masqChain, removeChain } from './ipmasq.js';
import type { Backend, ExternalInterface } from './backends/backend.js';
import { VxlanBackend } from './backends/vxlan.js';
import { HostGwBackend } from './backends/host-gw.js';

export interface NetworkOptions {
  etcd: Etcd3;
  etcdEndpoints: string[];
  prefix: string;
  iface: string | undefined;
  publicIP: string | undefined;
  subnetFile: string;
  dockerOptsFile: string | undefined;
  ipMasq: boolean;
  forwardRules: boolean;
  leaseTtlSeconds: number;
  renewMarginMs: number;
  resyncMs: number;
  log: Logger;
  metrics: MetricSet;
  /** Called when the loop cannot go on (e.g. the kernel refuses the device); main exits 1. */
  onFatal: (err: unknown) => void;
}

/**
 * Finds the external interface from --iface (a name or one of its IPv4 addresses), else the
 * default route's interface, else the first up non-loopback interface with an IPv4 address.
 * Throws ConfigError naming the flag when nothing fits.
 */
export async function resolveExternal(
  kernel: Kernel,
  iface: string | undefined,
  publicIP: string | undefined,
): Promise<ExternalInterface> {
  const links = await kernel.links();
  const addrs = await kernel.addresses();
  let link;
  if (iface) {
    const ip = parseIPv4(iface);
    link =
      ip === undefined
        ? links.find((l) => l.name === iface)
        : links.find((l) => (addrs.get(l.index) ?? []).some((a) => a.ip === ip));
    if (!link)
      throw new ConfigError(
        ip === undefined
          ? `--iface: no interface named "${iface}" (have: ${links.map((l) => l.name).join(', ')})`
          : `--iface: no interface has the address ${iface}`,
      );
  } else {
    const idx = await kernel.defaultRouteIndex();
    link =
      links.find((l) => l.index === idx) ??
      links.find((l) => l.up && l.name !== 'lo' && (addrs.get(l.index)?.length ?? 0) > 0);
    if (!link) throw new ConfigError('no default route and no --iface given; pass --iface NAME');
  }
  const own = addrs.get(link.index) ?? [];
  const ifaceIP = parseIPv4(iface ?? '');
  const local = own.find((a) => a.ip === ifaceIP) ?? own[0];
  if (!local) throw new ConfigError(`--iface: interface ${link.name} has no IPv4 address`);
  let pub = local.ip;
  if (publicIP) {
    const p = parseIPv4(publicIP);
    if (p === undefined) throw new ConfigError(`--public-ip: "${publicIP}" is not an IPv4 address`);
    pub = p;
  }
  return {
    link,
    publicIP: pub,
    localIP: local.ip,
    nets: own.map((a) => ({ ip: (a.ip & mask(a.len)) >>> 0, len: a.len })),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class OverlayNetwork {
  private readonly kernel = new Kernel();
  private readonly store: LeaseStore;
  private external: ExternalInterface | undefined;
  private cfg: NetworkConfig | undefined;
  private backend: Backend | undefined;
  private held: Held | undefined;
  private stopped = false;
  private fileWritten = false;
  private timers: NodeJS.Timeout[] = [];
  private reconciling = false;
  private dirty = false;
  private acquiring: Promise<void> | undefined;
  private readonly m;

  constructor(private readonly o: NetworkOptions) {
    this.store = new LeaseStore(o.etcd, o.prefix);
    const m = o.metrics;
    this.m = {
      leaseEvents: m.counter(
        'lease_events_total',
        'Lease set changes seen from etcd (list or watch)',
      ),
      invalid: m.counter(
        'invalid_leases_total',
        'Lease records skipped because they could not be decoded',
      ),
      relists: m.counter(
        'watch_relists_total',
        'Times the lease watch broke and the leases were listed again',
      ),
      acquisitions: m.counter('lease_acquisitions_total', 'Subnet leases claimed or adopted', [
        'how',
      ]),
      renewals: m.counter('lease_renewals_total', 'Lease keep-alives by result', ['result']),
      expiry: m.gauge(
        'lease_expiry_timestamp_seconds',
        'When our etcd lease expires unless renewed (Unix time; 0 = reservation or none yet)',
      ),
      unprogrammed: m.gauge(
        'peers_unprogrammed',
        'Other hosts with a lease but no route programmed (bad lease data or a failed route op)',
      ),
      peers: m.gauge('peers', 'Other hosts in the desired kernel state'),
      leases: m.gauge('leases', 'Leases currently in etcd'),
      reconciles: m.counter('reconciles_total', 'Reconcile passes'),
      reconcileSeconds: m.histogram(
        'reconcile_seconds',
        'Time of one reconcile pass',
        [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      ),
      ops: m.counter('kernel_ops_total', 'Kernel changes applied', ['kind', 'action']),
      opErrors: m.counter('kernel_op_errors_total', 'Kernel changes that failed (retried)'),
      startSeconds: m.gauge(
        'subnet_file_seconds',
        'Seconds from start until the subnet file was written',
      ),
    };
    this.store.on('invalid', (key, reason) => {
      this.m.invalid.inc();
      o.log.warn({ key }, `skipping lease ${key}: ${reason}`);
    });
    this.store.on('relist', (reason) => {
      this.m.relists.inc();
      o.log.warn(`lease watch broke (${reason}); listing again`);
    });
    this.store.on('change', () => {
      this.m.leaseEvents.inc();
      this.m.leases.set(this.store.leases.size);
      this.checkOwnLease();
      this.schedule();
    });
  }

  /** "true" once the subnet file is written, else what we are waiting for. */
  ready(): true | string {
    if (this.fileWritten) return true;
    if (!this.cfg) return 'waiting for network config';
    return 'waiting for a subnet lease';
  }

  /** Resolves the external interface (errors are fatal), then runs the rest in the background. */
  async start(): Promise<void> {
    const t0 = Date.now();
    this.external = await resolveExternal(this.kernel, this.o.iface, this.o.publicIP);
    this.o.log.info(
      `using interface ${this.external.link.name} (${formatIPv4(this.external.localIP)}), public IP ${formatIPv4(this.external.publicIP)}`,
    );
    void this.run(t0).catch((err: unknown) => {
      if (!this.stopped) this.o.onFatal(err);
    });
  }

  private async run(t0: number): Promise<void> {
    this.cfg = await this.waitForConfig();
    if (this.stopped) return;
    const cfg = this.cfg;
    const ctx = { kernel: this.kernel, external: this.external! };
    this.backend =
      cfg.backend.type === 'vxlan'
        ? new VxlanBackend(ctx, cfg.backend, (msg) => this.o.log.warn(msg))
        : new HostGwBackend(ctx);
    await this.backend.ensureDevice();
    await this.retry('list leases', () => this.store.sync());
    await this.acquire();
    this.m.startSeconds.set((Date.now() - t0) / 1000);
    this.schedule();
    this.every(this.o.resyncMs, () => this.resync());
    const ttlMs = this.o.leaseTtlSeconds * 1000;
    this.every(Math.max(1000, Math.min(ttlMs / 3, ttlMs - this.o.renewMarginMs)), () =>
      this.renew(),
    );
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => {
      fn().catch((err: unknown) => this.o.log.warn(errorMessage(err)));
    }, ms);
    this.timers.push(t);
  }

  /** Retries an etcd step until it works, saying why once per distinct error. */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let last = '';
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (this.stopped) throw err;
        const msg = `${what}: etcd at ${this.o.etcdEndpoints.join(',')}: ${errorMessage(err)}; retrying`;
        if (msg !== last) this.o.log.error(msg);
        last = msg;
        await sleep(1000);
      }
    }
  }

  private async waitForConfig(): Promise<NetworkConfig> {
    const key = this.store.configKey();
    let last = '';
    let lastAt = 0;
    const say = (level: 'warn' | 'error', msg: string) => {
      if (msg !== last || Date.now() - lastAt > 30_000) this.o.log[level](msg);
      last = msg;
      lastAt = Date.now();
    };
    while (!this.stopped) {
      try {
        const text = await this.store.getConfig();
        if (text === null) say('warn', `no network config at ${key} yet; waiting`);
        else {
          const cfg = parseNetworkConfig(text, key);
          this.o.log.info(
            `network ${formatCidr(cfg.network)}, /${cfg.subnetLen} subnets, backend ${cfg.backend.type}`,
          );
          return cfg;
        }
      } catch (err) {
        if (err instanceof ConfigError) say('error', `${err.message}; waiting for a fix`);
        else
          say(
            'error',
            `etcd unreachable at ${this.o.etcdEndpoints.join(',')}: ${errorMessage(err)}; retrying`,
          );
      }
      await sleep(1000);
    }
    throw new Error('stopped');
  }

  /** Claims or re-claims our subnet (serialized), then configures the device and writes the files. */
  private acquire(): Promise<void> {
    this.acquiring ??= this.doAcquire().finally(() => {
      this.acquiring = undefined;
    });
    return this.acquiring;
  }

  private async doAcquire(): Promise<void> {
    const cfg = this.cfg!;
    const backend = this.backend!;
    const pub = this.external!.publicIP;
    const previous = this.held?.subnet ?? (await readPreviousSubnet(this.o.subnetFile));
    for (;;) {
      if (this.stopped) return;
      const leases = [...this.store.leases.values()];
      const choice = chooseSubnet(cfg, leases, pub, previous);
      if (choice.kind === 'full') {
        this.o.log.error(
          `no free subnet in ${formatCidr(cfg.network)} (${leases.length} leases); retrying`,
        );
        await sleep(5000);
        continue;
      }
      const held = await this.retry('claim subnet', () =>
        choice.kind === 'existing'
          ? this.store.adopt(choice.lease, backend.leaseAttrs(), this.o.leaseTtlSeconds)
          : this.store.claimNew(choice.subnet, backend.leaseAttrs(), this.o.leaseTtlSeconds),
      );
      if (!held) {
        await this.retry('list leases', () => this.store.list());
        continue;
      }
      const how =
        choice.kind === 'existing'
          ? held.etcdLease === '0'
            ? 'reservation'
            : 'adopted'
          : choice.kind;
      this.m.acquisitions.inc({ how });
      this.o.log.info(
        `holding subnet ${formatCidr(held.subnet)} (${how}, etcd lease ${held.etcdLease})`,
      );
      this.held = held;
      // Approximate for an adopted lease until the first renewal reports its real TTL.
      this.m.expiry.set(held.etcdLease === '0' ? 0 : Date.now() / 1000 + this.o.leaseTtlSeconds);
      break;
    }
    await backend.configure(this.held.subnet);
    await this.applyIptables();
    const env = {
      network: cfg.network,
      subnet: this.held.subnet,
      mtu: backend.mtu,
      ipMasq: this.o.ipMasq,
    };
    await writeFileAtomic(this.o.subnetFile, renderSubnetEnv(env));
    if (this.o.dockerOptsFile) await writeFileAtomic(this.o.dockerOptsFile, renderDockerOpts(env));
    this.fileWritten = true;
    this.schedule();
  }

  /** Our key vanished or now names another host: claim again (preferring the same subnet). */
  private checkOwnLease(): void {
    const held = this.held;
    if (!held || this.acquiring || this.stopped) return;
    const cur = this.store.leases.get(held.key);
    if (cur && cur.attrs.publicIP === this.external!.publicIP) return;
    this.o.log.warn(
      `our lease ${held.key} ${cur ? 'was taken over' : 'was deleted'}; claiming again`,
    );
    if (cur) this.held = undefined;
    void this.acquire().catch((err: unknown) =>
      this.o.log.error(`re-claim failed: ${errorMessage(err)}`),
    );
  }

  private async renew(): Promise<void> {
    const held = this.held;
    if (!held || held.etcdLease === '0' || this.acquiring) return;
    try {
      const ttl = await this.store.keepAlive(held.etcdLease);
      if (ttl > 0) {
        this.m.renewals.inc({ result: 'ok' });
        this.m.expiry.set(Date.now() / 1000 + ttl);
        return;
      }
      this.m.renewals.inc({ result: 'lost' });
      this.o.log.warn(`etcd lease ${held.etcdLease} for ${held.key} expired; claiming again`);
      await this.acquire();
    } catch (err) {
      this.m.renewals.inc({ result: 'error' });
      this.o.log.warn(`lease keep-alive failed: ${errorMessage(err)}; retrying in 5 s`);
      // Do not wait a whole renewal period (up to TTL/3) after a failure.
      const t = setTimeout(() => void this.renew(), 5000);
      t.unref();
      this.timers.push(t);
    }
  }

  /** Periodic: the device still exists and matches (else recreate and republish the MAC), iptables, then reconcile. */
  private async resync(): Promise<void> {
    const backend = this.backend;
    if (!backend || !this.held || this.acquiring) return;
    if (await backend.ensureDevice()) {
      await backend.configure(this.held.subnet);
      const updated = await this.store.update(this.held, backend.leaseAttrs());
      if (updated) this.held = updated;
      this.o.log.warn(`recreated ${backend.overlayDev}; lease updated with its new MAC`);
    }
    await this.applyIptables();
    this.schedule();
  }

  private async applyIptables(): Promise<void> {
    const cfg = this.cfg;
    if (!cfg || !this.held) return;
    const masq = masqChain(cfg.network, this.held.subnet);
    try {
      if (this.o.ipMasq) {
        if (await ensureChain(masq)) this.o.log.info('installed ip-masq rules (FLANNEL-POSTRTG)');
      } else await removeChain(masq);
      if (this.o.forwardRules && (await ensureChain(forwardChain(cfg.network))))
        this.o.log.info('installed forward rules (FLANNEL-FWD)');
    } catch (err) {
      this.o.log.error(errorMessage(err));
    }
  }

  /** Requests a reconcile; passes are serialized and coalesced. */
  schedule(): void {
    if (!this.held || this.stopped) return;
    if (this.reconciling) {
      this.dirty = true;
      return;
    }
    this.reconciling = true;
    setImmediate(() => void this.reconcileLoop());
  }

  private async reconcileLoop(): Promise<void> {
    try {
      do {
        this.dirty = false;
        await this.reconcile();
      } while (this.dirty && !this.stopped);
    } catch (err) {
      this.o.log.error(`reconcile failed: ${errorMessage(err)}; retrying in 1 s`);
      setTimeout(() => this.schedule(), 1000).unref();
    } finally {
      this.reconciling = false;
    }
  }

  private async reconcile(): Promise<void> {
    const backend = this.backend;
    const held = this.held;
    if (!backend || !held || !this.cfg) return;
    const end = this.m.reconcileSeconds.startTimer();
    const desired = desiredState({
      backend: this.cfg.backend,
      self: held.subnet,
      publicIP: this.external!.publicIP,
      overlayDev: backend.overlayDev ?? '',
      externalDev: this.external!.link.name,
      externalNets: this.external!.nets,
      leases: [...this.store.leases.values()],
    });
    const devices = backend.devices();
    const scope = {
      network: this.cfg.network,
      devices: new Map([...devices].map(([n, i]) => [i, n])),
      overlayIndex: backend.overlayIndex(),
    };
    const ops = diffState(desired, await this.kernel.readState(scope));
    const failures = await this.kernel.apply(ops, devices);
    for (const op of ops) this.m.ops.inc({ kind: op.kind, action: op.action });
    this.m.reconciles.inc();
    this.m.peers.set(desired.routes.length);
    const others = [...this.store.leases.values()].filter((l) => l.key !== held.key).length;
    const failedRoutes = failures.filter((f) => f.op.kind === 'route' && f.op.action !== 'del');
    this.m.unprogrammed.set(Math.max(0, others - desired.routes.length) + failedRoutes.length);
    end();
    if (ops.length > 0)
      this.o.log.debug({ ops: ops.length, failed: failures.length }, 'reconciled kernel state');
    if (failures.length > 0) {
      this.m.opErrors.inc(failures.length);
      for (const f of failures.slice(0, 5))
        this.o.log.warn(
          `${f.op.action} ${f.op.kind} ${Object.values(f.op.entry).join(' ')} failed: ${f.err.message}`,
        );
      setTimeout(() => this.schedule(), 1000).unref();
    }
  }

  /** Stops watching and timers; leaves the lease (it expires by TTL if we never return) and kernel state. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.store.close();
    this.kernel.close();
  }
}

export type { Cidr };
