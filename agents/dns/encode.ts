/**
 * Answer sections → wire bytes through dns2, the project's DNS codec. Runs only on a cache
 * miss; the hot path sends the cached bytes with a patched ID (wire.ts).
 */
import dns2 from 'dns2';
import { T, type Answer, type RR } from './lookup.js';
import type { Query } from './wire.js';

const { Packet } = dns2;

/** EDNS UDP size we advertise: the DNS Flag Day 2020 value, safe without fragmentation. */
export const OUR_UDP_SIZE = 1232;

function txtStrings(text: string): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  return out.length ? out : [Buffer.alloc(0)];
}

function resource(rr: RR): Record<string, unknown> {
  const base = { name: rr.name, ttl: rr.ttl, class: 1, type: rr.data.type };
  const d = rr.data;
  switch (d.type) {
    case T.A:
    case T.AAAA:
      return { ...base, address: d.address };
    case T.CNAME:
    case T.PTR:
      return { ...base, domain: d.target };
    case T.NS:
      return { ...base, ns: d.target };
    case T.TXT:
      return { ...base, data: txtStrings(d.text) };
    case T.SRV:
      return { ...base, priority: d.priority, weight: d.weight, port: d.port, target: d.target };
    case T.MX:
      return { ...base, priority: d.priority, exchange: d.exchange };
    case T.SOA:
      return { ...base, ...d, type: T.SOA };
  }
}

/** dns2's name-offset table, refusing to remember names written at or past `from`. */
class NamesBefore extends Map<string, number> {
  constructor(private readonly from: number) {
    super();
  }
  override set(name: string, offset: number): this {
    return offset < this.from ? super.set(name, offset) : this;
  }
}

/**
 * Encodes a full answer to `q` (question echoed case-exactly as `qname`). The ID is 0 and RD
 * clear: callers patch both per request. With `noPointersTo`, no name is compressed to an
 * offset at or past it (so the records there can be reordered byte-wise, spread.ts).
 */
export function encodeAnswer(
  q: Query,
  qname: string,
  a: Answer,
  ra: boolean,
  noPointersTo?: number,
): Buffer {
  const packet = new Packet();
  packet.header = {
    id: 0,
    qr: 1,
    opcode: 0,
    aa: a.authoritative ? 1 : 0,
    tc: 0,
    rd: 0,
    ra: ra ? 1 : 0,
    z: 0,
    ad: 0,
    cd: 0,
    rcode: a.rcode,
  } as unknown as typeof packet.header;
  packet.questions = [{ name: qname, type: q.qtype, class: q.qclass }] as typeof packet.questions;
  packet.answers = a.answer.map(resource) as unknown as typeof packet.answers;
  packet.authorities = a.authority.map(resource) as unknown as typeof packet.authorities;
  packet.additionals = a.additional.map(resource) as unknown as typeof packet.additionals;
  if (q.edns)
    packet.additionals.push(
      Packet.Resource.EDNS([], {
        udpPayloadSize: OUR_UDP_SIZE,
        doFlag: q.edns.do,
      }) as unknown as (typeof packet.additionals)[number],
    );
  if (noPointersTo === undefined) return packet.toBuffer();
  const writer = new Packet.Writer() as unknown as { names?: Map<string, number> };
  writer.names = new NamesBefore(noPointersTo);
  return (packet.toBuffer as (w: unknown) => Buffer).call(packet, writer);
}
