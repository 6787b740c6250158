/** Test helpers: a ZoneTree from `{ key: json }`, and raw DNS queries over UDP/TCP. */
import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import dns2 from 'dns2';
import { T, type RR } from './lookup.js';
import { entryFrom, ZoneTree } from './tree.js';

const { Packet } = dns2;

export function treeOf(
  records: Record<string, string | object>,
  prefix = '/skydns',
  leases: Record<string, number> = {},
): ZoneTree {
  const tree = new ZoneTree();
  for (const [key, value] of Object.entries(records)) {
    const { labels, entry } = entryFrom(
      key,
      typeof value === 'string' ? value : JSON.stringify(value),
      prefix,
      leases[key],
    );
    tree.set(labels, entry);
  }
  return tree;
}

/** Builds a query the way resolvers do (RD set), optionally with an EDNS0 OPT record. */
export function buildQuery(
  name: string,
  type: number,
  opts: { id?: number; edns?: number; do?: boolean } = {},
): Buffer {
  const pkt = new Packet();
  pkt.header.id = opts.id ?? 0x1234;
  pkt.header.rd = 1;
  pkt.questions = [{ name, type, class: 1 }] as typeof pkt.questions;
  if (opts.edns)
    pkt.additionals.push(
      Packet.Resource.EDNS([], {
        udpPayloadSize: opts.edns,
        doFlag: opts.do ?? false,
      }) as unknown as (typeof pkt.additionals)[number],
    );
  return pkt.toBuffer();
}

/** Sends one UDP query to 127.0.0.1:port and resolves with the raw reply (or null on timeout). */
export function udpAsk(
  port: number,
  msg: Buffer,
  timeoutMs = 1000,
  host = '127.0.0.1',
): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(null);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(msg, port, host);
  });
}

/** One query over TCP; resolves with the reply message (without length prefix). */
export function tcpAsk(port: number, msg: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port }, () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      sock.write(Buffer.concat([len, msg]));
    });
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error('connection closed before an answer')));
    sock.setTimeout(2000, () => {
      sock.destroy();
      reject(new Error('tcp query timed out'));
    });
  });
}

export type Parsed = ReturnType<typeof Packet.parse>;
export const parse = (b: Buffer): Parsed => Packet.parse(b);

/** One RR in a dig-like line for table tests: "name ttl TYPE data" (SOA: primary serial minimum). */
export function showRR(rr: RR): string {
  const d = rr.data;
  const body =
    d.type === T.A || d.type === T.AAAA
      ? d.address
      : d.type === T.CNAME || d.type === T.PTR || d.type === T.NS
        ? d.target
        : d.type === T.TXT
          ? d.text
          : d.type === T.SRV
            ? `${d.priority} ${d.weight} ${d.port} ${d.target}`
            : d.type === T.MX
              ? `${d.priority} ${d.exchange}`
              : d.type === T.SOA
                ? `${d.primary} ${d.serial} ${d.minimum}`
                : '';
  const type = Object.entries(T).find(([, v]) => v === d.type)![0];
  return `${rr.name} ${rr.ttl} ${type} ${body}`;
}
