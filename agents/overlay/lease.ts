/**
 * flannel's lease record, byte for byte: the etcd key `<prefix>/subnets/10.5.7.0-24` names the
 * subnet, the value is Go's encoding of LeaseAttrs, e.g.
 * `{"PublicIP":"192.168.250.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"b2:30:db:24:3d:30"}}`.
 * Pure: encode/decode and key<->subnet mapping, with one-line errors for bad records.
 */
import { formatIPv4, normalizeMac, parseCidr, parseIPv4, type Cidr } from './ip.js';

export interface LeaseAttrs {
  publicIP: number;
  backendType: string;
  /** Present for vxlan leases. */
  vni?: number;
  vtepMAC?: string;
}

/** A lease as seen in etcd. `etcdLease` is "0" for a reservation (key without TTL). */
export interface Lease {
  key: string;
  subnet: Cidr;
  attrs: LeaseAttrs;
  etcdLease: string;
  modRevision: string;
}

export function subnetsPrefix(prefix: string): string {
  return `${prefix.replace(/\/+$/, '')}/subnets/`;
}

export function subnetKey(prefix: string, s: Cidr): string {
  return `${subnetsPrefix(prefix)}${formatIPv4(s.ip)}-${s.len}`;
}

/** The subnet a key names, or undefined when the key is not `<prefix>/subnets/a.b.c.d-len`. */
export function keyToSubnet(prefix: string, key: string): Cidr | undefined {
  const p = subnetsPrefix(prefix);
  if (!key.startsWith(p)) return undefined;
  const m = /^(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(key.slice(p.length));
  return m ? parseCidr(`${m[1]}/${m[2]}`, true) : undefined;
}

/** Encodes exactly as flannel's Go code does (field order, null PublicIPv6, no spaces). */
export function encodeLease(a: LeaseAttrs): string {
  const head = `{"PublicIP":${JSON.stringify(formatIPv4(a.publicIP))},"PublicIPv6":null,"BackendType":${JSON.stringify(a.backendType)}`;
  if (a.vtepMAC === undefined) return `${head}}`;
  return `${head},"BackendData":{"VNI":${a.vni ?? 1},"VtepMAC":${JSON.stringify(a.vtepMAC)}}}`;
}

export class LeaseFormatError extends Error {
  override name = 'LeaseFormatError';
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
  if (backendType === 'vxlan') {
    const data = o['BackendData'];
    const d = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
    const mac = typeof d['VtepMAC'] === 'string' ? normalizeMac(d['VtepMAC']) : undefined;
    if (mac === undefined)
      throw new LeaseFormatError(
        `vxlan lease without a valid "BackendData.VtepMAC" (${JSON.stringify(d['VtepMAC'])})`,
      );
    const vni = d['VNI'];
    attrs.vni = typeof vni === 'number' && Number.isInteger(vni) ? vni : 1;
    attrs.vtepMAC = mac;
  }
  return attrs;
}
