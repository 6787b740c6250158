/**
 * Desired kernel state from the current leases, and the difference from what the kernel has,
 * both pure. The backends read the kernel into a `KernelState` (only the entries this agent
 * manages), and apply the returned ops; equal states give no ops, so a restart or a repeated
 * event never touches a working route, neighbour or FDB entry.
 */
import type { BackendConfig } from './config.js';
import {
  IPv4,
  IPv6,
  cidrEqual,
  formatPrefix,
  prefixHas,
  type Cidr,
  type Family,
  type Prefix,
} from './ip.js';
import type { Lease } from './lease.js';

/** `dst via gw dev [onlink]`. Keyed by dst. */
export interface RouteEntry {
  dst: string;
  gw: string;
  dev: string;
  onlink: boolean;
}
/** Permanent ARP entry `ip lladdr mac dev`. Keyed by ip. */
export interface NeighEntry {
  ip: string;
  mac: string;
  dev: string;
}
/** VXLAN forwarding entry `mac dst ip dev`. Keyed by mac. */
export interface FdbEntry {
  mac: string;
  dst: string;
  dev: string;
}

export interface KernelState {
  routes: RouteEntry[];
  neighs: NeighEntry[];
  fdb: FdbEntry[];
}

export interface DesiredInput {
  backend: BackendConfig;
  /** Our own subnet; its lease is skipped. */
  self: Cidr;
  publicIP: number;
  overlayDev: string;
  externalDev: string;
  /** Networks directly attached to the external interface: DirectRouting peers inside them get a plain route. */
  externalNets: readonly Cidr[];
  leases: readonly Lease[];
  /** Our IPv6 side on a dual-stack network. */
  ipv6?: Side | undefined;
}

/** Our side of one family: own subnet, public address, overlay device, attached networks. */
export interface Side {
  self: Prefix;
  publicIP: bigint;
  overlayDev: string;
  externalNets: readonly Prefix[];
}

/** A peer's side of one family, from its lease; undefined when the lease has none. */
function peerSide(
  f: Family,
  l: Lease,
): { subnet: Prefix; publicIP: bigint; mac: string | undefined } | undefined {
  if (f.v === 4)
    return l.attrs.publicIP === 0
      ? undefined
      : {
          subnet: { ip: BigInt(l.subnet.ip), len: l.subnet.len },
          publicIP: BigInt(l.attrs.publicIP),
          mac: l.attrs.vtepMAC,
        };
  return l.subnet6 && l.attrs.publicIPv6 !== undefined
    ? { subnet: l.subnet6, publicIP: l.attrs.publicIPv6, mac: l.attrs.v6VtepMAC }
    : undefined;
}

const sidesCache = new WeakMap<object, [Family, Side][]>();

/** Our sides per family, computed once per input object (a full pass calls leaseEntries per lease). */
function sidesOf(d: Omit<DesiredInput, 'leases'>): [Family, Side][] {
  let sides = sidesCache.get(d);
  if (sides) return sides;
  const v4: Side = {
    self: { ip: BigInt(d.self.ip), len: d.self.len },
    publicIP: BigInt(d.publicIP),
    overlayDev: d.overlayDev,
    externalNets: d.externalNets.map((n) => ({ ip: BigInt(n.ip), len: n.len })),
  };
  sides = [[IPv4, v4]];
  if (d.ipv6) sides.push([IPv6, d.ipv6]);
  sidesCache.set(d, sides);
  return sides;
}

/**
 * The kernel entries one lease asks for, per family we run and the lease has: none for our own
 * lease or a lease we cannot use. A dual-stack peer gets both families, an IPv6-only or
 * IPv4-only peer just its own.
 */
export function leaseEntries(d: Omit<DesiredInput, 'leases'>, l: Lease): KernelState {
  const state: KernelState = { routes: [], neighs: [], fdb: [] };
  if (cidrEqual(l.subnet, d.self) || (l.attrs.publicIP !== 0 && l.attrs.publicIP === d.publicIP))
    return state;
  for (const [f, side] of sidesOf(d)) {
    const peer = peerSide(f, l);
    if (!peer || peer.publicIP === side.publicIP) continue;
    const dst = formatPrefix(f, peer.subnet);
    const gw = f.format(peer.publicIP);
    const direct = () => state.routes.push({ dst, gw, dev: d.externalDev, onlink: false });
    if (d.backend.type === 'host-gw') {
      if (l.attrs.backendType === 'host-gw') direct();
      continue;
    }
    if (l.attrs.backendType !== 'vxlan' || peer.mac === undefined) continue;
    if (d.backend.directRouting && side.externalNets.some((n) => prefixHas(f, n, peer.publicIP))) {
      direct();
      continue;
    }
    const vtep = f.format(peer.subnet.ip);
    state.neighs.push({ ip: vtep, mac: peer.mac, dev: side.overlayDev });
    state.fdb.push({ mac: peer.mac, dst: gw, dev: side.overlayDev });
    state.routes.push({ dst, gw: vtep, dev: side.overlayDev, onlink: true });
  }
  return state;
}

export function mergeStates(states: Iterable<KernelState>): KernelState {
  const state: KernelState = { routes: [], neighs: [], fdb: [] };
  for (const e of states) {
    state.routes.push(...e.routes);
    state.neighs.push(...e.neighs);
    state.fdb.push(...e.fdb);
  }
  return state;
}

/** All leases' entries, in subnet order. */
export function desiredState(d: DesiredInput): KernelState {
  const sorted = [...d.leases].sort((a, b) => a.subnet.ip - b.subnet.ip);
  return mergeStates(sorted.map((l) => leaseEntries(d, l)));
}

const EMPTY: KernelState = { routes: [], neighs: [], fdb: [] };

/**
 * What each lease has put into the kernel, as last applied. A lease event then costs only its
 * own delta: `update(key, entries)` returns the ops that turn the lease's previous entries into
 * the new ones (none when nothing changed) and remembers the new ones. `reset()` after a full
 * reconcile that read the kernel.
 */
export class AppliedLeases {
  private readonly byKey = new Map<string, KernelState>();

  update(key: string, next: KernelState | undefined): Op[] {
    const ops = diffState(next ?? EMPTY, this.byKey.get(key) ?? EMPTY);
    if (next && next.routes.length + next.neighs.length + next.fdb.length > 0)
      this.byKey.set(key, next);
    else this.byKey.delete(key);
    return ops;
  }

  reset(entries: Iterable<readonly [string, KernelState]>): void {
    this.byKey.clear();
    for (const [k, e] of entries)
      if (e.routes.length + e.neighs.length + e.fdb.length > 0) this.byKey.set(k, e);
  }
}

export type Op =
  | { action: 'add' | 'replace' | 'del'; kind: 'route'; entry: RouteEntry }
  | { action: 'add' | 'replace' | 'del'; kind: 'neigh'; entry: NeighEntry }
  | { action: 'add' | 'replace' | 'del'; kind: 'fdb'; entry: FdbEntry };

function diffKind<T extends object, K extends Op['kind']>(
  kind: K,
  desired: readonly T[],
  actual: readonly T[],
  keyOf: (e: T) => string,
): { adds: Op[]; dels: Op[] } {
  const have = new Map(actual.map((e) => [keyOf(e), e]));
  const want = new Map(desired.map((e) => [keyOf(e), e]));
  const adds: Op[] = [];
  const dels: Op[] = [];
  for (const [k, e] of want) {
    const cur = have.get(k);
    if (!cur) adds.push({ action: 'add', kind, entry: e } as Op);
    else if (!sameEntry(cur, e)) adds.push({ action: 'replace', kind, entry: e } as Op);
  }
  for (const [k, e] of have) if (!want.has(k)) dels.push({ action: 'del', kind, entry: e } as Op);
  return { adds, dels };
}

function sameEntry(a: object, b: object): boolean {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) {
    if (x[k] !== y[k]) return false;
    n++;
  }
  for (const _ in y) n--;
  return n === 0;
}

/**
 * Ops turning `actual` into `desired`. Order matters for traffic: removals go route → neigh →
 * fdb (stop sending before forgetting where to), additions fdb → neigh → route.
 */
export function diffState(desired: KernelState, actual: KernelState): Op[] {
  const r = diffKind('route', desired.routes, actual.routes, (e) => e.dst);
  const n = diffKind('neigh', desired.neighs, actual.neighs, (e) => `${e.dev} ${e.ip}`);
  const f = diffKind('fdb', desired.fdb, actual.fdb, (e) => `${e.dev} ${e.mac}`);
  return [...r.dels, ...n.dels, ...f.dels, ...f.adds, ...n.adds, ...r.adds];
}
