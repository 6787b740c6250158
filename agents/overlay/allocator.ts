/**
 * Which subnet this host should hold, decided from the current leases alone (pure, no etcd).
 * Order, as flannel does on restart: a lease (or reservation) already carrying our PublicIP;
 * else the subnet from our previous subnet file if it is still free and valid; else a random
 * free subnet in [SubnetMin, SubnetMax].
 */
import { subnetFits, type NetworkConfig } from './config.js';
import { blockSize, type Cidr } from './ip.js';
import type { Lease } from './lease.js';

export type Choice =
  | { kind: 'existing'; lease: Lease }
  | { kind: 'previous'; subnet: Cidr }
  | { kind: 'new'; subnet: Cidr }
  | { kind: 'full' };

export function chooseSubnet(
  cfg: NetworkConfig,
  leases: readonly Lease[],
  publicIP: number,
  previous: Cidr | undefined,
  random: () => number = Math.random,
): Choice {
  const ours = leases.filter((l) => l.attrs.publicIP === publicIP && subnetFits(cfg, l.subnet));
  const existing = ours.find((l) => l.etcdLease === '0') ?? ours[0];
  if (existing) return { kind: 'existing', lease: existing };
  const taken = new Set(leases.map((l) => l.subnet.ip));
  if (previous && subnetFits(cfg, previous) && !taken.has(previous.ip))
    return { kind: 'previous', subnet: previous };
  const ip = randomFreeSubnet(cfg, taken, random);
  return ip === undefined ? { kind: 'full' } : { kind: 'new', subnet: { ip, len: cfg.subnetLen } };
}

/**
 * A uniformly random subnet network address in [SubnetMin, SubnetMax] not in `taken`, or
 * undefined when all are taken. Tries random picks first (cheap when the pool is sparse),
 * then scans from a random start so a nearly full pool still finds the last free one.
 */
export function randomFreeSubnet(
  cfg: NetworkConfig,
  taken: ReadonlySet<number>,
  random: () => number = Math.random,
): number | undefined {
  const step = blockSize(cfg.subnetLen);
  const count = Math.floor((cfg.subnetMax - cfg.subnetMin) / step) + 1;
  const at = (i: number) => cfg.subnetMin + i * step;
  for (let attempt = 0; attempt < 32; attempt++) {
    const ip = at(Math.floor(random() * count));
    if (!taken.has(ip)) return ip;
  }
  const start = Math.floor(random() * count);
  for (let i = 0; i < count; i++) {
    const ip = at((start + i) % count);
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}
