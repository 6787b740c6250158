/**
 * flannel's lease record, byte for byte: the etcd key `<prefix>/subnets/10.5.7.0-24` names the
 * subnet, the value is Go's encoding of LeaseAttrs, e.g.
 * `{"PublicIP":"192.168.250.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"b2:30:db:24:3d:30"}}`.
 * A dual-stack lease (flannel's EnableIPv6) names both subnets in its key,
 * `10.5.7.0-24&fd00:5:7::-64`, and adds `PublicIPv6` and `BackendV6Data` (the VTEP of the
 * flannel-v6.<VNI> device).
 * Pure: encode/decode and key<->subnet mapping, with one-line errors for bad records.
 */
import {
  IPv6,
  formatIPv4,
  formatPrefix,
  normalizeMac,
  parseCidr,
  parseIPv4,
  parsePrefix,
  type Cidr,
  type Prefix,
} from './ip.js';

export interface LeaseAttrs {
  /** 0 (0.0.0.0) when the host has no IPv4 side, as flannel writes it. */
  publicIP: number;
  backendType: string;
  /** Present for vxlan leases with an IPv4 VTEP (BackendData). */
  vni?: number;
  vtepMAC?: string;
  /** Present for dual-stack leases. */
  publicIPv6?: bigint;
  /** The IPv6 VTEP (BackendV6Data). */
  v6vni?: number;
  v6VtepMAC?: string;
}

/** A lease as seen in etcd. `etcdLease` is "0" for a reservation (key without TTL). */
export interface Lease {
  key: string;
  subnet: Cidr;
  /** The IPv6 subnet of a dual-stack lease (after `&` in the key). */
  subnet6?: Prefix;
  attrs: LeaseAttrs;
  etcdLease: string;
  modRevision: string;
}

export function subnetsPrefix(prefix: string): string {
  return `${prefix.replace(/\/+$/, '')}/subnets/`;
}

export function subnetKey(prefix: string, s: Cidr, s6?: Prefix): string {
  const v6 = s6 ? `&${formatPrefix(IPv6, s6).replace('/', '-')}` : '';
  return `${subnetsPrefix(prefix)}${formatIPv4(s.ip)}-${s.len}${v6}`;
}

/** The subnet a key names, or undefined when the key is not `<prefix>/subnets/a.b.c.d-len[&v6-len]`. */
export function keyToSubnet(prefix: string, key: string): Cidr | undefined {
  return keyToSubnets(prefix, key)?.subnet;
}

/** Both subnets of a key (`subnet6` only for a dual-stack key). */
export function keyToSubnets(
  prefix: string,
  key: string,
): { subnet: Cidr; subnet6: Prefix | undefined } | undefined {
  const p = subnetsPrefix(prefix);
  if (!key.startsWith(p)) return undefined;
  const m = /^(\d+\.\d+\.\d+\.\d+)-(\d+)(?:&([0-9a-f:]+)-(\d+))?$/.exec(key.slice(p.length));
  if (!m) return undefined;
  const subnet = parseCidr(`${m[1]}/${m[2]}`, true);
  const subnet6 = m[3] ? parsePrefix(IPv6, `${m[3]}/${m[4]}`, true) : undefined;
  if (!subnet || (m[3] && !subnet6)) return undefined;
  return { subnet, subnet6 };
}

const vtepJSON = (vni: number | undefined, mac: string) =>
  `{"VNI":${vni ?? 1},"VtepMAC":${JSON.stringify(mac)}}`;

/** Encodes exactly as flannel's Go code does (field order, null PublicIPv6, no spaces, omitempty). */
export function encodeLease(a: LeaseAttrs): string {
  const v6 = a.publicIPv6 === undefined ? 'null' : JSON.stringify(IPv6.format(a.publicIPv6));
  let out = `{"PublicIP":${JSON.stringify(formatIPv4(a.publicIP))},"PublicIPv6":${v6},"BackendType":${JSON.stringify(a.backendType)}`;
  if (a.vtepMAC !== undefined) out += `,"BackendData":${vtepJSON(a.vni, a.vtepMAC)}`;
  if (a.v6VtepMAC !== undefined) out += `,"BackendV6Data":${vtepJSON(a.v6vni, a.v6VtepMAC)}`;
  return `${out}}`;
}

export class LeaseFormatError extends Error {
  override name = 'LeaseFormatError';
}

/** `{VNI, VtepMAC}` of one family, or undefined when absent; throws when present but bad. */
function decodeVtep(
  o: Record<string, unknown>,
  field: string,
): { vni: number; mac: string } | undefined {
  const data = o[field];
  if (data === undefined || data === null) return undefined;
  const d = (typeof data === 'object' ? data : {}) as Record<string, unknown>;
  const mac = typeof d['VtepMAC'] === 'string' ? normalizeMac(d['VtepMAC']) : undefined;
  if (mac === undefined)
    throw new LeaseFormatError(
      `vxlan lease without a valid "${field}.VtepMAC" (${JSON.stringify(d['VtepMAC'])})`,
    );
  const vni = d['VNI'];
  return { vni: typeof vni === 'number' && Number.isInteger(vni) ? vni : 1, mac };
}

/** Decodes a lease value; throws LeaseFormatError with a one-line reason. Unknown fields are ignored. */
export function decodeLease(text: string): LeaseAttrs {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new LeaseFormatError(`not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new LeaseFormatError('not a JSON object');
  const o = doc as Record<string, unknown>;
  const ip = typeof o['PublicIP'] === 'string' ? parseIPv4(o['PublicIP']) : undefined;
  if (ip === undefined)
    throw new LeaseFormatError(
      `"PublicIP" is not an IPv4 address (${JSON.stringify(o['PublicIP'])})`,
    );
  const backendType = typeof o['BackendType'] === 'string' ? o['BackendType'] : '';
  const attrs: LeaseAttrs = { publicIP: ip, backendType };
  const raw6 = o['PublicIPv6'];
  if (raw6 !== undefined && raw6 !== null) {
    const ip6 = typeof raw6 === 'string' ? IPv6.parse(raw6) : undefined;
    if (ip6 === undefined)
      throw new LeaseFormatError(`"PublicIPv6" is not an IPv6 address (${JSON.stringify(raw6)})`);
    attrs.publicIPv6 = ip6;
  }
  if (backendType === 'vxlan') {
    const v4 = decodeVtep(o, 'BackendData');
    const v6 = decodeVtep(o, 'BackendV6Data');
    if (!v4 && !v6)
      throw new LeaseFormatError('vxlan lease without a valid "BackendData.VtepMAC" (undefined)');
    if (v4) [attrs.vni, attrs.vtepMAC] = [v4.vni, v4.mac];
    if (v6) [attrs.v6vni, attrs.v6VtepMAC] = [v6.vni, v6.mac];
  }
  return attrs;
}
