/** host-gw: no device; peers' subnets are routed via their PublicIP on the external interface. */
import type { Backend, BackendContext } from './backend.js';
import type { LeaseAttrs } from '../lease.js';

export class HostGwBackend implements Backend {
  readonly type = 'host-gw' as const;
  readonly overlayDev = undefined;
  readonly mtu: number;

  constructor(private readonly ctx: BackendContext) {
    this.mtu = ctx.external.link.mtu;
  }

  ensureDevice(): Promise<boolean> {
    return Promise.resolve(false);
  }

  configure(): Promise<void> {
    return Promise.resolve();
  }

  leaseAttrs(): LeaseAttrs {
    return { publicIP: this.ctx.external.publicIP, backendType: 'host-gw' };
  }

  devices(): Map<string, number> {
    return new Map([[this.ctx.external.link.name, this.ctx.external.link.index]]);
  }

  overlayIndex(): number | undefined {
    return undefined;
  }
}
