/**
 * Which subnet this host should hold, decided from the current leases alone (pure, no etcd).
 * Order, as flannel does on restart: a lease (or reservation) already carrying our PublicIP;
 * else the subnet from our previous subnet file if it is still free and valid; else a random
 * free subnet in [SubnetMin, SubnetMax].
 */
import { poolFits, subnetFits, type NetworkConfig, type Pool } from './config.js';
import { IPv4, IPv6, type Cidr, type Family, type Prefix } from './ip.js';
import type { Lease } from './lease.js';

/** `subnet6` is set on a dual-stack network, for a previous or new subnet. */
export type Choice =
  | { kind: 'existing'; lease: Lease }
  | { kind: 'previous'; subnet: Cidr; subnet6?: Prefix }
  | { kind: 'new'; subnet: Cidr; subnet6?: Prefix }
  | { kind: 'full' };

export function chooseSubnet(
  cfg: NetworkConfig,
  leases: readonly Lease[],
  publicIP: number,
  previous: Cidr | undefined,
  random: () => number = Math.random,
  previous6?: Prefix,
): Choice {
  const pool6 = cfg.ipv6;
  // Like flannel's isIPv6SubnetConfigCompat: an IPv6 subnet exactly when the network has IPv6.
  const fits6 = (s6: Prefix | undefined) => (pool6 ? !!s6 && poolFits(pool6, s6) : !s6);
  const ours = leases.filter(
    (l) => l.attrs.publicIP === publicIP && subnetFits(cfg, l.subnet) && fits6(l.subnet6),
  );
  const existing = ours.find((l) => l.etcdLease === '0') ?? ours[0];
  if (existing) return { kind: 'existing', lease: existing };
  const taken = new Set(leases.map((l) => l.subnet.ip));
  let subnet6: Prefix | undefined;
  if (pool6) {
    const taken6 = new Set(leases.flatMap((l) => (l.subnet6 ? [l.subnet6.ip] : [])));
    if (previous6 && poolFits(pool6, previous6) && !taken6.has(previous6.ip)) subnet6 = previous6;
    else {
      const ip6 = randomFree(IPv6, pool6, taken6, random);
      if (ip6 === undefined) return { kind: 'full' };
      subnet6 = { ip: ip6, len: pool6.subnetLen };
    }
  }
  const v6 = subnet6 ? { subnet6 } : {};
  if (previous && subnetFits(cfg, previous) && !taken.has(previous.ip))
    return { kind: 'previous', subnet: previous, ...v6 };
  const ip = randomFreeSubnet(cfg, taken, random);
  return ip === undefined
    ? { kind: 'full' }
    : { kind: 'new', subnet: { ip, len: cfg.subnetLen }, ...v6 };
}

/**
 * A uniformly random subnet network address in [SubnetMin, SubnetMax] not in `taken`, or
 * undefined when all are taken. IPv4 form of `randomFree`.
 */
export function randomFreeSubnet(
  cfg: NetworkConfig,
  taken: ReadonlySet<number>,
  random: () => number = Math.random,
): number | undefined {
  const pool = {
    subnetLen: cfg.subnetLen,
    subnetMin: BigInt(cfg.subnetMin),
    subnetMax: BigInt(cfg.subnetMax),
  };
  const big = new Set([...taken].map((t) => BigInt(t)));
  const ip = randomFree(IPv4, pool, big, random);
  return ip === undefined ? undefined : Number(ip);
}

/**
 * Either family: tries random picks first (cheap when the pool is sparse, as an IPv6 pool always
 * is), then scans from a random start so a nearly full pool still finds the last free one.
 */
export function randomFree(
  f: Family,
  pool: Pick<Pool, 'subnetLen' | 'subnetMin' | 'subnetMax'>,
  taken: ReadonlySet<bigint>,
  random: () => number = Math.random,
): bigint | undefined {
  const step = 1n << BigInt(f.bits - pool.subnetLen);
  const count = (pool.subnetMax - pool.subnetMin) / step + 1n;
  const at = (i: bigint) => pool.subnetMin + i * step;
  // A random index below count: 48 random bits scaled, enough for any pool handed out here.
  const pick = () => (BigInt(Math.floor(random() * 2 ** 48)) * count) >> 48n;
  for (let attempt = 0; attempt < 32; attempt++) {
    const ip = at(pick());
    if (!taken.has(ip)) return ip;
  }
  // Of any taken.size + 1 consecutive slots one is free: the scan is bounded for IPv6 pools too.
  const slots = count < BigInt(taken.size) + 1n ? count : BigInt(taken.size) + 1n;
  const start = pick();
  for (let i = 0n; i < slots; i++) {
    const ip = at((start + i) % count);
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}
