/**
 * Test oracle, written from RFC 1035 4.1 and docs/dns.md rather than from wire.ts: whether a
 * request is a query dnsd must read (true) or malformed (false, counted and dropped). Used by the
 * server fuzz test, so its expected count does not move with the parser under test.
 */
export function wellFormedQuery(b: Uint8Array): boolean {
  const u16 = (o: number) => (b[o]! << 8) | b[o + 1]!;
  if (b.length < 12) return false;
  if (b[2]! & 0x80) return false; // a response, not a query
  if (u16(4) !== 1) return false; // exactly one question
  // QNAME: uncompressed labels of 1..63 octets, at most 255 octets in all, none holding the
  // characters a SkyDNS key cannot carry ('.', '/', '\').
  let o = 12;
  let total = 1;
  for (;;) {
    if (o >= b.length) return false;
    const len = b[o]!;
    if (len === 0) break;
    if (len > 63) return false;
    total += len + 1;
    if (total > 255) return false;
    if (o + 1 + len > b.length) return false;
    for (let i = o + 1; i <= o + len; i++) if ([0x2e, 0x2f, 0x5c].includes(b[i]!)) return false;
    o += len + 1;
  }
  o += 1 + 4; // root label, QTYPE, QCLASS
  if (o > b.length) return false;
  // Every record that the counts announce must be there whole; at most one OPT (RFC 6891 6.1.1).
  const records = u16(6) + u16(8) + u16(10);
  const answerAndAuthority = u16(6) + u16(8);
  let opts = 0;
  for (let r = 0; r < records; r++) {
    const start = o;
    for (;;) {
      if (o >= b.length) return false;
      const len = b[o]!;
      if ((len & 0xc0) === 0xc0) {
        if (o + 2 > b.length) return false;
        o += 2;
        break;
      }
      if (len > 63) return false;
      o += 1 + len;
      if (len === 0) break;
    }
    if (o + 10 > b.length) return false;
    const type = u16(o);
    const rdlen = u16(o + 8);
    o += 10 + rdlen;
    if (o > b.length) return false;
    if (r >= answerAndAuthority && type === 41 && b[start] === 0 && ++opts > 1) return false;
  }
  return true;
}
