/**
 * IPv4 and CIDR arithmetic on plain numbers (uint32), pure. Subnets are `{ ip, len }` with the
 * host bits zero; strings are the usual dotted quad and `a.b.c.d/len`.
 */

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  ip: number;
  len: number;
}

const QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses a dotted quad; undefined when it is not one. */
export function parseIPv4(text: string): number | undefined {
  const m = QUAD.exec(text);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = Number(m[i]);
    if (part > 255 || (m[i]!.length > 1 && m[i]!.startsWith('0'))) return undefined;
    n = n * 256 + part;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function ipToBytes(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function bytesToIp(b: Buffer): number {
  return b.readUInt32BE(0);
}

export function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Number of addresses in a prefix of this length. */
export function blockSize(len: number): number {
  return 2 ** (32 - len);
}

/**
 * Parses `a.b.c.d/len`. With `strict`, host bits must be zero (a network, not an address in
 * it); otherwise they are cleared. Undefined when the text is not a CIDR.
 */
export function parseCidr(text: string, strict = false): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIPv4(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (ip === undefined || !/^\d{1,2}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 32) return undefined;
  const net = (ip & mask(len)) >>> 0;
  if (strict && net !== ip) return undefined;
  return { ip: net, len };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.ip)}/${c.len}`;
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return inner.len >= outer.len && (inner.ip & mask(outer.len)) >>> 0 === outer.ip;
}

export function ipInCidr(c: Cidr, ip: number): boolean {
  return (ip & mask(c.len)) >>> 0 === c.ip;
}

export function cidrEqual(a: Cidr, b: Cidr): boolean {
  return a.ip === b.ip && a.len === b.len;
}

/** Parses `aa:bb:cc:dd:ee:ff` (any case) into canonical lower case; undefined when malformed. */
export function normalizeMac(text: string): string | undefined {
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(text) ? text.toLowerCase() : undefined;
}

export function macToBytes(mac: string): Buffer {
  return Buffer.from(mac.replace(/:/g, ''), 'hex');
}

export function bytesToMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * What differs between the two address families, so each overlay step is written once and
 * given the family: address width, the kernel's AF_*, text form. Addresses are bigint here
 * (IPv4's uint32 fits); `Prefix` is a network of either family.
 */
export interface Family {
  readonly v: 4 | 6;
  readonly bits: 32 | 128;
  /** AF_INET or AF_INET6. */
  readonly af: 2 | 10;
  parse(text: string): bigint | undefined;
  /** Canonical text, as Go's net.IP.String() prints it. */
  format(ip: bigint): string;
}

export interface Prefix {
  ip: bigint;
  len: number;
}

/** Parses an IPv6 address (with `::` and an optional dotted IPv4 tail); undefined when it is not one. */
export function parseIPv6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  let groups: string[];
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const part = (s: string) => (s === '' ? [] : s.split(':'));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  const last = (halves.length === 2 ? tail : head).at(-1);
  const words: string[] = [];
  for (const g of [...head, ...tail]) words.push(g);
  let v4tail: number | undefined;
  if (last?.includes('.')) {
    v4tail = parseIPv4(last);
    if (v4tail === undefined) return undefined;
    (halves.length === 2 ? tail : head).pop();
  }
  const want = v4tail === undefined ? 8 : 6;
  if (halves.length === 2) {
    const fill = want - head.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...Array<string>(fill).fill('0'), ...tail];
  } else groups = head;
  if (groups.length !== want || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  if (v4tail !== undefined) n = (n << 32n) | BigInt(v4tail);
  return n;
}

/** RFC 5952 text, as Go prints it: lower case, the longest run of two or more zero groups as `::`. */
export function formatIPv6(ip: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((ip >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export const IPv4: Family = {
  v: 4,
  bits: 32,
  af: 2,
  parse: (t) => {
    const n = parseIPv4(t);
    return n === undefined ? undefined : BigInt(n);
  },
  format: (ip) => formatIPv4(Number(ip)),
};

export const IPv6: Family = { v: 6, bits: 128, af: 10, parse: parseIPv6, format: formatIPv6 };

/** The family of an address in text form. */
export function familyOf(text: string): Family {
  return text.includes(':') ? IPv6 : IPv4;
}

export function prefixMask(f: Family, len: number): bigint {
  const all = (1n << BigInt(f.bits)) - 1n;
  return len === 0 ? 0n : (all >> BigInt(f.bits - len)) << BigInt(f.bits - len);
}

/** Parses `addr/len` of family `f`; with `strict`, host bits must be zero, else they are cleared. */
export function parsePrefix(f: Family, text: string, strict = false): Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = f.parse(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (ip === undefined || !/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > f.bits) return undefined;
  const net = ip & prefixMask(f, len);
  if (strict && net !== ip) return undefined;
  return { ip: net, len };
}

export function formatPrefix(f: Family, p: Prefix): string {
  return `${f.format(p.ip)}/${p.len}`;
}

export function prefixHas(f: Family, p: Prefix, ip: bigint): boolean {
  return (ip & prefixMask(f, p.len)) === p.ip;
}

/** An address of either family from its kernel bytes (4 or 16). */
export function bytesToAddr(b: Buffer): string {
  if (b.length === 4) return formatIPv4(b.readUInt32BE(0));
  return formatIPv6(BigInt(`0x${b.toString('hex')}`));
}

/** Kernel bytes of an address in text form, either family. */
export function addrToBytes(text: string): Buffer {
  if (!text.includes(':')) {
    const n = parseIPv4(text);
    if (n === undefined) throw new Error(`not an IP address: ${text}`);
    return ipToBytes(n);
  }
  const f = IPv6;
  const ip = f.parse(text);
  if (ip === undefined) throw new Error(`not an IP address: ${text}`);
  return Buffer.from(ip.toString(16).padStart(f.bits / 4, '0'), 'hex');
}
