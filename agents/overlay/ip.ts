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
