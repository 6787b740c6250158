/**
 * The network loop: wait for the config, set up the backend device, claim a subnet, write the
 * subnet file, then keep the kernel equal to what the leases say. A lease event applies only its
 * own delta at once (against the entries we know we applied); the start, the periodic resync, a
 * relist and any failed op lead to a full `reconcile()` that reads the kernel and repairs what
 * changed behind our back. Both run in one queue, never interleaved. Stopping leaves the lease
 * and the kernel state in place for a seamless restart.
 */
import type { EtcdKv } from '../common/etcd-client.js';
import type { Logger } from '../common/logger.js';
import { ConfigError, errorMessage } from '../common/errors.js';
import type { MetricSet } from '../common/metrics.js';
import { chooseSubnet } from './allocator.js';
import { parseNetworkConfig, type NetworkConfig } from './config.js';
import {
  IPv4,
  IPv6,
  formatCidr,
  formatIPv4,
  formatPrefix,
  mask,
  parseIPv4,
  prefixMask,
  type Cidr,
  type Family,
} from './ip.js';
import { Kernel } from './kernel.js';
import { LeaseStore, type Held } from './lease-store.js';
import type { LeaseAttrs } from './lease.js';
import { AppliedLeases, diffState, leaseEntries, mergeStates, type Op } from './reconcile.js';
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
  etcd: EtcdKv;
  etcdEndpoints: string[];
  prefix: string;
  iface: string | undefined;
  publicIP: string | undefined;
  publicIPv6?: string | undefined;
  subnetFile: string;
  dockerOptsFile: string | undefined;
  ipMasq: boolean;
  forwardRules: boolean;
  leaseTtlSeconds: number;
  renewMarginMs: number;
  resyncMs: number;
  log: Logger;
  metrics: MetricSet;
  /**
   * Called once, after the first full pass (the cold start: every lease's routes, neighbours and
   * FDB entries) and the iptables set-up are applied.
   */
  onColdStart?: () => void;
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
  publicIPv6?: string,
): Promise<ExternalInterface> {
  const addrs = await kernel.addresses();
  let link;
  if (iface) {
    const ip = parseIPv4(iface);
    // By name, one link is asked for: parsing the whole link dump is a measurable part of start-up.
    link =
      ip === undefined
        ? await kernel.linkByName(iface)
        : (await kernel.links()).find((l) => (addrs.get(l.index) ?? []).some((a) => a.ip === ip));
    if (!link)
      throw new ConfigError(
        ip === undefined
          ? `--iface: no interface named "${iface}" (have: ${(await kernel.links()).map((l) => l.name).join(', ')})`
          : `--iface: no interface has the address ${iface}`,
      );
  } else {
    const links = await kernel.links();
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
  // The IPv6 side is used only when the network config enables IPv6.
  const own6 = (await kernel.addressesOf(IPv6)).get(link.index) ?? [];
  let pub6 = own6[0]?.ip;
  if (publicIPv6) {
    pub6 = IPv6.parse(publicIPv6);
    if (pub6 === undefined)
      throw new ConfigError(`--public-ipv6: "${publicIPv6}" is not an IPv6 address`);
  }
  return {
    link,
    publicIP: pub,
    localIP: local.ip,
    nets: own.map((a) => ({ ip: (a.ip & mask(a.len)) >>> 0, len: a.len })),
    localIP6: own6[0]?.ip,
    publicIP6: pub6,
    nets6: own6.map((a) => ({ ip: a.ip & prefixMask(IPv6, a.len), len: a.len })),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class OverlayNetwork {
  private readonly kernel = new Kernel();
  private readonly store: LeaseStore;
  private external: ExternalInterface | undefined;
  private cfg: NetworkConfig | undefined;
  private backend: Backend | undefined;
  /** The flannel-v6.<VNI> device on a dual-stack vxlan network. */
  private backend6: VxlanBackend | undefined;
  private held: Held | undefined;
  private stopped = false;
  private fileWritten = false;
  private timers: NodeJS.Timeout[] = [];
  private renewRetry: NodeJS.Timeout | undefined;
  private readonly applied = new AppliedLeases();
  /** Lease keys changed since their delta was last applied. */
  private readonly pendingKeys = new Set<string>();
  private fullPending = false;
  private coldStartDone = false;
  private working = false;
  private acquiring: Promise<void> | undefined;
  private iptables: Promise<void> = Promise.resolve();
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
    this.store.on('change', (keys) => {
      this.m.leaseEvents.inc();
      this.m.leases.set(this.store.leases.size);
      this.checkOwnLease();
      if (keys) for (const k of keys) this.pendingKeys.add(k);
      else this.fullPending = true;
      this.kick();
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
    this.external = await resolveExternal(
      this.kernel,
      this.o.iface,
      this.o.publicIP,
      this.o.publicIPv6,
    );
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
    if (cfg.ipv6) {
      if (this.external!.localIP6 === undefined || this.external!.publicIP6 === undefined)
        throw new ConfigError(
          `"EnableIPv6" is set in ${this.store.configKey()} but ${this.external!.link.name} has no global IPv6 address`,
        );
      if (cfg.backend.type === 'vxlan') {
        this.backend6 = new VxlanBackend(ctx, cfg.backend, (msg) => this.o.log.warn(msg), IPv6);
        await this.backend6.ensureDevice();
      }
    }
    await this.retry('list leases', () => this.store.sync());
    await this.acquire();
    this.m.startSeconds.set((Date.now() - t0) / 1000); // acquire() scheduled the first full pass
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
            `network ${formatCidr(cfg.network)}, /${cfg.subnetLen} subnets` +
              (cfg.ipv6
                ? `, IPv6 ${formatPrefix(IPv6, cfg.ipv6.network)}, /${cfg.ipv6.subnetLen} subnets`
                : '') +
              `, backend ${cfg.backend.type}`,
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
    const prev = this.held ?? (await readPreviousSubnet(this.o.subnetFile));
    for (;;) {
      if (this.stopped) return;
      const leases = [...this.store.leases.values()];
      const choice = chooseSubnet(cfg, leases, pub, prev.subnet, Math.random, prev.subnet6);
      if (choice.kind === 'full') {
        this.o.log.error(
          `no free subnet in ${formatCidr(cfg.network)} (${leases.length} leases); retrying`,
        );
        await sleep(5000);
        continue;
      }
      const held = await this.retry('claim subnet', () =>
        choice.kind === 'existing'
          ? this.store.adopt(choice.lease, this.leaseAttrs(), this.o.leaseTtlSeconds)
          : this.store.claimNew(
              choice.subnet,
              this.leaseAttrs(),
              this.o.leaseTtlSeconds,
              choice.subnet6,
            ),
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
      const v6 = held.subnet6 ? ` and ${formatPrefix(IPv6, held.subnet6)}` : '';
      this.o.log.info(
        `holding subnet ${formatCidr(held.subnet)}${v6} (${how}, etcd lease ${held.etcdLease})`,
      );
      this.held = held;
      // Approximate for an adopted lease until the first renewal reports its real TTL.
      this.m.expiry.set(held.etcdLease === '0' ? 0 : Date.now() / 1000 + this.o.leaseTtlSeconds);
      break;
    }
    await backend.configure(this.held.subnet);
    const subnet6 = this.held.subnet6;
    if (this.backend6 && subnet6) await this.backend6.configure(subnet6);
    const env = {
      network: cfg.network,
      subnet: this.held.subnet,
      mtu: backend.mtu,
      ipMasq: this.o.ipMasq,
      ipv6: cfg.ipv6 && subnet6 ? { network: cfg.ipv6.network, subnet: subnet6 } : undefined,
    };
    await writeFileAtomic(this.o.subnetFile, renderSubnetEnv(env));
    if (this.o.dockerOptsFile) await writeFileAtomic(this.o.dockerOptsFile, renderDockerOpts(env));
    this.fileWritten = true;
    this.schedule();
    // After the files and off the routes' path, as flannel does: dockerd can start meanwhile.
    void this.applyIptables();
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
      clearTimeout(this.renewRetry);
      this.renewRetry = setTimeout(() => void this.renew(), 5000);
      this.renewRetry.unref();
    }
  }

  /** Periodic: the device still exists and matches (else recreate and republish the MAC), iptables, then reconcile. */
  private async resync(): Promise<void> {
    const backend = this.backend;
    if (!backend || !this.held || this.acquiring) return;
    for (const [b, subnet] of [
      [backend, this.held.subnet],
      [this.backend6, this.held.subnet6],
    ] as const) {
      if (!b || !subnet || !(await b.ensureDevice())) continue;
      await b.configure(subnet);
      const updated = await this.store.update(this.held, this.leaseAttrs());
      if (updated) this.held = updated;
      this.o.log.warn(`recreated ${b.overlayDev}; lease updated with its new MAC`);
    }
    await this.applyIptables();
    this.schedule();
  }

  /** Sets up the iptables chains; runs are chained, so two never interleave. */
  private applyIptables(): Promise<void> {
    this.iptables = this.iptables.then(() => this.doApplyIptables());
    return this.iptables;
  }

  private async doApplyIptables(): Promise<void> {
    const cfg = this.cfg;
    if (!cfg || !this.held) return;
    const families: [Family, string, string][] = [
      [IPv4, formatCidr(cfg.network), formatCidr(this.held.subnet)],
    ];
    if (cfg.ipv6 && this.held.subnet6)
      families.push([
        IPv6,
        formatPrefix(IPv6, cfg.ipv6.network),
        formatPrefix(IPv6, this.held.subnet6),
      ]);
    for (const [f, network, subnet] of families) {
      const masq = masqChain(f, network, subnet);
      try {
        if (this.o.ipMasq) {
          if (await ensureChain(masq))
            this.o.log.info(`installed ip-masq rules (${masq.cmd} FLANNEL-POSTRTG)`);
        } else await removeChain(masq);
        if (this.o.forwardRules && (await ensureChain(forwardChain(f, network))))
          this.o.log.info(`installed forward rules (${masq.cmd} FLANNEL-FWD)`);
      } catch (err) {
        this.o.log.error(errorMessage(err));
      }
    }
  }

  /** Requests a full reconcile (reads the kernel); passes are serialized and coalesced. */
  schedule(): void {
    this.fullPending = true;
    this.kick();
  }

  /** Runs the queue unless it is running: pending deltas at once, a pending full pass first. */
  private kick(): void {
    if (!this.held || this.stopped || this.working) return;
    this.working = true;
    void this.work().finally(() => {
      this.working = false;
      if (this.fullPending || this.pendingKeys.size > 0) this.kick();
    });
  }

  private async work(): Promise<void> {
    while (!this.stopped && (this.fullPending || this.pendingKeys.size > 0)) {
      try {
        if (this.fullPending) {
          this.fullPending = false;
          this.pendingKeys.clear();
          await this.reconcile();
        } else await this.applyDeltas();
      } catch (err) {
        this.o.log.error(`reconcile failed: ${errorMessage(err)}; retrying in 1 s`);
        setTimeout(() => this.schedule(), 1000).unref();
        return;
      }
    }
  }

  /** Our lease value's fields: the IPv4 backend's, plus the IPv6 side on a dual-stack network. */
  private leaseAttrs(): LeaseAttrs {
    const a = this.backend!.leaseAttrs();
    if (!this.cfg?.ipv6) return a;
    const b6 = this.backend6?.leaseAttrs();
    return {
      ...a,
      publicIPv6: this.external!.publicIP6!,
      ...(b6?.v6VtepMAC ? { v6vni: b6.v6vni!, v6VtepMAC: b6.v6VtepMAC } : {}),
    };
  }

  /** Every device the reconciler writes to: name → ifindex. */
  private devices(): Map<string, number> {
    return new Map([...this.backend!.devices(), ...(this.backend6?.devices() ?? [])]);
  }

  private desiredContext() {
    const backend = this.backend!;
    const held = this.held!;
    const ext = this.external!;
    return {
      ipv6:
        this.cfg!.ipv6 && held.subnet6 && ext.publicIP6 !== undefined
          ? {
              self: held.subnet6,
              publicIP: ext.publicIP6,
              overlayDev: this.backend6?.overlayDev ?? '',
              externalNets: ext.nets6 ?? [],
            }
          : undefined,
      backend: this.cfg!.backend,
      self: this.held!.subnet,
      publicIP: this.external!.publicIP,
      overlayDev: backend.overlayDev ?? '',
      externalDev: this.external!.link.name,
      externalNets: this.external!.nets,
    };
  }

  /** The changed leases' own delta against what we applied for them, sent to the kernel at once. */
  private async applyDeltas(): Promise<void> {
    const ctx = this.desiredContext();
    const ops: Op[] = [];
    for (const key of this.pendingKeys) {
      const l = this.store.leases.get(key);
      ops.push(...this.applied.update(key, l && leaseEntries(ctx, l)));
    }
    this.pendingKeys.clear();
    if (ops.length > 0) await this.applyOps(ops);
  }

  /** Full pass: desired state from all leases against what the kernel has now. */
  private async reconcile(): Promise<void> {
    const backend = this.backend;
    if (!backend || !this.held || !this.cfg) return;
    const end = this.m.reconcileSeconds.startTimer();
    const ctx = this.desiredContext();
    const perLease = [...this.store.leases.values()].map(
      (l) => [l.key, leaseEntries(ctx, l)] as const,
    );
    const desired = mergeStates(perLease.map(([, e]) => e));
    const devices = this.devices();
    const scope = {
      network: this.cfg.network,
      devices: new Map([...devices].map(([n, i]) => [i, n])),
      overlayIndex: backend.overlayIndex(),
      ipv6: this.cfg.ipv6
        ? { network: this.cfg.ipv6.network, overlayIndex: this.backend6?.overlayIndex() }
        : undefined,
    };
    const ops = diffState(desired, await this.kernel.readState(scope));
    this.applied.reset(perLease);
    const failures = await this.applyOps(ops);
    this.m.reconciles.inc();
    // Peers: other leases with at least one route (either family) in the desired state.
    const own = this.held.key;
    const others = perLease.filter(([k]) => k !== own);
    const programmed = others.filter(([, e]) => e.routes.length > 0).length;
    this.m.peers.set(programmed);
    const failedRoutes = failures.filter((f) => f.op.kind === 'route' && f.op.action !== 'del');
    this.m.unprogrammed.set(others.length - programmed + failedRoutes.length);
    end();
    if (!this.coldStartDone) {
      this.coldStartDone = true;
      const hook = this.o.onColdStart;
      if (hook) void this.iptables.then(hook);
    }
  }

  private async applyOps(ops: Op[]): Promise<{ op: Op; err: Error }[]> {
    const failures = await this.kernel.apply(ops, this.devices());
    for (const op of ops) this.m.ops.inc({ kind: op.kind, action: op.action });
    if (ops.length > 0)
      this.o.log.debug({ ops: ops.length, failed: failures.length }, 'applied kernel changes');
    if (failures.length > 0) {
      this.m.opErrors.inc(failures.length);
      for (const f of failures.slice(0, 5))
        this.o.log.warn(
          `${f.op.action} ${f.op.kind} ${Object.values(f.op.entry).join(' ')} failed: ${f.err.message}`,
        );
      setTimeout(() => this.schedule(), 1000).unref();
    }
    return failures;
  }

  /** Stops watching and timers; leaves the lease (it expires by TTL if we never return) and kernel state. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.renewRetry);
    await this.store.close();
    this.kernel.close();
  }
}

export type { Cidr };
