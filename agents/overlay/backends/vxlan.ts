/**
 * VXLAN, one device per address family, as flannel: `flannel.<VNI>` for IPv4 and
 * `flannel-v6.<VNI>` for IPv6 (local = the interface address of that family, dev = external
 * interface, nolearning, MTU = external MTU − the encapsulation), address = our subnet's network
 * address as a host route (/32, /128). An existing compatible device is reused as is (so its MAC,
 * and our lease value, survive restarts); an incompatible one is deleted and recreated.
 */
import type { BackendConfig } from '../config.js';
import { IPv4, type Family, type Prefix } from '../ip.js';
import type { LinkInfo, VxlanSpec } from '../kernel.js';
import type { LeaseAttrs } from '../lease.js';
import type { Cidr } from '../ip.js';
import type { Backend, BackendContext } from './backend.js';

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;
/** The same over an outer IPv6 header (40). */
export const VXLAN6_OVERHEAD = 70;

/** Why an existing device cannot be reused, or undefined when it can. */
export function vxlanMismatch(l: LinkInfo, s: VxlanSpec): string | undefined {
  if (l.kind !== 'vxlan' || !l.vxlan) return `is a ${l.kind ?? 'non-vxlan'} device`;
  const v = l.vxlan;
  if (v.vni !== s.vni) return `has VNI ${v.vni}, want ${s.vni}`;
  if (v.local !== s.local) return `has local ${v.local ?? 'none'}, want ${s.local}`;
  if (v.link !== s.link) return `is bound to ifindex ${v.link ?? 'none'}, want ${s.link}`;
  if (v.port !== s.port) return `has dstport ${v.port}, want ${s.port}`;
  if (v.learning !== s.learning) return `has learning ${v.learning}, want ${s.learning}`;
  return undefined;
}

export class VxlanBackend implements Backend {
  readonly type = 'vxlan' as const;
  readonly overlayDev: string;
  readonly mtu: number;
  private link: LinkInfo | undefined;
  private readonly spec: VxlanSpec;

  constructor(
    private readonly ctx: BackendContext,
    private readonly cfg: BackendConfig,
    private readonly log: (msg: string) => void = () => undefined,
    readonly family: Family = IPv4,
  ) {
    const v4 = family.v === 4;
    this.overlayDev = v4 ? `flannel.${cfg.vni}` : `flannel-v6.${cfg.vni}`;
    // FLANNEL_MTU is the IPv4 device's, as flannel writes it; the IPv6 device fits its larger header.
    this.mtu = cfg.mtu ?? ctx.external.link.mtu - VXLAN_OVERHEAD;
    const local = v4 ? BigInt(ctx.external.localIP) : ctx.external.localIP6;
    if (local === undefined) throw new Error(`no IPv6 address on ${ctx.external.link.name}`);
    this.spec = {
      name: this.overlayDev,
      vni: cfg.vni,
      local: family.format(local),
      link: ctx.external.link.index,
      port: cfg.port,
      learning: cfg.learning,
      mtu: v4 ? this.mtu : (cfg.mtu ?? ctx.external.link.mtu - VXLAN6_OVERHEAD),
    };
  }

  async ensureDevice(): Promise<boolean> {
    const k = this.ctx.kernel;
    const existing = await k.linkByName(this.overlayDev);
    if (existing) {
      const why = vxlanMismatch(existing, this.spec);
      if (!why) {
        if (existing.mtu !== this.spec.mtu) await k.setMtu(existing.index, this.spec.mtu);
        const changed = this.link?.index !== undefined && this.link.index !== existing.index;
        this.link = existing;
        return changed;
      }
      this.log(`${this.overlayDev} ${why}; recreating it`);
      await k.deleteLink(existing.index);
    } else if (this.link) {
      this.log(`${this.overlayDev} disappeared; recreating it`);
    }
    this.link = await k.createVxlan(this.spec);
    return true;
  }

  /** `subnet` is ours of this device's family (a Cidr for IPv4, a Prefix for IPv6). */
  async configure(subnet: Cidr | Prefix): Promise<void> {
    const l = this.requireLink();
    const f = this.family;
    await this.ctx.kernel.setOnlyAddress(f, l.index, { ip: BigInt(subnet.ip), len: f.bits });
    if (!l.up) {
      await this.ctx.kernel.setUp(l.index);
      this.link = { ...l, up: true };
    }
  }

  /** Our lease's fields for this family (a dual-stack lease merges both families'). */
  leaseAttrs(): LeaseAttrs {
    const ext = this.ctx.external;
    const mac = this.requireLink().mac;
    if (this.family.v === 4)
      return { publicIP: ext.publicIP, backendType: 'vxlan', vni: this.cfg.vni, vtepMAC: mac };
    return {
      publicIP: 0,
      backendType: 'vxlan',
      ...(ext.publicIP6 !== undefined ? { publicIPv6: ext.publicIP6 } : {}),
      v6vni: this.cfg.vni,
      v6VtepMAC: mac,
    };
  }

  devices(): Map<string, number> {
    const l = this.requireLink();
    return new Map([
      [l.name, l.index],
      [this.ctx.external.link.name, this.ctx.external.link.index],
    ]);
  }

  overlayIndex(): number | undefined {
    return this.link?.index;
  }

  private requireLink(): LinkInfo {
    if (!this.link) throw new Error(`${this.overlayDev} not set up yet`);
    return this.link;
  }
}
