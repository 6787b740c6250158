/**
 * Forwarding of names outside the zones to `--nameservers`: the client's query bytes go
 * upstream under a fresh random ID over UDP (TCP when the upstream answer is truncated and the
 * client came over TCP); each attempt waits `timeoutMs`, one retry goes to the next server.
 * `null` means every attempt failed: the server answers SERVFAIL, never silence.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { connect, isIP, BlockList } from 'node:net';
import { readFileSync } from 'node:fs';
import { sameQuestion } from './wire.js';

export interface Upstream {
  host: string;
  port: number;
}

/** `nameserver` lines of a resolv.conf, port 53. */
export function resolvConfServers(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && isIP(m[1]!.replace(/%.*$/, ''))) out.push({ host: m[1]!, port: 53 });
  }
  return out;
}

export function readResolvConf(path = '/etc/resolv.conf'): Upstream[] {
  try {
    return resolvConfServers(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}

/** "10.0.0.1", "10.0.0.1:5353", "[fd00::1]:53", "fd00::1" → Upstream; throws naming the value. */
export function parseUpstream(text: string): Upstream {
  if (isIP(text)) return { host: text, port: 53 };
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  if (!m || !host || !isIP(host) || Number(m[3]) < 1 || Number(m[3]) > 65535)
    throw new Error(`--nameservers: "${text}" is not an IP address or IP:port`);
  return { host, port: Number(m[3]) };
}

/** Which clients may use forwarding: the configured CIDRs. */
export function networkList(cidrs: string[], flag = '--forward-networks'): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const m = /^([^/]+)\/(\d+)$/.exec(c);
    const v = m ? isIP(m[1]!) : 0;
    if (!m || v === 0 || Number(m[2]) > (v === 4 ? 32 : 128))
      throw new Error(`${flag}: "${c}" is not a CIDR like 10.5.0.0/16`);
    list.addSubnet(m[1]!, Number(m[2]), v === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

export function allowed(list: BlockList, ip: string): boolean {
  const v = isIP(ip);
  if (v === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return list.check(mapped[1]!, 'ipv4');
  return list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
}

interface Pending {
  query: Buffer;
  resolve: (b: Buffer | null) => void;
  timer: NodeJS.Timeout;
  upstream: Upstream;
}

export class Forwarder {
  private sockets = new Map<4 | 6, Socket>();
  private pending = new Map<number, Pending>();

  constructor(
    readonly upstreams: Upstream[],
    private readonly timeoutMs = 2000,
  ) {}

  private socket(family: 4 | 6): Socket {
    let s = this.sockets.get(family);
    if (s) return s;
    s = createSocket(family === 4 ? 'udp4' : 'udp6');
    s.on('message', (msg, rinfo) => {
      if (msg.length < 12) return;
      const p = this.pending.get(msg.readUInt16BE(0));
      if (!p || p.upstream.port !== rinfo.port || !sameHost(p.upstream.host, rinfo.address)) return;
      if (!sameQuestion(p.query, msg)) return;
      this.pending.delete(msg.readUInt16BE(0));
      clearTimeout(p.timer);
      p.resolve(msg);
    });
    s.on('error', () => undefined);
    s.unref();
    this.sockets.set(family, s);
    return s;
  }

  private freeId(): number {
    for (;;) {
      const id = randomInt(0x10000);
      if (!this.pending.has(id)) return id;
    }
  }

  private udpOnce(query: Buffer, up: Upstream): Promise<Buffer | null> {
    return new Promise((resolve) => {
      const id = this.freeId();
      const out = Buffer.from(query);
      out.writeUInt16BE(id, 0);
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, this.timeoutMs);
      this.pending.set(id, { query: out, resolve, timer, upstream: up });
      this.socket(isIP(up.host) === 6 ? 6 : 4).send(out, up.port, up.host, (err) => {
        if (err) {
          this.pending.delete(id);
          clearTimeout(timer);
          resolve(null);
        }
      });
    });
  }

  private tcpOnce(query: Buffer, up: Upstream): Promise<Buffer | null> {
    return new Promise((resolve) => {
      const sock = connect({ host: up.host, port: up.port });
      const chunks: Buffer[] = [];
      let done = false;
      const finish = (b: Buffer | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        resolve(b);
      };
      const timer = setTimeout(() => finish(null), this.timeoutMs);
      sock.on('error', () => finish(null));
      sock.on('close', () => finish(null));
      sock.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        sock.write(Buffer.concat([len, query]));
      });
      sock.on('data', (d) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0))
          finish(all.subarray(2, 2 + all.readUInt16BE(0)));
      });
    });
  }

  /**
   * Answer to `query` from upstream with the client's own ID restored, or null when the first
   * attempt and its one retry (next server) both failed. `tcp`: the client came over TCP, so a
   * truncated UDP answer is fetched again over TCP.
   */
  async forward(query: Buffer, tcp = false): Promise<Buffer | null> {
    if (this.upstreams.length === 0) return null;
    const start = randomInt(this.upstreams.length);
    for (let attempt = 0; attempt < 2; attempt++) {
      const up = this.upstreams[(start + attempt) % this.upstreams.length]!;
      let answer = await this.udpOnce(query, up);
      if (answer && tcp && (answer[2]! & 0x02) !== 0) answer = await this.tcpOnce(query, up);
      if (answer) {
        const out = Buffer.from(answer);
        out.writeUInt16BE(query.readUInt16BE(0), 0);
        return out;
      }
    }
    return null;
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(null);
    }
    this.pending.clear();
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }
}

function sameHost(a: string, b: string): boolean {
  return a === b || a.replace(/^::ffff:/, '') === b.replace(/^::ffff:/, '');
}
