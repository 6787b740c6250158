/**
 * The DNS server: UDP and TCP on each address, answering from the in-memory zone.
 * Hot path (cache hit): parse the question bytes, one Map lookup, copy + patch ID, send — no
 * dns2 parse or encode. A miss runs the pure lookup, encodes through dns2 and caches the bytes
 * unless the zone changed meanwhile. Malformed packets are counted and dropped; nothing a
 * client sends can throw out of a handler.
 */
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { performance } from 'node:perf_hooks';
import dns2 from 'dns2';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { AnswerCache } from './cache.js';
import { encodeAnswer } from './encode.js';
import type { Forwarder } from './forwarder.js';
import {
  lookup,
  RCODE,
  T,
  withExternalGlue,
  type Answer,
  type LookupConfig,
  type RR,
} from './lookup.js';
import { nextOrder, planSpread, spreadAnswer, type Spread } from './spread.js';
import { DnsStats, typeLabel } from './stats.js';
import type { ZoneTree } from './tree.js';
import type { UdpAnswer, UdpListener, UdpTransport } from './udp.js';
import { dgramTransport } from './udp-dgram.js';
import {
  errorReply,
  opcodeOf,
  parseQuery,
  patchAnswer,
  questionName,
  truncate,
  udpLimit,
  type Query,
} from './wire.js';

const { Packet } = dns2;

export interface ResolverOptions {
  tree: ZoneTree;
  /** Read per cache miss: zones, TTLs and the SOA serial (the store's revision). */
  config: () => LookupConfig;
  /** null with --no-rec. */
  forwarder: Forwarder | null;
  /** Whether a client address may have names outside the zones forwarded. */
  mayForward: (ip: string) => boolean;
  /**
   * False until the zone was loaded once: in-zone names then get SERVFAIL (not cached), not an
   * NXDOMAIN that clients would cache. Default: always loaded.
   */
  zoneLoaded?: () => boolean;
  /**
   * --round-robin: cached answers with several A/AAAA records rotate per answer, SRV records
   * are ordered per query by weight within a priority (spread.ts). Default off (stored order).
   */
  roundRobin?: boolean;
  stats?: DnsStats;
  cache?: AnswerCache;
  log: Logger;
}

export class Resolver {
  readonly stats: DnsStats;
  readonly cache: AnswerCache;
  private readonly warned = new Set<string>();

  constructor(private readonly o: ResolverOptions) {
    this.stats = o.stats ?? new DnsStats();
    this.cache = o.cache ?? new AnswerCache();
  }

  /**
   * Answer bytes for one request, or null to drop it (malformed, counted). Synchronous for
   * cache hits and in-zone answers; a Promise only when upstream is involved.
   */
  answer(
    req: Buffer,
    client: string,
    tcp: boolean,
    t0 = performance.now(),
  ): Buffer | null | Promise<Buffer | null> {
    const q = parseQuery(req);
    if (typeof q === 'string') {
      this.stats.malformed++;
      this.warnOnce(q, client);
      return null;
    }
    // Only standard queries (opcode 0) share answers; others get NOTIMP on the miss path.
    const hit = (req[2]! & 0x78) === 0 ? this.cache.get(q.key, q.variant) : undefined;
    if (hit) {
      this.stats.cacheHits++;
      let out: Buffer;
      if (hit.spread) {
        out = spreadAnswer(hit.msg, hit.spread, nextOrder(hit.spread), q);
        if (!tcp && out.length > udpLimit(q)) out = truncate(out, udpLimit(q));
      } else {
        out = patchAnswer(hit.msg, q);
        if (!tcp && out.length > udpLimit(q)) out = this.cut(hit, out, udpLimit(q));
      }
      this.stats.hit(hit.slot, (performance.now() - t0) / 1000);
      return out;
    }
    this.stats.cacheMisses++;
    try {
      const r = this.miss(req, q, client, tcp);
      if (r instanceof Promise)
        // .catch after .then: an upstream answer that done() cannot cut still gets SERVFAIL.
        return r
          .then((b) => this.done(b, q, tcp, t0))
          .catch((err: unknown) => this.failed(err, req, q, tcp, t0));
      return this.done(r, q, tcp, t0);
    } catch (err) {
      return this.failed(err, req, q, tcp, t0);
    }
  }

  private failed(err: unknown, req: Buffer, q: Query, tcp: boolean, t0: number): Buffer {
    this.warnOnce(`internal error answering: ${errorMessage(err)}`, 'self');
    return this.done(errorReply(req, q, RCODE.SERVFAIL, this.ra), q, tcp, t0);
  }

  private done(out: Buffer, q: Query, tcp: boolean, t0: number): Buffer {
    if (!tcp && out.length > udpLimit(q)) out = truncate(out, udpLimit(q));
    this.stats.count(typeLabel(q.qtype), out[3]! & 0x0f, (performance.now() - t0) / 1000);
    return out;
  }

  private cut(hit: { cut?: Map<number, Buffer>; msg: Buffer }, patched: Buffer, limit: number) {
    hit.cut ??= new Map();
    let c = hit.cut.get(limit);
    if (!c) {
      c = truncate(hit.msg, limit);
      hit.cut.set(limit, c);
    }
    const out = Buffer.from(c);
    patched.copy(out, 0, 0, 4);
    out[2] = out[2]! | 0x02;
    return out;
  }

  private get ra(): boolean {
    return this.o.forwarder !== null;
  }

  private warnOnce(reason: string, client: string): void {
    if (this.warned.size > 1000 || this.warned.has(reason)) return;
    this.warned.add(reason);
    this.o.log.warn({ client, reason }, 'dropped or failed DNS request (logged once per reason)');
  }

  private miss(req: Buffer, q: Query, client: string, tcp: boolean): Buffer | Promise<Buffer> {
    const opcode = opcodeOf(req);
    if (opcode !== 0) return errorReply(req, q, RCODE.NOTIMP, this.ra);
    if (q.edns && q.edns.version !== 0) return errorReply(req, q, 16, this.ra);
    if (q.qclass !== 1) return errorReply(req, q, RCODE.REFUSED, this.ra);
    const qname = questionName(req);
    const generation = this.cache.generation;
    const a = lookup(this.o.tree, qname, q.qtype, this.o.config());
    const canForward = this.o.forwarder !== null && this.o.mayForward(client);
    if (!a.forward && this.o.zoneLoaded && !this.o.zoneLoaded())
      return errorReply(req, q, RCODE.SERVFAIL, this.ra);
    if (a.forward) {
      if (!canForward) return errorReply(req, q, RCODE.REFUSED, this.ra);
      this.stats.forwarded++;
      return this.o.forwarder!.forward(req, tcp).then((ans) => {
        if (ans) return ans;
        this.stats.forwardFailures++;
        return errorReply(req, q, RCODE.SERVFAIL, this.ra);
      });
    }
    // An answer through an out-of-zone CNAME depends on who asks and on upstream: not cached.
    // A chain that cannot be completed dangles: NODATA + SOA, as SkyDNS and CoreDNS answer.
    const ext = a.external;
    if (ext) {
      if (!canForward) return patchAnswer(encodeAnswer(q, qname, ext.nodata, this.ra), q);
      this.stats.forwarded++;
      return this.external(ext).then((rrs) => {
        const complete = rrs.some((r) => r.data.type === ext.type);
        const full: Answer = complete ? { ...a, answer: [...a.answer, ...rrs] } : ext.nodata;
        return patchAnswer(encodeAnswer(q, qname, full, this.ra), q);
      });
    }
    // SRV/MX targets whose chain leaves the zones: glue from upstream for clients that may
    // forward, none for the others; either way the answer depends on who asks: not cached.
    const pending = a.externalGlue;
    if (pending) {
      if (!canForward) return this.fresh(q, qname, withExternalGlue(a, []));
      this.stats.forwarded++;
      return Promise.all(pending.map((g) => this.external(g))).then((found) =>
        this.fresh(q, qname, withExternalGlue(a, found)),
      );
    }
    let msg = encodeAnswer(q, qname, a, this.ra);
    let spread: Spread | null = null;
    if (this.o.roundRobin)
      ({ msg, plan: spread } = planSpread(msg, (lo) => encodeAnswer(q, qname, a, this.ra, lo)));
    const slot = this.stats.slot(typeLabel(q.qtype), a.rcode);
    this.cache.set(
      q.key,
      q.variant,
      { msg, rcode: a.rcode, slot, ...(spread ? { spread } : {}) },
      generation,
    );
    return spread ? spreadAnswer(msg, spread, nextOrder(spread), q) : patchAnswer(msg, q);
  }

  /** An answer encoded for this query alone (not cached), spread as a cached one would be. */
  private fresh(q: Query, qname: string, a: Answer): Buffer {
    const msg = encodeAnswer(q, qname, a, this.ra);
    if (!this.o.roundRobin) return patchAnswer(msg, q);
    const { msg: m, plan } = planSpread(msg, (lo) => encodeAnswer(q, qname, a, this.ra, lo));
    return plan ? spreadAnswer(m, plan, nextOrder(plan), q) : patchAnswer(m, q);
  }

  /** Records for a CNAME target outside the zones, from upstream (A, AAAA, CNAME, TXT, MX); [] on failure. */
  private async external(target: { name: string; type: number }): Promise<RR[]> {
    const pkt = new Packet();
    pkt.header.id = 0;
    pkt.header.rd = 1;
    pkt.questions = [{ name: target.name, type: target.type, class: 1 }] as typeof pkt.questions;
    const ans = await this.o.forwarder!.forward(pkt.toBuffer());
    if (!ans) {
      this.stats.forwardFailures++;
      return [];
    }
    const out: RR[] = [];
    try {
      for (const r of Packet.parse(ans).answers as unknown as Record<string, unknown>[]) {
        const name = String(r['name']);
        const ttl = Number(r['ttl']);
        if ((r['type'] === T.A || r['type'] === T.AAAA) && typeof r['address'] === 'string')
          out.push({ name, ttl, data: { type: r['type'], address: r['address'] } });
        else if (r['type'] === T.CNAME && typeof r['domain'] === 'string')
          out.push({ name, ttl, data: { type: T.CNAME, target: r['domain'] } });
        else if (r['type'] === T.TXT && Array.isArray(r['data']))
          out.push({ name, ttl, data: { type: T.TXT, text: (r['data'] as string[]).join('') } });
        else if (r['type'] === T.MX && typeof r['exchange'] === 'string')
          out.push({
            name,
            ttl,
            data: { type: T.MX, priority: Number(r['priority']), exchange: r['exchange'] },
          });
      }
    } catch (err) {
      this.warnOnce(
        `upstream answer for ${target.name} unreadable: ${errorMessage(err)}`,
        'upstream',
      );
    }
    return out;
  }
}

export interface Listener {
  host: string;
  /** Port bound for both UDP and TCP. */
  port: number;
}

const MAX_TCP_CONNECTIONS = 256;
const TCP_IDLE_MS = 10_000;

/**
 * UDP + TCP listeners on each address, all answering through one Resolver. UDP goes through
 * `udp` (udp.ts: Node's dgram by default, or the batched addon).
 */
export class DnsServer {
  private udp: UdpListener[] = [];
  /** The bound UDP sockets, one per listener. */
  get udpListeners(): readonly UdpListener[] {
    return this.udp;
  }
  private tcp: Server[] = [];
  private conns = new Set<TcpSocket>();
  readonly listeners: Listener[] = [];
  private readonly udpAnswer: UdpAnswer;

  constructor(
    private readonly resolver: Resolver,
    private readonly log: Logger,
    readonly udpTransport: UdpTransport = dgramTransport,
  ) {
    this.udpAnswer = (req, client, t0) => {
      try {
        return resolver.answer(req, client, false, t0);
      } catch {
        resolver.stats.malformed++;
        return null;
      }
    };
  }

  /** Binds every address; port 0 picks one port free for both UDP and TCP. */
  async listen(addrs: { host: string; port: number }[]): Promise<Listener[]> {
    for (const a of addrs) {
      let lastErr: unknown;
      for (let attempt = 0; attempt < 10; attempt++) {
        const udp = await this.udpTransport.bind(a.host, a.port, this.udpAnswer, this.log);
        const port = udp.port;
        try {
          const tcp = await this.bindTcp(a.host, port);
          this.udp.push(udp);
          this.tcp.push(tcp);
          this.listeners.push({ host: a.host, port });
          lastErr = undefined;
          break;
        } catch (err) {
          lastErr = err;
          await udp.close();
          if (a.port !== 0) break;
        }
      }
      if (lastErr) throw lastErr;
    }
    return this.listeners;
  }

  private bindTcp(host: string, port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const srv = createServer((sock) => this.onTcp(sock));
      srv.maxConnections = MAX_TCP_CONNECTIONS;
      srv.once('error', reject);
      srv.listen(port, host, () => {
        srv.removeListener('error', reject);
        srv.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'tcp server error'));
        resolve(srv);
      });
    });
  }

  private onTcp(sock: TcpSocket): void {
    this.conns.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('close', () => this.conns.delete(sock));
    let buf = Buffer.alloc(0);
    const client = sock.remoteAddress ?? '';
    const send = (b: Buffer | null) => {
      if (!b || sock.destroyed) return;
      const len = Buffer.alloc(2);
      len.writeUInt16BE(b.length);
      sock.write(Buffer.concat([len, b]));
    };
    sock.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        let out: Buffer | null | Promise<Buffer | null>;
        try {
          out = this.resolver.answer(Buffer.from(msg), client, true);
        } catch {
          this.resolver.stats.malformed++;
          out = null;
        }
        if (out === null) {
          // A malformed frame leaves the stream in an unknown state: close it.
          sock.destroy();
          return;
        }
        if (out instanceof Promise) out.then(send, () => undefined);
        else send(out);
      }
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await Promise.all([
      ...this.udp.map((s) => s.close()),
      ...this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))),
    ]);
    this.udp = [];
    this.tcp = [];
  }
}
