/**
 * The network configuration flannel keeps at `<prefix>/config`: JSON whose keys match
 * case-insensitively (as Go's encoding/json does), with flannel's defaults filled in and every
 * problem reported as one line naming the field and its value.
 */
import { ConfigError } from '../common/errors.js';
import {
  blockSize,
  formatCidr,
  formatIPv4,
  ipInCidr,
  mask,
  parseCidr,
  parseIPv4,
  type Cidr,
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

  const netRaw = field(obj, 'Network');
  if (netRaw === undefined) return fail('"Network" is missing (e.g. "10.5.0.0/16")');
  const network = typeof netRaw === 'string' ? parseCidr(netRaw) : undefined;
  if (!network) return fail(`"Network" is not a CIDR (${show(netRaw)})`);
  if (network.len > 28)
    return fail(`"Network" is too small (${show(netRaw)}); the smallest useful network is a /28`);

  const intField = (name: string, min: number, max: number): number | undefined => {
    const v = field(obj, name);
    if (v === undefined || v === 0) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      return fail(`"${name}" must be a whole number from ${min} to ${max} (${show(v)})`);
    return v;
  };
  let subnetLen = intField('SubnetLen', 1, 30);
  if (subnetLen === undefined) subnetLen = network.len <= 22 ? 24 : network.len + 2;
  else if (subnetLen < network.len + 2)
    fail(
      `"SubnetLen" ${subnetLen} leaves fewer than four subnets in ${formatCidr(network)}; use at least ${network.len + 2}`,
    );

  const size = blockSize(subnetLen);
  const ipField = (name: string, dflt: number): number => {
    const v = field(obj, name);
    if (v === undefined || v === '' || v === null) return dflt;
    const ip = typeof v === 'string' ? parseIPv4(v) : undefined;
    if (ip === undefined) return fail(`"${name}" is not an IPv4 address (${show(v)})`);
    if (!ipInCidr(network, ip))
      return fail(`"${name}" ${show(v)} is outside "Network" ${formatCidr(network)}`);
    if ((ip & mask(subnetLen)) >>> 0 !== ip)
      return fail(`"${name}" ${show(v)} is not on a /${subnetLen} ("SubnetLen") boundary`);
    return ip;
  };
  const subnetMin = ipField('SubnetMin', network.ip + size);
  const subnetMax = ipField('SubnetMax', network.ip + blockSize(network.len) - size);
  if (subnetMin > subnetMax)
    fail(
      `"SubnetMin" ${formatIPv4(subnetMin)} is above "SubnetMax" ${formatIPv4(subnetMax)}; no subnet can be allocated`,
    );

  return {
    network,
    subnetLen,
    subnetMin,
    subnetMax,
    backend: parseBackend(field(obj, 'Backend'), fail),
  };
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
