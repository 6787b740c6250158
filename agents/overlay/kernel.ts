/**
 * The agent's only door to the kernel: rtnetlink through the `netlink` package. It reads links,
 * addresses, routes, neighbours and VXLAN FDB entries into the plain shapes of reconcile.ts,
 * and applies reconcile ops. Reads are scoped to what this agent manages (see `readState`), so
 * other routes on the host are never seen as "extra" and never deleted.
 */
import { createRequire } from 'node:module';
import type * as Netlink from 'netlink';
import type { RtNetlinkSocket, StreamData } from 'netlink';
import {
  IPv4,
  IPv6,
  addrToBytes,
  bytesToAddr,
  bytesToIp,
  bytesToMac,
  familyOf,
  macToBytes,
  parsePrefix,
  prefixHas,
  type Cidr,
  type Family,
  type Prefix,
} from './ip.js';
import type { FdbEntry, KernelState, NeighEntry, Op, RouteEntry } from './reconcile.js';

// Only netlink's rtnetlink parts: its index also loads the generic-netlink, nl80211 and
// WireGuard families (~20 ms of start-up and ~1.5 MiB, measured), which this agent never uses.
const nl = createRequire(import.meta.url);
const { AttrStream } = nl('netlink/dist/structs.js') as Pick<typeof Netlink, 'AttrStream'>;
const { FlagsNew } = nl('netlink/dist/constants.js') as Pick<typeof Netlink, 'FlagsNew'>;
const { createRtNetlink } = nl('netlink/dist/rt/rt.js') as Pick<typeof Netlink, 'createRtNetlink'>;
const ifla = nl('netlink/dist/rt/ifla.js') as typeof Netlink.ifla;

const AF_INET = 2;
const AF_BRIDGE = 7;
const MAIN_TABLE = 254;
const RTNH_F_ONLINK = 4;
const CREATE_REPLACE = { flags: FlagsNew.CREATE | FlagsNew.REPLACE };

export interface VxlanInfo {
  vni: number;
  local: string | undefined;
  link: number | undefined;
  port: number;
  learning: boolean;
}

export interface LinkInfo {
  index: number;
  name: string;
  mac: string;
  mtu: number;
  up: boolean;
  kind: string | undefined;
  vxlan: VxlanInfo | undefined;
}

export interface VxlanSpec {
  name: string;
  vni: number;
  /** Source address of the encapsulated packets, IPv4 or IPv6 text (which makes the device's family). */
  local: string;
  link: number;
  port: number;
  learning: boolean;
  mtu: number;
}

/** The errno name of a rejected netlink request ("Request rejected: EEXIST" → "EEXIST"). */
export function netlinkErrno(err: unknown): string | undefined {
  return /Request rejected: (\w+)/.exec(err instanceof Error ? err.message : '')?.[1];
}

function encode(data: StreamData): Buffer {
  const s = new AttrStream();
  s.emit(data);
  return Buffer.concat(s.bufs);
}

function toLinkInfo(m: {
  data: { index?: number; flags?: { up?: true } };
  attrs: Netlink.ifla.LinkAttrs;
}): LinkInfo {
  let kind: string | undefined;
  let vxlan: VxlanInfo | undefined;
  if (m.attrs.linkinfo) {
    const info = ifla.parseInfo(m.attrs.linkinfo);
    kind = info.kind;
    if (kind === 'vxlan' && info.data) {
      const v = ifla.parseVxlan(info.data);
      vxlan = {
        vni: v.id ?? 0,
        local: v.local ? bytesToAddr(v.local) : v.local6 ? bytesToAddr(v.local6) : undefined,
        link: v.link,
        port: v.port ? v.port.readUInt16BE(0) : 0,
        learning: Boolean(v.learning),
      };
    }
  }
  return {
    index: m.data.index ?? 0,
    name: m.attrs.ifname ?? '',
    mac: m.attrs.address ? bytesToMac(m.attrs.address) : '',
    mtu: m.attrs.mtu ?? 0,
    up: Boolean(m.data.flags?.up),
    kind,
    vxlan,
  };
}

/**
 * Which kernel entries the agent owns: routes into `network` (and `ipv6.network`) via these
 * devices, and neighbour/FDB entries on each family's overlay device.
 */
export interface StateScope {
  network: Cidr;
  devices: ReadonlyMap<number, string>;
  overlayIndex: number | undefined;
  ipv6?: { network: Prefix; overlayIndex: number | undefined } | undefined;
}

/**
 * One request at a time on the socket: concurrent dumps on one netlink socket fail with EBUSY
 * or interleave multipart replies, so every call goes through this queue.
 */
function serialized(sock: RtNetlinkSocket): RtNetlinkSocket {
  let tail: Promise<unknown> = Promise.resolve();
  return new Proxy(sock, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || !/^(get|new|del|set)[A-Z]/.test(String(prop))) return v;
      return (...args: unknown[]) => {
        const run = () => (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        const p = tail.then(run, run);
        tail = p.catch(() => undefined);
        return p;
      };
    },
  });
}

/**
 * Two sockets: `sock` for dumps and device set-up, one request at a time (see `serialized`), and
 * `entries` for route/neighbour/FDB writes only. The latter never dumps, so its requests are
 * pipelined: the kernel handles each message in order as it is sent, so an event's FDB entry,
 * neighbour and route reach the kernel back to back, without waiting for each ack in between.
 */
export class Kernel {
  readonly sock: RtNetlinkSocket;
  private readonly entries: RtNetlinkSocket;

  constructor() {
    this.sock = serialized(createRtNetlink());
    this.entries = createRtNetlink();
  }

  async links(): Promise<LinkInfo[]> {
    return (await this.sock.getLinks()).map(toLinkInfo);
  }

  async linkByName(name: string): Promise<LinkInfo | undefined> {
    try {
      const [m] = await this.sock.getLink({}, { ifname: name });
      return m ? toLinkInfo(m) : undefined;
    } catch (err) {
      if (netlinkErrno(err) === 'ENODEV') return undefined;
      throw err;
    }
  }

  /** IPv4 addresses per interface index, as `{ ip, len }` with the host address kept in ip. */
  async addresses(): Promise<Map<number, { ip: number; len: number }[]>> {
    const out = new Map<number, { ip: number; len: number }[]>();
    for (const a of await this.sock.getAddresses({ family: AF_INET })) {
      const raw = a.attrs.local ?? a.attrs.address;
      if (!raw || a.data.index === undefined) continue;
      const list = out.get(a.data.index) ?? [];
      list.push({ ip: bytesToIp(raw), len: a.data.prefixlen ?? 32 });
      out.set(a.data.index, list);
    }
    return out;
  }

  /** Global (not link-local) addresses of family `f` per interface index, host bits kept. */
  async addressesOf(f: Family): Promise<Map<number, Prefix[]>> {
    const out = new Map<number, Prefix[]>();
    for (const a of await this.sock.getAddresses({ family: f.af })) {
      const raw = a.attrs.local ?? a.attrs.address;
      if (!raw || a.data.index === undefined || a.data.scope === 253) continue;
      const list = out.get(a.data.index) ?? [];
      list.push({ ip: f.parse(bytesToAddr(raw))!, len: a.data.prefixlen ?? f.bits });
      out.set(a.data.index, list);
    }
    return out;
  }

  /** Interface index of the IPv4 default route in the main table, if any. */
  async defaultRouteIndex(): Promise<number | undefined> {
    for (const r of await this.sock.getRoutes({ family: AF_INET })) {
      if (r.attrs.table === MAIN_TABLE && r.data.dstLen === 0 && r.attrs.oif !== undefined)
        return r.attrs.oif;
    }
    return undefined;
  }

  async createVxlan(s: VxlanSpec): Promise<LinkInfo> {
    const port = Buffer.alloc(2);
    port.writeUInt16BE(s.port);
    const data = encode(
      ifla.formatVxlan({
        id: s.vni,
        ...(familyOf(s.local) === IPv6
          ? { local6: addrToBytes(s.local) }
          : { local: addrToBytes(s.local) }),
        link: s.link,
        port,
        learning: s.learning ? 1 : 0,
      }),
    );
    const linkinfo = encode(ifla.formatInfo({ kind: 'vxlan', data }));
    await this.sock.newLink(
      {},
      { ifname: s.name, mtu: s.mtu, linkinfo },
      {
        flags: FlagsNew.CREATE | FlagsNew.EXCL,
      },
    );
    const l = await this.linkByName(s.name);
    if (!l) throw new Error(`created ${s.name} but cannot find it`);
    return l;
  }

  async deleteLink(index: number): Promise<void> {
    await this.sock.delLink({ index });
  }

  async setMtu(index: number, mtu: number): Promise<void> {
    await this.sock.setLink({ index }, { mtu });
  }

  async setUp(index: number): Promise<void> {
    await this.sock.setLink({ index, change: { up: true }, flags: { up: true } });
  }

  /**
   * Makes `want` the only address of family `f` on the link (as flannel does for its devices;
   * IPv6 link-local addresses stay); no-op when already so.
   */
  async setOnlyAddress(f: Family, index: number, want: Prefix): Promise<boolean> {
    let changed = false;
    let present = false;
    for (const a of await this.sock.getAddresses({ family: f.af })) {
      const raw = a.attrs.local ?? a.attrs.address;
      if (!raw || a.data.index !== index || a.data.scope === 253) continue;
      const ip = f.parse(bytesToAddr(raw))!;
      const len = a.data.prefixlen ?? f.bits;
      if (ip === want.ip && len === want.len) {
        present = true;
        continue;
      }
      await this.sock.delAddress(
        { family: f.af, prefixlen: len, index },
        { local: raw, address: raw },
      );
      changed = true;
    }
    if (!present) {
      const b = addrToBytes(f.format(want.ip));
      await this.sock.newAddress(
        { family: f.af, prefixlen: want.len, index },
        f.v === 4 ? { local: b, address: b } : { address: b },
        CREATE_REPLACE,
      );
      changed = true;
    }
    return changed;
  }

  /** Reads the managed entries (see StateScope) of both families into reconcile's shapes. */
  async readState(scope: StateScope): Promise<KernelState> {
    const state: KernelState = { routes: [], neighs: [], fdb: [] };
    const families: [Family, Prefix, number | undefined][] = [
      [IPv4, { ip: BigInt(scope.network.ip), len: scope.network.len }, scope.overlayIndex],
    ];
    if (scope.ipv6) families.push([IPv6, scope.ipv6.network, scope.ipv6.overlayIndex]);
    const overlays = new Set<number>();
    for (const [f, network, overlayIndex] of families) {
      for (const r of await this.sock.getRoutes({ family: f.af })) {
        const { attrs, data } = r;
        if (attrs.table !== MAIN_TABLE || !attrs.dst || !attrs.gateway || attrs.oif === undefined)
          continue;
        const dev = scope.devices.get(attrs.oif);
        if (!dev) continue;
        const dst = `${bytesToAddr(attrs.dst)}/${data.dstLen ?? f.bits}`;
        const p = parsePrefix(f, dst)!;
        if (p.len <= network.len || !prefixHas(f, network, p.ip)) continue;
        state.routes.push({
          dst,
          gw: bytesToAddr(attrs.gateway),
          dev,
          onlink: ((data.flags?.__unknown ?? 0) & RTNH_F_ONLINK) !== 0,
        });
      }
      if (overlayIndex === undefined) continue;
      overlays.add(overlayIndex);
      const dev = scope.devices.get(overlayIndex) ?? '';
      for (const n of await this.sock.getNeighbors({ family: f.af, ifindex: overlayIndex })) {
        if (n.data.ifindex !== overlayIndex || !n.data.state?.permanent) continue;
        if (!n.attrs.dst || !n.attrs.lladdr) continue;
        state.neighs.push({ ip: bytesToAddr(n.attrs.dst), mac: bytesToMac(n.attrs.lladdr), dev });
      }
    }
    if (overlays.size === 0) return state;
    for (const n of await this.sock.getNeighbors({ family: AF_BRIDGE })) {
      const index = n.data.ifindex ?? -1;
      if (!overlays.has(index) || !n.attrs.dst || !n.attrs.lladdr) continue;
      const mac = bytesToMac(n.attrs.lladdr);
      if (mac === '00:00:00:00:00:00' || ![4, 16].includes(n.attrs.dst.length)) continue;
      state.fdb.push({ mac, dst: bytesToAddr(n.attrs.dst), dev: scope.devices.get(index) ?? '' });
    }
    return state;
  }

  /**
   * Applies ops in the given order (the kernel sees them in that order: the order between kinds
   * matters for traffic), up to `window` unacknowledged at a time. Returns the failures; the
   * caller logs them and reconciles again later.
   */
  async apply(
    ops: readonly Op[],
    devIndex: ReadonlyMap<string, number>,
    window = 8,
  ): Promise<{ op: Op; err: Error }[]> {
    const failures: { op: Op; err: Error }[] = [];
    const inflight = new Set<Promise<void>>();
    for (const op of ops) {
      const p: Promise<void> = this.applyOne(op, devIndex)
        .catch((err: Error) => {
          failures.push({ op, err });
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    return failures;
  }

  private async applyOne(op: Op, devIndex: ReadonlyMap<string, number>): Promise<void> {
    const index = devIndex.get(op.entry.dev);
    if (index === undefined) throw new Error(`device ${op.entry.dev} not found`);
    const del = op.action === 'del';
    switch (op.kind) {
      case 'route':
        return this.route(op.entry, index, del);
      case 'neigh':
        return this.neigh(op.entry, index, del);
      case 'fdb':
        return this.fdb(op.entry, index, del);
    }
  }

  private async route(e: RouteEntry, index: number, del: boolean): Promise<void> {
    const [addr, len] = e.dst.split('/') as [string, string];
    const dst = { bytes: addrToBytes(addr), len: Number(len) };
    const data = {
      family: familyOf(addr).af,
      dstLen: dst.len,
      table: MAIN_TABLE,
      protocol: 'BOOT' as const,
      scope: 'UNIVERSE' as const,
      type: 'UNICAST' as const,
      flags: e.onlink ? { __unknown: RTNH_F_ONLINK } : {},
    };
    const attrs = { dst: dst.bytes, gateway: addrToBytes(e.gw), oif: index };
    if (del) await this.entries.delRoute(data, attrs);
    else await this.entries.newRoute(data, attrs, CREATE_REPLACE);
  }

  private async neigh(e: NeighEntry, index: number, del: boolean): Promise<void> {
    const data = { family: familyOf(e.ip).af, ifindex: index, state: { permanent: true as const } };
    const dst = addrToBytes(e.ip);
    if (del) await this.entries.delNeighbor(data, { dst });
    else await this.entries.newNeighbor(data, { dst, lladdr: macToBytes(e.mac) }, CREATE_REPLACE);
  }

  private async fdb(e: FdbEntry, index: number, del: boolean): Promise<void> {
    const data = {
      family: AF_BRIDGE,
      ifindex: index,
      state: { permanent: true as const },
      flags: { self: true as const },
    };
    const attrs = { dst: addrToBytes(e.dst), lladdr: macToBytes(e.mac) };
    if (del) await this.entries.delNeighbor(data, attrs);
    else await this.entries.newNeighbor(data, attrs, CREATE_REPLACE);
  }

  close(): void {
    this.sock.socket.close();
    this.entries.socket.close();
  }
}
