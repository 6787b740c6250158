// Byte-level table tests for the hot-path wire reader (wire.ts), written for the survivors of
// `npm run mutate -- dns/wire`. Messages are built here by hand to RFC 1035 / 6891 (header,
// labels, RRs, OPT), not with dns2 or wire.ts, and answers are read back byte by byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  errorReply,
  opcodeOf,
  parseQuery,
  patchHeader,
  pointsInto,
  questionName,
  recordSpans,
  sameQuestion,
  truncate,
  udpLimit,
  type Query,
} from './wire.js';

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [...u16(Math.floor(n / 0x10000)), ...u16(n & 0xffff)];
/** Labels of a dotted name ("" = the root), uncompressed. */
const name = (n: string) =>
  n === '' ? [0] : [...n.split('.').flatMap((l) => [l.length, ...Buffer.from(l, 'latin1')]), 0];
interface Msg {
  id?: number;
  b2?: number;
  b3?: number;
  qd?: number[][];
  an?: number[][];
  ns?: number[][];
  ar?: number[][];
}
const msg = (m: Msg) =>
  Buffer.from([
    ...u16(m.id ?? 0x4242),
    m.b2 ?? 0x01,
    m.b3 ?? 0x00,
    ...u16((m.qd ?? []).length),
    ...u16((m.an ?? []).length),
    ...u16((m.ns ?? []).length),
    ...u16((m.ar ?? []).length),
    ...(m.qd ?? []).flat(),
    ...(m.an ?? []).flat(),
    ...(m.ns ?? []).flat(),
    ...(m.ar ?? []).flat(),
  ]);
const question = (n: string, type = 1, cls = 1) => [...name(n), ...u16(type), ...u16(cls)];
const rr = (owner: number[], type: number, rdata: number[], ttl = 60) => [
  ...owner,
  ...u16(type),
  ...u16(1),
  ...u32(ttl),
  ...u16(rdata.length),
  ...rdata,
];
/** OPT: UDP size, extended rcode, version, DO bit. */
const opt = (size: number, o: { version?: number; do?: boolean; ext?: number } = {}) => [
  0,
  ...u16(41),
  ...u16(size),
  o.ext ?? 0,
  o.version ?? 0,
  o.do ? 0x80 : 0,
  0,
  ...u16(0),
];
const parsed = (b: Buffer) => {
  const q = parseQuery(b);
  assert.ok(typeof q !== 'string', `parse failed: ${String(q)}`);
  return q;
};

test('parseQuery: header bits, EDNS fields and variants, the smallest valid query', () => {
  const q = parsed(msg({ id: 0xbeef, b2: 0x00, b3: 0x10, qd: [question('a.b', 28)] }));
  assert.deepEqual(
    {
      id: q.id,
      rd: q.rd,
      cd: q.cd,
      qtype: q.qtype,
      qclass: q.qclass,
      edns: q.edns,
      variant: q.variant,
    },
    { id: 0xbeef, rd: false, cd: true, qtype: 28, qclass: 1, edns: null, variant: 0 },
  );
  assert.equal(q.qEnd, 12 + 5 + 4);
  assert.equal(q.key, Buffer.from(question('a.b', 28)).toString('latin1'));
  const rd = parsed(msg({ b2: 0x01, b3: 0x00, qd: [question('a.b')] }));
  assert.deepEqual([rd.rd, rd.cd], [true, false]);
  // The root name: 17 octets, the smallest message that can be a query.
  const root = msg({ qd: [question('', 2, 3)] });
  assert.equal(root.length, 17);
  assert.deepEqual([parsed(root).qtype, parsed(root).qclass, parsed(root).qEnd], [2, 3, 17]);
  assert.equal(questionName(root), '.');
  assert.equal(parseQuery(root.subarray(0, 16)), 'shorter than header and question');

  const table: [number[], Query['edns'], number][] = [
    [opt(4096), { size: 4096, do: false, version: 0 }, 1],
    [opt(1232, { do: true }), { size: 1232, do: true, version: 0 }, 2],
    [opt(100), { size: 512, do: false, version: 0 }, 1], // below 512 counts as 512
    [opt(512), { size: 512, do: false, version: 0 }, 1],
    [opt(65_535, { version: 1 }), { size: 65_535, do: false, version: 1 }, 1],
  ];
  for (const [o, edns, variant] of table) {
    const e = parsed(msg({ qd: [question('a.b')], ar: [o] }));
    assert.deepEqual([e.edns, e.variant], [edns, variant], JSON.stringify(o));
  }
  // OPT after another additional record (a TSIG-like RR), and records in answer/authority.
  const other = rr(name('k'), 250, [1, 2, 3]);
  const mixed = parsed(
    msg({
      qd: [question('a.b')],
      an: [rr(name('a.b'), 1, [1, 2, 3, 4])],
      ns: [other],
      ar: [other, opt(2048)],
    }),
  );
  assert.deepEqual(mixed.edns, { size: 2048, do: false, version: 0 });
  assert.equal(parsed(msg({ qd: [question('a.b')], ar: [other] })).edns, null);
});

test('parseQuery: each malformation has its reason', () => {
  const long = (n: number) => Array.from({ length: n }, () => 'a'.repeat(63)).join('.');
  // 4 labels of 63 = 256 octets with the root: one too many; 3 labels + one of 61 = 255.
  const max = `${long(3)}.${'b'.repeat(61)}`;
  assert.equal(name(max).length, 255);
  assert.equal(parsed(msg({ qd: [question(max)] })).qEnd, 12 + 255 + 4);
  const cut = (b: Buffer, n: number) => b.subarray(0, b.length - n);
  const q = question('a.b');
  const table: [Buffer, string][] = [
    [msg({ b2: 0x81, qd: [q] }), 'not a query (QR set)'],
    [msg({ qd: [q, q] }), 'question count is not 1'],
    [
      msg({ qd: [question(`${long(3)}.${'b'.repeat(62)}`)] }),
      'question name longer than 255 octets',
    ],
    [msg({ qd: [[0x40, 0x61, 0, 0, 1, 0, 1]] }), 'compressed or invalid label in question'],
    [msg({ qd: [[0x80, 0x61, 0, 0, 1, 0, 1]] }), 'compressed or invalid label in question'],
    [msg({ qd: [[0xc0, 0x0c, 0, 1, 0, 1]] }), 'compressed or invalid label in question'],
    [msg({ qd: [[3, 0x61, 0x2e, 0x62, 0, 0, 1, 0, 1]] }), 'question label holds "." "/" or "\\"'],
    [msg({ qd: [[3, 0x61, 0x2f, 0x62, 0, 0, 1, 0, 1]] }), 'question label holds "." "/" or "\\"'],
    [msg({ qd: [[3, 0x61, 0x5c, 0x62, 0, 0, 1, 0, 1]] }), 'question label holds "." "/" or "\\"'],
    [
      msg({ qd: [[3, 0x61, 0x62, 0x63, 3, 0x61]] }).subarray(0, 12 + 6),
      'question name runs past the end',
    ],
    [cut(msg({ qd: [q] }), 1), 'question type/class runs past the end'],
    [
      cut(msg({ qd: [q], an: [rr(name('a'), 1, [1, 2, 3, 4])] }), 1),
      'record section runs past the end',
    ],
    [
      cut(msg({ qd: [q], ns: [rr(name('a'), 1, [1, 2, 3, 4])] }), 1),
      'record section runs past the end',
    ],
    [cut(msg({ qd: [q], ar: [opt(1232)] }), 1), 'additional section runs past the end'],
    [msg({ qd: [q], ar: [opt(1232), opt(4096)] }), 'more than one OPT record'],
    // An RR whose name is a pointer cut in half, and one whose fixed fields are cut.
    [
      Buffer.concat([msg({ qd: [q] }), Buffer.from([0xc0])])
        .fill(0, 6, 8)
        .fill(1, 11, 12),
      'additional section runs past the end',
    ],
    [
      Buffer.concat([msg({ qd: [q] }), Buffer.from([0, 0, 41, 4])]).fill(1, 11, 12),
      'additional section runs past the end',
    ],
  ];
  for (const [b, reason] of table) assert.equal(parseQuery(b), reason, b.toString('hex'));
  // A name at exactly the end: the fixed part of the question is missing.
  assert.equal(
    parseQuery(msg({ qd: [[1, 0x61, 0, 0, 1, 0]] })),
    'question type/class runs past the end',
  );
});

test('sameQuestion folds only A-Z, and needs one plain question in both', () => {
  const a = msg({ qd: [question('Az.b')] });
  const table: [Buffer, boolean][] = [
    [msg({ id: 1, qd: [question('aZ.B')] }), true],
    [msg({ qd: [question('Az.b', 1, 3)] }), false], // another class
    [msg({ qd: [question('Az.b', 28)] }), false],
    [msg({ qd: [question('A{.b')] }), false], // '{' is not 'Z' lower-cased
    [msg({ qd: [question('A@.b')] }), false],
    [msg({ qd: [question('Az.b'), question('x')] }), false],
    [a.subarray(0, 11), false],
  ];
  for (const [b, want] of table) assert.equal(sameQuestion(a, b), want, b.toString('hex'));
  assert.equal(
    sameQuestion(msg({ qd: [question('A[.b')] }), msg({ qd: [question('a{.b')] })),
    false,
  );
  assert.equal(sameQuestion(msg({ qd: [question('@.b')] }), msg({ qd: [question('`.b')] })), false);
  assert.equal(
    sameQuestion(msg({ qd: [[0xc0, 0x0c, 0, 1, 0, 1]] }), msg({ qd: [[0xc0, 0x0c, 0, 1, 0, 1]] })),
    false,
  );
  assert.equal(
    sameQuestion(
      msg({ qd: [question('x'), question('x')] }),
      msg({ qd: [question('x'), question('x')] }),
    ),
    false,
  );
  assert.equal(sameQuestion(msg({ qd: [question('a.b')] }).subarray(0, 11), a), false);
});

test('opcode, UDP limit and the header patch of a cache hit', () => {
  for (const op of [0, 1, 2, 4, 5, 15])
    assert.equal(opcodeOf(msg({ b2: (op << 3) | 0x05, qd: [question('a')] })), op);
  const q = parsed(msg({ qd: [question('a')] }));
  const table: [Query['edns'], number][] = [
    [null, 512],
    [{ size: 512, do: false, version: 0 }, 512],
    [{ size: 1232, do: false, version: 0 }, 1232],
    [{ size: 4096, do: false, version: 0 }, 4096],
    [{ size: 4097, do: false, version: 0 }, 4096],
    [{ size: 65_535, do: true, version: 0 }, 4096],
  ];
  for (const [edns, limit] of table) assert.equal(udpLimit({ ...q, edns }), limit);
  // Every other header bit of the cached answer is kept: QR, opcode, AA, TC; RA, Z, AD, rcode.
  const cached = msg({
    id: 1,
    b2: 0x80 | (2 << 3) | 0x04 | 0x02 | 0x01,
    b3: 0x80 | 0x40 | 0x20 | 0x03,
    qd: [question('a')],
  });
  const out = Buffer.from(cached);
  patchHeader(out, cached, { ...q, id: 0xabcd, rd: false, cd: true });
  assert.deepEqual([...out.subarray(0, 4)], [0xab, 0xcd, 0x96, 0xf3]);
  patchHeader(out, cached, { ...q, id: 0x0102, rd: true, cd: false });
  assert.deepEqual([...out.subarray(0, 4)], [0x01, 0x02, 0x97, 0xe3]);
  assert.deepEqual(out.subarray(4), cached.subarray(4));
});

test('errorReply: header, question and OPT, byte for byte', () => {
  // Request: opcode 2, AA, TC and RD set (a client should not, but they are not echoed), CD set,
  // one answer record and an OPT with DO.
  const req = msg({
    id: 0x0102,
    b2: (2 << 3) | 0x04 | 0x02 | 0x01,
    b3: 0x10 | 0x20,
    qd: [question('x.y')],
    an: [rr(name('x.y'), 1, [1, 2, 3, 4])],
    ar: [opt(4096, { do: true })],
  });
  const q = parsed(req);
  const qbytes = question('x.y');
  const badvers = errorReply(req, q, 16, true);
  assert.deepEqual(
    [...badvers],
    [
      0x01,
      0x02,
      0x80 | (2 << 3) | 0x01,
      0x80 | 0x10 | 0,
      ...u16(1),
      ...u16(0),
      ...u16(0),
      ...u16(1),
      ...qbytes,
      0,
      ...u16(41),
      ...u16(1232),
      1,
      0,
      0x80,
      0,
      ...u16(0),
    ],
  );
  const refused = errorReply(req, q, 5, false);
  assert.deepEqual([...refused.subarray(2, 4)], [(2 << 3) | 0x81, 0x10 | 5]);
  assert.deepEqual(
    [...refused.subarray(refused.length - 11)],
    [0, ...u16(41), ...u16(1232), 0, 0, 0x80, 0, ...u16(0)],
  );
  const plainReq = msg({ id: 7, b2: 0x01, qd: [question('x.y')] });
  const plain = errorReply(plainReq, parsed(plainReq), 2, true);
  assert.deepEqual(
    [...plain],
    [0, 7, 0x81, 0x82, ...u16(1), ...u16(0), ...u16(0), ...u16(0), ...qbytes],
  );
  const noDo = msg({ qd: [question('x.y')], ar: [opt(1232)] });
  assert.deepEqual([...errorReply(noDo, parsed(noDo), 16, false).subarray(-6, -2)], [1, 0, 0, 0]);
});

test('truncate: whole answers that fit, authority and non-OPT additionals dropped, TC set', () => {
  const q = question('a.b');
  const a = (i: number) => rr([0xc0, 12], 1, [10, 0, 0, i]); // 16 octets each
  const ns = rr([0xc0, 12], 2, name('ns.a.b'));
  const glue = rr(name('ns.a.b'), 1, [10, 9, 9, 9]);
  const full = msg({
    b2: 0x85,
    b3: 0x80,
    qd: [q],
    an: [a(1), a(2), a(3)],
    ns: [ns],
    ar: [glue, opt(1232)],
  });
  const head = 12 + q.length;
  const table: [number, number, boolean][] = [
    // limit → answers kept
    [full.length, 3, false],
    [head + 3 * 16 + 11, 3, true],
    [head + 3 * 16 + 10, 2, true],
    [head + 2 * 16 + 11, 2, true],
    [head + 11, 0, true],
  ];
  for (const [limit, kept, tc] of table) {
    const out = truncate(full, limit);
    if (!tc) {
      assert.equal(out, full, 'a message that fits is returned as it is');
      continue;
    }
    assert.ok(out.length <= limit, `${out.length} <= ${limit}`);
    assert.equal(out[2], 0x85 | 0x02, 'TC set, the rest kept');
    assert.deepEqual(
      [out.readUInt16BE(6), out.readUInt16BE(8), out.readUInt16BE(10)],
      [kept, 0, 1],
    );
    assert.deepEqual(
      [...out.subarray(head, head + kept * 16)],
      [a(1), a(2), a(3)].slice(0, kept).flat(),
    );
    assert.deepEqual([...out.subarray(out.length - 11)], opt(1232), 'the OPT stays, last');
  }
  // Without an OPT: nothing rides along, and a non-OPT last additional is dropped.
  const bare = msg({ qd: [q], an: [a(1), a(2)], ar: [glue] });
  const cut = truncate(bare, head + 16);
  assert.deepEqual([cut.readUInt16BE(6), cut.readUInt16BE(10), cut.length], [1, 0, head + 16]);
  assert.throws(
    () => truncate(Buffer.concat([bare, Buffer.alloc(600)]).fill(9, 6, 8), 512),
    /not a well-formed message/,
  );
});

test('recordSpans: each record with its range, type and RDATA offset; null when cut', () => {
  const q = question('a.b');
  const a1 = rr([0xc0, 12], 1, [10, 0, 0, 1]);
  const srv = rr(name('_s._tcp.a.b'), 33, [0, 10, 0, 5, 0, 80, ...name('t.a.b')]);
  const m = msg({ qd: [q], an: [a1, srv], ar: [opt(1232)] });
  const s0 = 12 + q.length;
  const s1 = s0 + a1.length;
  const s2 = s1 + srv.length;
  assert.deepEqual(recordSpans(m), [
    { start: s0, end: s1, type: 1, rdata: s0 + 2 + 10 },
    { start: s1, end: s2, type: 33, rdata: s1 + name('_s._tcp.a.b').length + 10 },
    { start: s2, end: s2 + 11, type: 41, rdata: s2 + 1 + 10 },
  ]);
  assert.deepEqual(recordSpans(msg({ qd: [q] })), []);
  assert.equal(recordSpans(m.subarray(0, 11)), null);
  assert.equal(recordSpans(m.subarray(0, m.length - 1)), null);
  assert.equal(recordSpans(m.subarray(0, 12 + q.length - 1)), null, 'question cut');
  assert.equal(recordSpans(m.subarray(0, s0 + 1)), null);
});

test('record names in a query: label types, 255-octet bound, and what counts as the OPT', () => {
  const q = question('a.b');
  const rrWith = (owner: number[], type = 1) => rr(owner, type, [1, 2, 3, 4]);
  const label = (n: number, c = 0x61) => [n, ...Array<number>(n).fill(c)];
  const n255 = [...label(63), ...label(63), ...label(63), ...label(61), 0];
  const n257 = [...label(63), ...label(63), ...label(63), ...label(63), 0];
  assert.equal(n255.length, 255);
  assert.equal(parsed(msg({ qd: [q], ar: [rrWith(n255)] })).edns, null);
  assert.equal(parsed(msg({ qd: [q], an: [rrWith(n255)] })).qtype, 1);
  const table: [Msg, string][] = [
    [{ qd: [q], ar: [rrWith(n257)] }, 'additional section runs past the end'],
    [{ qd: [q], an: [rrWith(n257)] }, 'record section runs past the end'],
    // 0x40 and 0x80 label types are reserved: not a label of 64 or 128 octets.
    [
      { qd: [q], ar: [rrWith([0x40, ...Array<number>(64).fill(0x61), 0])] },
      'additional section runs past the end',
    ],
    [
      { qd: [q], ar: [rrWith([0x80, ...Array<number>(128).fill(0x61), 0])] },
      'additional section runs past the end',
    ],
  ];
  for (const [m, reason] of table) assert.equal(parseQuery(msg(m)), reason);
  // A pointer is two octets: cut after its first one, the record does not parse.
  const cutPtr = Buffer.concat([msg({ qd: [q] }), Buffer.from([0xc0])]);
  cutPtr.writeUInt16BE(1, 6);
  assert.equal(parseQuery(cutPtr), 'record section runs past the end');
  const okPtr = msg({ qd: [q], an: [rrWith([0xc0, 12])] });
  assert.equal(parsed(okPtr).qEnd, 12 + q.length);
  // Only a root-named type-41 record is the OPT.
  assert.equal(parsed(msg({ qd: [q], ar: [rrWith([0])] })).edns, null, 'root-named A record');
  assert.equal(
    parsed(msg({ qd: [q], ar: [rrWith([2, 0, 41, 0])] })).edns,
    null,
    'name bytes 00 29',
  );
  assert.equal(
    parsed(msg({ qd: [q], ar: [rrWith(name('k'), 41)] })).edns,
    null,
    'type 41, not root',
  );
});

test('question labels: only ".", "/" and "\\" inside a label are refused, nowhere else', () => {
  const label = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];
  const ok: number[][] = [
    // Label lengths that are the bytes of "." (46), "/" (47) and "\\" (92).
    [...label('a'.repeat(46)), 0, ...u16(1), ...u16(1)],
    [...label('a'.repeat(47)), 0, ...u16(1), ...u16(1)],
    [...label('a'.repeat(92 - 63)), ...label('b'.repeat(63)), 0, ...u16(1), ...u16(1)],
    [
      ...label('a'.repeat(63)),
      ...label('c'.repeat(63)),
      ...label('d'.repeat(92 - 63)),
      0,
      ...u16(1),
      ...u16(1),
    ],
    // Type and class bytes that are those characters: NSEC (47), type 0x2e2e, class 0x5c.
    [...label('a'), 0, ...u16(47), ...u16(1)],
    [...label('a'), 0, ...u16(0x2e2e), ...u16(0x5c)],
  ];
  for (const qd of ok) parsed(msg({ qd: [qd] }));
  assert.equal(
    parsed(msg({ qd: [[...label('a'.repeat(46)), 0, ...u16(1), ...u16(1)]] })).qEnd,
    12 + 48 + 4,
  );
  for (const bad of ['ab.', '.ab', 'a/', '\\', 'x.y'])
    assert.equal(
      parseQuery(msg({ qd: [[...label(bad), 0, ...u16(1), ...u16(1)]] })),
      'question label holds "." "/" or "\\"',
      bad,
    );
  // The check stays inside the message even when the label claims more octets than there are.
  assert.equal(
    parseQuery(msg({ qd: [[40, 0x61, 0x61, 0x61, 0x61, 0x61]] })),
    'question name runs past the end',
  );
});

test('sameQuestion: names cut short or compressed never match, even themselves; folding bounds', () => {
  const head = msg({ qd: [] }).fill(0, 4, 12);
  head.writeUInt16BE(1, 4);
  const noEnd = Buffer.concat([head, Buffer.from([3, 0x61, 0x62, 0x63])]);
  assert.equal(sameQuestion(noEnd, noEnd), false, 'name without its terminating zero');
  const full = msg({ qd: [question('abc')] });
  const cut = full.subarray(0, full.length - 2);
  assert.equal(sameQuestion(cut, cut), false, 'type/class cut');
  assert.equal(sameQuestion(full, cut), false);
  assert.equal(sameQuestion(cut, full), false);
  const ptr = Buffer.concat([msg({ qd: [[0xc0, 0x0c, 0, 1, 0, 1]] }), Buffer.alloc(300, 1)]);
  assert.equal(sameQuestion(ptr, Buffer.from(ptr)), false, 'a compressed question name');
  const hdr = Buffer.from(full.subarray(0, 12));
  assert.equal(sameQuestion(hdr, hdr), false, 'a header alone');
  const one = (s: string) => msg({ qd: [question(s)] });
  const table: [string, string, boolean][] = [
    ['Z', 'z', true],
    ['z', 'Z', true],
    ['A', 'a', true],
    ['a', 'A', true],
    ['{', '[', false],
    ['[', '{', false],
    ['@', '`', false],
    ['`', '@', false],
  ];
  for (const [x, y, want] of table) assert.equal(sameQuestion(one(x), one(y)), want, `${x} ${y}`);
});

test('truncate: answers only (never authority) count as kept; the last additional is the OPT only if it is one', () => {
  const q = question('a.b');
  const a = (i: number) => rr([0xc0, 12], 1, [10, 0, 0, i]);
  const ns = rr([0xc0, 12], 2, name('ns.a.b'));
  const rootA = rr([0], 1, [10, 9, 9, 9]);
  const full = msg({ qd: [q], an: [a(1), a(2)], ns: [ns], ar: [rootA, opt(1232)] });
  const out = truncate(full, full.length - 1);
  assert.deepEqual([out.readUInt16BE(6), out.readUInt16BE(8), out.readUInt16BE(10)], [2, 0, 1]);
  assert.equal(out.length, 12 + q.length + 32 + 11);
  const noOpt = msg({ qd: [q], an: [a(1), a(2)], ar: [rootA] });
  const cut = truncate(noOpt, noOpt.length - 1);
  assert.deepEqual(
    [cut.readUInt16BE(6), cut.readUInt16BE(10), cut.length],
    [2, 0, 12 + q.length + 32],
  );
  const odd = msg({ qd: [q], an: [a(1), a(2)], ar: [rr([2, 0, 41, 0], 1, [1, 2, 3, 4])] });
  const cut2 = truncate(odd, odd.length - 1);
  assert.deepEqual([cut2.readUInt16BE(10), cut2.length], [0, 12 + q.length + 32]);
});

test('recordSpans: header-only messages, a cut question, authority records', () => {
  assert.equal(recordSpans(Buffer.alloc(11)), null);
  assert.deepEqual(recordSpans(Buffer.alloc(12)), []);
  const q = question('a.b');
  assert.equal(recordSpans(msg({ qd: [q] }).subarray(0, 12 + q.length - 1)), null);
  assert.equal(recordSpans(msg({ qd: [q] }).subarray(0, 12 + q.length - 4)), null);
  const a1 = rr([0xc0, 12], 1, [10, 0, 0, 1]);
  const ns = rr([0xc0, 12], 2, name('ns.a.b'));
  const spans = recordSpans(msg({ qd: [q], an: [a1], ns: [ns] }))!;
  assert.deepEqual(
    spans.map((s) => [s.type, s.end - s.start]),
    [
      [1, a1.length],
      [2, ns.length],
    ],
  );
});

test('pointsInto: which compression pointers would break if a range of records moved', () => {
  const q = question('a.b'); // at 12; "a.b" itself at 12, "b" at 14
  const QNAME = [0xc0, 12];
  const at = (parts: number[][]) => {
    const starts: number[] = [];
    let off = 12 + q.length;
    for (const p of parts) {
      starts.push(off);
      off += p.length;
    }
    return starts;
  };
  // Three answers; the range to move is the first two.
  const build = (r1: number[], r2: number[], r3: number[], extra: number[][] = []) => {
    const m = msg({ qd: [q], an: [r1, r2, r3], ar: extra });
    const spans = recordSpans(m)!;
    return { m, spans, lo: spans[0]!.start, hi: spans[1]!.end };
  };
  const a = (owner: number[]) => rr(owner, 1, [10, 0, 0, 1]);
  const x = name('x.a.b');
  const [s1] = at([a(x)]);
  const table: [string, ReturnType<typeof build>, boolean][] = [
    ['all owners point to the question', build(a(QNAME), a(QNAME), a(QNAME)), false],
    ['an owner after the range points into it', build(a(x), a(QNAME), a([0xc0, s1! + 2])), true],
    [
      'a pointer to the root name that starts the range',
      build(a([0]), a(QNAME), a([0xc0, s1!])),
      true,
    ],
    [
      'an owner after the range points exactly at its first byte',
      build(a(x), a(QNAME), a([0xc0, s1!])),
      true,
    ],
    ['a name in the range points into the range', build(a(x), a([0xc0, s1!]), a(QNAME)), true],
    ['a name in the range points out of it', build(a(x), a([1, 0x79, 0xc0, 12]), a(QNAME)), false],
    ['uncompressed names everywhere', build(a(x), a(name('y.a.b')), a(name('z.a.b'))), false],
    [
      'a CNAME target after the range points into it',
      build(a(x), a(QNAME), rr(QNAME, 5, [0xc0, s1!])),
      true,
    ],
    [
      'an MX exchange after the range points into it',
      build(a(x), a(QNAME), rr(QNAME, 15, [0, 10, 0xc0, s1!])),
      true,
    ],
    [
      'an SRV target after the range points into it',
      build(a(x), a(QNAME), rr(QNAME, 33, [0, 1, 0, 2, 0, 80, 0xc0, s1!])),
      true,
    ],
    [
      'an NS target after the range points into it',
      build(a(x), a(QNAME), rr(QNAME, 2, [0xc0, s1!])),
      true,
    ],
    [
      'a PTR target after the range points into it',
      build(a(x), a(QNAME), rr(QNAME, 12, [0xc0, s1!])),
      true,
    ],
    [
      'an SOA mailbox after the range points into it',
      build(a(x), a(QNAME), rr(QNAME, 6, [0xc0, 12, 0xc0, s1!, ...Array<number>(20).fill(0)])),
      true,
    ],
    [
      'an SOA whose names point elsewhere',
      build(a(x), a(QNAME), rr(QNAME, 6, [0xc0, 12, 0xc0, 14, ...Array<number>(20).fill(0)])),
      false,
    ],
    [
      'a TXT after the range is no name',
      build(a(x), a(QNAME), rr(QNAME, 16, [2, 0xc0, s1!])),
      false,
    ],
  ];
  for (const [what, { m, spans, lo, hi }, want] of table)
    assert.equal(pointsInto(m, spans, lo, hi), want, what);
  // Through a chain: an owner after the range points to a name before it, which points into it.
  const viaChain = (() => {
    const r1 = a(x);
    const r2 = a(QNAME);
    const s3 = 12 + q.length + r1.length + r2.length;
    // r3's owner "w" + pointer to r4's owner, which points into the range.
    const r3 = a([0xc0, s3 + 16]);
    const r4 = a([1, 0x77, 0xc0, s1!]);
    const m = msg({ qd: [q], an: [r1, r2, r3, r4] });
    const spans = recordSpans(m)!;
    return pointsInto(m, spans, spans[0]!.start, spans[1]!.end);
  })();
  assert.equal(viaChain, true);
  // A pointer loop outside the range is treated as reaching it (we cannot prove it does not).
  const loop = (() => {
    const r1 = a(x);
    const r2 = a(QNAME);
    const s3 = 12 + q.length + r1.length + r2.length;
    const m = msg({ qd: [q], an: [r1, r2, a([0xc0, s3])] });
    const spans = recordSpans(m)!;
    return pointsInto(m, spans, spans[0]!.start, spans[1]!.end);
  })();
  assert.equal(loop, true);
});
