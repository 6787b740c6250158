/**
 * VXLAN: one device `flannel.<VNI>` (local = our PublicIP, dev = external interface, nolearning,
 * MTU = external MTU − 50), address = our subnet's network address /32. An existing compatible
 * device is reused as is (so its MAC, and our lease value, survive restarts); an incompatible
 * one is deleted and recreated.
 */
import type { BackendConfig } from '../config.js';
import { formatIPv4 } from '../ip.js';
import type { LinkInfo, VxlanSpec } from '../kernel.js';
import type { LeaseAttrs } from '../lease.js';
import type { Cidr } from '../ip.js';
import type { Backend, BackendContext } from './backend.js';

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;

/** Why an existing device cannot be reused, or undefined when it can. */
export function vxlanMismatch(l: LinkInfo, s: VxlanSpec): string | undefined {
  if (l.kind !== 'vxlan' || !l.vxlan) return `is a ${l.kind ?? 'non-vxlan'} device`;
  const v = l.vxlan;
  if (v.vni !== s.vni) return `has VNI ${v.vni}, want ${s.vni}`;
  if (v.local !== formatIPv4(s.local))
    return `has local ${v.local ?? 'none'}, want ${formatIPv4(s.local)}`;
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
  ) {
    this.overlayDev = `flannel.${cfg.vni}`;
    this.mtu = cfg.mtu ?? ctx.external.link.mtu - VXLAN_OVERHEAD;
    this.spec = {
      name: this.overlayDev,
      vni: cfg.vni,
      local: ctx.external.localIP,
      link: ctx.external.link.index,
      port: cfg.port,
      learning: cfg.learning,
      mtu: this.mtu,
    };
  }

  async ensureDevice(): Promise<boolean> {
    const k = this.ctx.kernel;
    const existing = await k.linkByName(this.overlayDev);
    if (existing) {
      const why = vxlanMismatch(existing, this.spec);
      if (!why) {
        if (existing.mtu !== this.mtu) await k.setMtu(existing.index, this.mtu);
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

  async configure(subnet: Cidr): Promise<void> {
    const l = this.requireLink();
    await this.ctx.kernel.setOnlyAddress(l.index, { ip: subnet.ip, len: 32 });
    if (!l.up) {
      await this.ctx.kernel.setUp(l.index);
      this.link = { ...l, up: true };
    }
  }

  leaseAttrs(): LeaseAttrs {
    return {
      publicIP: this.ctx.external.publicIP,
      backendType: 'vxlan',
      vni: this.cfg.vni,
      vtepMAC: this.requireLink().mac,
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
