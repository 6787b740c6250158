/**
 * The network configuration flannel keeps at `<prefix>/config`: JSON whose keys match
 * case-insensitively (as Go's encoding/json does), with flannel's defaults filled in and every
 * problem reported as one line naming the field and its value.
 */
import { ConfigError } from '../common/errors.js';
import {
  IPv4,
  IPv6,
  formatPrefix,
  parsePrefix,
  prefixHas,
  prefixMask,
  type Cidr,
  type Family,
  type Prefix,
} from './ip.js';

export type BackendType = 'vxlan' | 'host-gw';

export interface BackendConfig {
  type: BackendType;
  vni: number;
  port: number;
  directRouting: boolean;
  learning: boolean;
  /** Overlay MTU; undefined means external MTU minus the encapsulation overhead. */
  mtu: number | undefined;
}

export interface NetworkConfig {
  network: Cidr;
  subnetLen: number;
  /** First and last subnet network addresses that may be handed out (inclusive). */
  subnetMin: number;
  subnetMax: number;
  /** Set when "EnableIPv6" is true: the IPv6 pool, next to the IPv4 one above. */
  ipv6: Pool | undefined;
  backend: BackendConfig;
}

type Json = Record<string, unknown>;

/** Case-insensitive field lookup, as Go's json.Unmarshal matches struct fields. */
function field(obj: Json, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/**
 * Parses and validates the config document. `where` (the etcd key) prefixes every error:
 * `config at /coreos.com/network/config: "Network" is not a CIDR ("10.5.0/16")`.
 */
export function parseNetworkConfig(text: string, where: string): NetworkConfig {
  const fail = (msg: string): never => {
    throw new ConfigError(`config at ${where}: ${msg}`);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return fail(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return fail('must be a JSON object like {"Network": "10.5.0.0/16"}');
  const obj = doc as Json;
  const show = (v: unknown) => JSON.stringify(v) ?? String(v);

  const enable = (name: string, dflt: boolean): boolean => {
    const v = field(obj, name);
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') return fail(`"${name}" must be true or false (${show(v)})`);
    return v;
  };
  if (!enable('EnableIPv4', true))
    fail('"EnableIPv4": false (an IPv6-only network) is not supported with etcd, as in flannel');
  const v4 = parsePool(obj, IPv4, V4_NAMES, fail);
  const ipv6 = enable('EnableIPv6', false) ? parsePool(obj, IPv6, V6_NAMES, fail) : undefined;
  return {
    network: { ip: Number(v4.network.ip), len: v4.network.len },
    subnetLen: v4.subnetLen,
    subnetMin: Number(v4.subnetMin),
    subnetMax: Number(v4.subnetMax),
    ipv6,
    backend: parseBackend(field(obj, 'Backend'), fail),
  };
}

/** One family's address pool: the network, the length of each host's subnet, and the range handed out. */
export interface Pool {
  network: Prefix;
  subnetLen: number;
  subnetMin: bigint;
  subnetMax: bigint;
}

interface PoolNames {
  network: string;
  subnetLen: string;
  subnetMin: string;
  subnetMax: string;
}
const V4_NAMES: PoolNames = {
  network: 'Network',
  subnetLen: 'SubnetLen',
  subnetMin: 'SubnetMin',
  subnetMax: 'SubnetMax',
};
const V6_NAMES: PoolNames = {
  network: 'IPv6Network',
  subnetLen: 'IPv6SubnetLen',
  subnetMin: 'IPv6SubnetMin',
  subnetMax: 'IPv6SubnetMax',
};

/**
 * flannel's CheckNetworkConfig for one family: a subnet of 24 (IPv4) or 64 (IPv6) bits when the
 * network leaves room for four, else network+2; the first subnet is skipped by default.
 */
function parsePool(obj: Json, f: Family, names: PoolNames, fail: (m: string) => never): Pool {
  const show = (v: unknown) => JSON.stringify(v) ?? String(v);
  const netRaw = field(obj, names.network);
  const example = f.v === 4 ? '10.5.0.0/16' : 'fd00:5::/48';
  if (netRaw === undefined) return fail(`"${names.network}" is missing (e.g. "${example}")`);
  const network = typeof netRaw === 'string' ? parsePrefix(f, netRaw) : undefined;
  if (!network)
    return fail(`"${names.network}" is not ${f.v === 4 ? 'a' : 'an IPv6'} CIDR (${show(netRaw)})`);
  if (network.len > f.bits - 4)
    return fail(
      `"${names.network}" is too small (${show(netRaw)}); the smallest useful network is a /${f.bits - 4}`,
    );
  const dfltLen = f.v === 4 ? 24 : 64;
  const lenRaw = field(obj, names.subnetLen);
  let subnetLen: number;
  if (lenRaw === undefined || lenRaw === 0)
    subnetLen = network.len <= dfltLen - 2 ? dfltLen : network.len + 2;
  else if (
    typeof lenRaw !== 'number' ||
    !Number.isInteger(lenRaw) ||
    lenRaw < 1 ||
    lenRaw > f.bits - 2
  )
    return fail(
      `"${names.subnetLen}" must be a whole number from 1 to ${f.bits - 2} (${show(lenRaw)})`,
    );
  else if (lenRaw < network.len + 2)
    return fail(
      `"${names.subnetLen}" ${lenRaw} leaves fewer than four subnets in ${formatPrefix(f, network)}; use at least ${network.len + 2}`,
    );
  else subnetLen = lenRaw;

  const size = 1n << BigInt(f.bits - subnetLen);
  const ipField = (name: string, dflt: bigint): bigint => {
    const v = field(obj, name);
    if (v === undefined || v === '' || v === null) return dflt;
    const ip = typeof v === 'string' ? f.parse(v) : undefined;
    if (ip === undefined) return fail(`"${name}" is not an IPv${f.v} address (${show(v)})`);
    if (!prefixHas(f, network, ip))
      return fail(`"${name}" ${show(v)} is outside "${names.network}" ${formatPrefix(f, network)}`);
    if ((ip & prefixMask(f, subnetLen)) !== ip)
      return fail(`"${name}" ${show(v)} is not on a /${subnetLen} ("${names.subnetLen}") boundary`);
    return ip;
  };
  const subnetMin = ipField(names.subnetMin, network.ip + size);
  const subnetMax = ipField(
    names.subnetMax,
    network.ip + (1n << BigInt(f.bits - network.len)) - size,
  );
  if (subnetMin > subnetMax)
    fail(
      `"${names.subnetMin}" ${f.format(subnetMin)} is above "${names.subnetMax}" ${f.format(subnetMax)}; no subnet can be allocated`,
    );
  return { network, subnetLen, subnetMin, subnetMax };
}

function parseBackend(raw: unknown, fail: (msg: string) => never): BackendConfig {
  const show = (v: unknown) => JSON.stringify(v) ?? String(v);
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    return fail(`"Backend" must be an object like {"Type": "vxlan"} (${show(raw)})`);
  const b = raw as Json;
  const typeRaw = field(b, 'Type') ?? 'vxlan';
  if (typeRaw !== 'vxlan' && typeRaw !== 'host-gw')
    return fail(`"Backend.Type" ${show(typeRaw)} is not supported (use "vxlan" or "host-gw")`);
  const int = (name: string, dflt: number, min: number, max: number): number => {
    const v = field(b, name);
    if (v === undefined || v === 0) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      return fail(`"Backend.${name}" must be a whole number from ${min} to ${max} (${show(v)})`);
    return v;
  };
  const bool = (name: string): boolean => {
    const v = field(b, name);
    if (v === undefined) return false;
    if (typeof v !== 'boolean') return fail(`"Backend.${name}" must be true or false (${show(v)})`);
    return v;
  };
  const mtu = int('MTU', 0, 576, 65535);
  return {
    type: typeRaw,
    vni: int('VNI', 1, 0, 16_777_215),
    port: int('Port', 8472, 1, 65535),
    directRouting: bool('DirectRouting'),
    learning: bool('Learning'),
    mtu: mtu === 0 ? undefined : mtu,
  };
}

/** Whether a subnet (e.g. from a lease or the old subnet file) may be used under this config. */
export function subnetFits(cfg: NetworkConfig, s: Cidr): boolean {
  return s.len === cfg.subnetLen && s.ip >= cfg.subnetMin && s.ip <= cfg.subnetMax;
}

/** The same for an IPv6 subnet and the IPv6 pool. */
export function poolFits(pool: Pool, s: Prefix): boolean {
  return s.len === pool.subnetLen && s.ip >= pool.subnetMin && s.ip <= pool.subnetMax;
}
