/**
 * What a backend does for the network loop: set up its device once it knows the external
 * interface, describe our lease (BackendType/BackendData), and tell the reconciler which kernel
 * devices it programs. Desired state itself is computed in reconcile.ts for every backend.
 */
import type { BackendType } from '../config.js';
import type { Cidr, Prefix } from '../ip.js';
import type { Kernel, LinkInfo } from '../kernel.js';
import type { LeaseAttrs } from '../lease.js';

export interface ExternalInterface {
  link: LinkInfo;
  /** Address in our lease (--public-ip, else localIP). */
  publicIP: number;
  /** Address on the interface, used as the VXLAN source. */
  localIP: number;
  /** Networks directly attached to the interface (for DirectRouting). */
  nets: Cidr[];
  /** The IPv6 side (global address on the interface), on a dual-stack network. */
  localIP6?: bigint | undefined;
  publicIP6?: bigint | undefined;
  nets6?: Prefix[];
}

export interface Backend {
  readonly type: BackendType;
  /** MTU for containers (subnet.env FLANNEL_MTU). */
  readonly mtu: number;
  /** Name of the overlay device, if the backend has one. */
  readonly overlayDev: string | undefined;
  /**
   * Creates or verifies the device (without address). Returns true when the device had to be
   * (re)created, which changes its MAC and therefore our lease value.
   */
  ensureDevice(): Promise<boolean>;
  /** Puts the subnet's address on the device and brings it up (idempotent). */
  configure(subnet: Cidr | Prefix): Promise<void>;
  leaseAttrs(): LeaseAttrs;
  /** Devices the reconciler reads and writes: name -> ifindex. */
  devices(): Map<string, number>;
  overlayIndex(): number | undefined;
}

export interface BackendContext {
  kernel: Kernel;
  external: ExternalInterface;
}
