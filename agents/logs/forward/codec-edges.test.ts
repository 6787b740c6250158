// Table tests for the forward codec's edges (written for the survivors of `npm run mutate --
// forward/codec`): every msgpack header the scanner skips, each str/bin width a packed blob can
// come in, the array widths of a frame, the ack's four string widths, and each malformed frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode as specEncode, decode as specDecode } from '@msgpack/msgpack';
import { gzipSync } from 'node:zlib';
import {
  EventTime,
  ForwardDecoder,
  FrameError,
  decodeEntries,
  decodeFrame,
  encodeAck,
  encodeEntry,
  encodeMessage,
  encodePacked,
  entryOffsets,
  scan,
  toEventTime,
  valueEnd,
} from './codec.js';

/** A msgpack header: type byte then `n` as a big-endian length of `width` bytes (the spec's layout). */
function head(type: number, width: number, n: number): Buffer {
  const b = Buffer.alloc(1 + width);
  b[0] = type;
  for (let i = 0; i < width; i++) b[1 + i] = Math.floor(n / 256 ** (width - 1 - i)) % 256;
  return b;
}
const bytes = (...parts: (Uint8Array | number[])[]) =>
  Buffer.concat(parts.map((p) => (p instanceof Uint8Array ? p : Buffer.from(p))));
const nils = (n: number) => Buffer.alloc(n, 0xc0);
/** `n` map pairs 1: nil. */
const pairs = (n: number) =>
  Buffer.concat(Array.from({ length: n }, () => Buffer.from([0x01, 0xc0])));

// Every msgpack format family, built to the spec, with its total length.
const VALUES: [string, Buffer][] = [
  ['positive fixint', bytes([0x05])],
  ['positive fixint 0x7f', bytes([0x7f])],
  ['negative fixint 0xe0', bytes([0xe0])],
  ['negative fixint 0xff', bytes([0xff])],
  ['nil', bytes([0xc0])],
  ['false', bytes([0xc2])],
  ['true', bytes([0xc3])],
  ['bin 8', bytes(head(0xc4, 1, 3), [1, 2, 3])],
  ['bin 16', bytes(head(0xc5, 2, 300), Buffer.alloc(300, 7))],
  ['bin 32', bytes(head(0xc6, 4, 70_000), Buffer.alloc(70_000, 7))],
  ['ext 8', bytes(head(0xc7, 1, 2), [9, 1, 2])],
  ['ext 16', bytes(head(0xc8, 2, 300), [9], Buffer.alloc(300))],
  ['ext 32', bytes(head(0xc9, 4, 5), [9], Buffer.alloc(5))],
  ['float 32', bytes([0xca], Buffer.alloc(4))],
  ['float 64', bytes([0xcb], Buffer.alloc(8))],
  ['uint 8', bytes([0xcc, 200])],
  ['uint 16', bytes([0xcd], Buffer.alloc(2))],
  ['uint 32', bytes([0xce], Buffer.alloc(4))],
  ['uint 64', bytes([0xcf], Buffer.alloc(8))],
  ['int 8', bytes([0xd0, 0x80])],
  ['int 16', bytes([0xd1], Buffer.alloc(2))],
  ['int 32', bytes([0xd2], Buffer.alloc(4))],
  ['int 64', bytes([0xd3], Buffer.alloc(8))],
  ['fixext 1', bytes([0xd4, 1], Buffer.alloc(1))],
  ['fixext 2', bytes([0xd5, 1], Buffer.alloc(2))],
  ['fixext 4', bytes([0xd6, 1], Buffer.alloc(4))],
  ['fixext 8', bytes([0xd7, 0], Buffer.alloc(8))],
  ['fixext 16', bytes([0xd8, 1], Buffer.alloc(16))],
  ['fixstr 0', bytes([0xa0])],
  ['fixstr 31', bytes([0xbf], Buffer.alloc(31, 0x61))],
  ['str 8', bytes(head(0xd9, 1, 40), Buffer.alloc(40, 0x61))],
  ['str 16', bytes(head(0xda, 2, 300), Buffer.alloc(300, 0x61))],
  ['str 32', bytes(head(0xdb, 4, 70_000), Buffer.alloc(70_000, 0x61))],
  ['fixarray 0', bytes([0x90])],
  ['fixarray 15', bytes([0x9f], nils(15))],
  ['array 16', bytes(head(0xdc, 2, 300), nils(300))],
  ['array 32', bytes(head(0xdd, 4, 3), nils(3))],
  // Items of two bytes each: n items, not n bytes.
  [
    'array 16 of uint 8',
    bytes(head(0xdc, 2, 300), ...Array.from({ length: 300 }, () => [0xcc, 1])),
  ],
  ['array 32 of uint 8', bytes(head(0xdd, 4, 3), [0xcc, 1, 0xcc, 2, 0xcc, 3])],
  ['fixmap 0', bytes([0x80])],
  ['fixmap 15', bytes([0x8f], pairs(15))],
  ['map 16', bytes(head(0xde, 2, 2), pairs(2))],
  ['map 32', bytes(head(0xdf, 4, 1), pairs(1))],
  ['nested', bytes([0x92, 0x81, 0xa1, 0x6b, 0x91, 0xc3], head(0xd9, 1, 2), [0x68, 0x69])],
];

test('valueEnd: every msgpack format ends where the spec says, and no prefix is whole', () => {
  for (const [name, v] of VALUES) {
    // The reference decoder agrees it is one whole value (ext and fixext decode as ExtData).
    assert.doesNotThrow(() => specDecode(v), name);
    const tail = Buffer.from([0x01, 0x02]);
    assert.equal(valueEnd(bytes(v, tail), 0), v.length, `${name}: end with bytes after it`);
    assert.equal(valueEnd(bytes(tail, v, tail), 2), v.length + 2, `${name}: from an offset`);
    for (const cut of new Set([0, 1, 2, 3, 4, 5, 6, v.length - 1]))
      if (cut < v.length)
        assert.equal(valueEnd(v.subarray(0, cut), 0), -1, `${name} cut at ${cut}`);
    // `end` bounds the scan like a shorter buffer does.
    assert.equal(
      valueEnd(bytes(v, tail), 0, v.length - 1),
      -1,
      `${name}: end before its last byte`,
    );
    assert.equal(valueEnd(bytes(v, tail), 0, v.length), v.length, `${name}: end at its last byte`);
  }
});

test('scan resumes where it stopped: the state after a cut plus the rest gives the same end', () => {
  for (const [name, v] of VALUES) {
    for (const cut of new Set([1, 2, 3, Math.floor(v.length / 2), v.length - 1])) {
      if (cut <= 0 || cut >= v.length) continue;
      const s = scan(v, { pos: 0, pending: 1 }, cut);
      assert.ok(s.pending > 0, `${name} cut at ${cut} is incomplete`);
      assert.ok(s.pos <= cut, `${name}: stops inside what it was given`);
      assert.deepEqual(scan(v, s), { pos: v.length, pending: 0 }, `${name} resumed from ${cut}`);
    }
  }
  // Two values pending: scans both.
  assert.deepEqual(scan(bytes([0x01, 0xa1, 0x61, 0x07]), { pos: 0, pending: 2 }), {
    pos: 3,
    pending: 0,
  });
  // Nothing pending: stays put.
  assert.deepEqual(scan(bytes([0x01]), { pos: 0, pending: 0 }), { pos: 0, pending: 0 });
});

test('scan refuses the never-used byte 0xc1, also inside a container', () => {
  assert.throws(
    () => valueEnd(bytes([0xc1]), 0),
    (e) => e instanceof FrameError && /0xc1/.test(e.message),
  );
  assert.throws(() => valueEnd(bytes([0x92, 0x01, 0xc1]), 0), FrameError);
});

const t = new EventTime(1_700_000_000, 5);
const rec = { log: 'x' };

test('a packed blob in each str/bin width decodes to its entries', () => {
  for (const n of [1, 3, 400]) {
    const blob = Buffer.concat(
      Array.from({ length: n }, (_, i) => encodeEntry(t, { log: `l${i}` })),
    );
    for (const [width, type] of [
      [1, 0xc4],
      [2, 0xc5],
      [4, 0xc6],
      [1, 0xd9],
      [2, 0xda],
      [4, 0xdb],
    ] as const) {
      if (width === 1 && blob.length > 255) continue;
      const frame = bytes([0x92], specEncode('tag'), head(type, width, blob.length), blob);
      const f = decodeFrame(frame);
      assert.ok(f.kind === 'events', `${type.toString(16)} × ${n}`);
      assert.equal(f.mode, 'packed');
      assert.deepEqual(f.blob, blob, `${type.toString(16)} × ${n}: the whole blob`);
      assert.deepEqual(f.option, {});
      assert.equal(decodeEntries(f.blob).length, n);
    }
    if (blob.length <= 31) {
      const f = decodeFrame(bytes([0x92], specEncode('tag'), [0xa0 | blob.length], blob));
      assert.ok(f.kind === 'events' && f.mode === 'packed');
      assert.deepEqual(f.blob, blob, 'fixstr blob');
    }
  }
});

test('packed blobs as fixstr of 0 and of 31 bytes', () => {
  for (const n of [0, 31]) {
    const blob = Buffer.alloc(n, 0x01);
    const f = decodeFrame(bytes([0x92], specEncode('tag'), [0xa0 | n], blob));
    assert.ok(f.kind === 'events' && f.mode === 'packed', `fixstr ${n}`);
    assert.deepEqual(f.blob, blob);
  }
});

test('frames as array 16 and array 32 decode like a fixarray', () => {
  const items = [specEncode('app'), specEncode(3), specEncode(rec)];
  for (const h of [bytes([0x93]), head(0xdc, 2, 3), head(0xdd, 4, 3)]) {
    const f = decodeFrame(bytes(h, ...items));
    assert.ok(f.kind === 'events', h.toString('hex'));
    assert.equal(f.mode, 'message');
    assert.equal(f.tag, 'app');
    assert.deepEqual(f.entries, [{ time: new EventTime(3, 0), record: rec }]);
  }
  // Forward entries as array 16 / 32.
  const entry = specEncode([1, rec]);
  for (const h of [head(0xdc, 2, 2), head(0xdd, 4, 2)]) {
    const f = decodeFrame(bytes([0x92], specEncode('app'), h, entry, entry));
    assert.ok(f.kind === 'events' && f.mode === 'forward', h.toString('hex'));
    assert.equal(f.entries!.length, 2);
  }
});

test('map frames: an ack in map 16/32 too; a map without a string ack is refused', () => {
  assert.deepEqual(decodeFrame(bytes(head(0xde, 2, 1), specEncode('ack'), specEncode('c'))), {
    kind: 'ack',
    chunk: 'c',
  });
  assert.deepEqual(decodeFrame(bytes(head(0xdf, 4, 1), specEncode('ack'), specEncode('d'))), {
    kind: 'ack',
    chunk: 'd',
  });
  for (const m of [{}, { ack: 1 }, { other: 'c' }])
    assert.throws(() => decodeFrame(Buffer.from(specEncode(m))), /unexpected map frame/);
});

const frame = (...items: unknown[]) => Buffer.from(specEncode(items));
const packedWith = (option: unknown) =>
  bytes([0x93], specEncode('app'), specEncode(encodeEntry(t, rec)), specEncode(option));

test('malformed frames: each is a FrameError that names what is wrong', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['not an array', Buffer.from(specEncode(7)), /frame must be an array, got byte 0x7/],
    ['a string', Buffer.from(specEncode('x')), /frame must be an array, got byte 0xa1/],
    ['1 item', frame('app'), /2 to 6 items, got 1/],
    ['7 items', frame('app', 1, {}, {}, 1, 1, 1), /2 to 6 items, got 7/],
    ['tag not a string', frame(1, 1, rec), /tag must be a string/],
    ['an empty array', bytes([0x90]), /2 to 6 items, got 0/],
    ['15 items', frame(...Array.from({ length: 15 }, () => 1)), /2 to 6 items, got 15/],
    [
      'a map of 15 keys',
      Buffer.from(
        specEncode(Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, i]))),
      ),
      /unexpected map frame/,
    ],
    [
      'packed with 4 items',
      bytes([0x94], specEncode('a'), specEncode(Buffer.alloc(1)), specEncode({}), specEncode(1)),
      /packed frame must be/,
    ],
    ['forward with 4 items', frame('a', [[1, rec]], {}, 1), /forward frame must be/],
    [
      'message with 5 items',
      frame('a', 1, rec, {}, 1),
      /message frame must be \[tag, time, record, option\?\]/,
    ],
    ['message with 2 items', frame('a', 1), /message frame must be/],
    ['record not a map', frame('a', 1, 'str'), /record must be a map/],
    ['record null', frame('a', 1, null), /record must be a map/],
    ['record an array', frame('a', 1, [1]), /record must be a map/],
    [
      'time a boolean',
      frame('a', true, rec),
      /event time must be an integer or EventTime, got boolean/,
    ],
    ['option not a map', frame('a', 1, rec, 'o'), /option must be a map/],
    ['option an array', frame('a', 1, rec, [1]), /option must be a map/],
    ['chunk not a string', frame('a', 1, rec, { chunk: 5 }), /option "chunk" must be a string/],
    ['forward entry short', frame('a', [[1]]), /entry must be \[time, record\]/],
    ['forward entry not an array', frame('a', [5]), /entry must be \[time, record\]/],
    ['forward record not a map', frame('a', [[1, 'r']]), /record must be a map/],
    ['forward record null', frame('a', [[1, null]]), /record must be a map/],
    ['forward record an array', frame('a', [[1, [2]]]), /record must be a map/],
    ['unknown compression', packedWith({ compressed: 'zstd' }), /unsupported compression "zstd"/],
    ['bad gzip', packedWith({ compressed: 'gzip' }), /bad gzip in compressed packed forward/],
    ['packed option not a map', packedWith(3), /option must be a map/],
  ];
  for (const [name, bytesIn, re] of cases)
    assert.throws(
      () => decodeFrame(bytesIn),
      (e) => e instanceof FrameError && e.name === 'FrameError' && re.test(e.message),
      name,
    );
});

test('packed options: text compression is plain packed, no option is {}, gzip decompresses', () => {
  const blob = encodeEntry(t, rec);
  const text = decodeFrame(packedWith({ compressed: 'text', chunk: 'k' }));
  assert.ok(text.kind === 'events');
  assert.equal(text.mode, 'packed');
  assert.deepEqual(text.option, { compressed: 'text', chunk: 'k' });
  assert.deepEqual(text.blob, blob);
  const nil = decodeFrame(packedWith(null));
  assert.ok(nil.kind === 'events');
  assert.deepEqual(nil.option, {});
  const gz = decodeFrame(
    bytes(
      [0x93],
      specEncode('app'),
      specEncode(gzipSync(blob)),
      specEncode({ compressed: 'gzip' }),
    ),
  );
  assert.ok(gz.kind === 'events');
  assert.equal(gz.mode, 'compressed');
  assert.deepEqual(gz.blob, blob);
  // Forward mode with and without its option.
  const fwd = decodeFrame(frame('a', [[1, rec]], { chunk: 'z' }));
  assert.ok(fwd.kind === 'events' && fwd.mode === 'forward');
  assert.deepEqual(fwd.option, { chunk: 'z' });
  const fwd2 = decodeFrame(frame('a', [[1, rec]]));
  assert.ok(fwd2.kind === 'events');
  assert.deepEqual(fwd2.option, {});
  // Forward entries as an empty fixarray and a full one (15).
  const none = decodeFrame(frame('a', []));
  assert.ok(none.kind === 'events' && none.mode === 'forward');
  assert.deepEqual(none.entries, []);
  const fifteen = decodeFrame(
    frame(
      'a',
      Array.from({ length: 15 }, (_, i) => [i, rec]),
    ),
  );
  assert.ok(fifteen.kind === 'events' && fifteen.mode === 'forward');
  assert.equal(fifteen.entries!.length, 15);
  assert.deepEqual(fifteen.entries![14]!.time, new EventTime(14, 0));
  // A message with a nil option.
  const msg = decodeFrame(frame('a', 1, rec, null));
  assert.ok(msg.kind === 'events');
  assert.deepEqual(msg.option, {});
});

test('handshake frames carry the items after the tag', () => {
  for (const type of ['HELO', 'PING', 'PONG'] as const) {
    const f = decodeFrame(frame(type, { a: 1 }, 'x'));
    assert.deepEqual(f, { kind: 'handshake', type, body: [{ a: 1 }, 'x'] });
  }
});

test('event times: integers, floats, EventTime; negative, NaN and infinite times refused', () => {
  assert.deepEqual(toEventTime(0), new EventTime(0, 0));
  assert.deepEqual(toEventTime(12.25), new EventTime(12, 250_000_000));
  const e = new EventTime(1, 2);
  assert.equal(toEventTime(e), e);
  for (const bad of [-1, -0.5, NaN, Infinity, '1', null, undefined])
    assert.throws(
      () => toEventTime(bad),
      (x) => x instanceof FrameError && /got /.test(x.message),
    );
  assert.throws(() => toEventTime('1'), /got string/);
});

test('EventTime: millis both ways, ISO string with nanoseconds, ordering', () => {
  assert.deepEqual(
    EventTime.fromMillis(1_700_000_000_123.5),
    new EventTime(1_700_000_000, 123_500_000),
  );
  assert.deepEqual(EventTime.fromMillis(999), new EventTime(0, 999_000_000));
  assert.equal(new EventTime(2, 500_000_000).toMillis(), 2500);
  assert.equal(new EventTime(1_700_000_000, 5).toISOString(), '2023-11-14T22:13:20.000000005Z');
  assert.equal(new EventTime(0, 123_456_789).toISOString(), '1970-01-01T00:00:00.123456789Z');
  assert.ok(new EventTime(1, 0).compare(new EventTime(2, 0)) < 0);
  assert.ok(new EventTime(2, 0).compare(new EventTime(1, 9)) > 0);
  assert.ok(new EventTime(1, 1).compare(new EventTime(1, 2)) < 0);
  assert.ok(new EventTime(1, 3).compare(new EventTime(1, 2)) > 0);
  assert.equal(new EventTime(1, 2).compare(new EventTime(1, 2)), 0);
});

test('EventTime ext: 8 bytes of big-endian seconds and nanoseconds; another length is refused', () => {
  const enc = encodeEntry(new EventTime(0x01020304, 0x05060708), {});
  assert.deepEqual([...enc.subarray(0, 11)], [0x92, 0xd7, 0x00, 1, 2, 3, 4, 5, 6, 7, 8]);
  const [back] = decodeEntries(enc);
  assert.deepEqual(back!.time, new EventTime(0x01020304, 0x05060708));
  // fixext 4 of type 0: not an EventTime.
  const bad = bytes([0x92, 0xd6, 0x00, 0, 0, 0, 1, 0x80]);
  // Its own message, not wrapped as undecodable.
  assert.throws(
    () => decodeEntries(bad),
    (e) => e instanceof FrameError && /^EventTime must be 8 bytes, got 4$/.test(e.message),
  );
});

test('packed entries: offsets of each, a truncated one refused; undecodable msgpack is a FrameError', () => {
  const a = encodeEntry(t, { log: 'a' });
  const b = encodeEntry(t, { log: 'bb' });
  assert.deepEqual(entryOffsets(Buffer.concat([a, b])), [0, a.length]);
  assert.deepEqual(entryOffsets(Buffer.alloc(0)), []);
  assert.throws(() => entryOffsets(Buffer.concat([a, b.subarray(0, 3)])), /truncated entry/);
  assert.throws(() => decodeEntries(Buffer.concat([a, b.subarray(0, 3)])), /truncated entry/);
  assert.throws(() => decodeEntries(bytes([0x93, 0x01, 0x80, 0x01]).subarray(0, 3)), FrameError);
  assert.throws(() => decodeEntries(Buffer.from(specEncode([1, 'r']))), /record must be a map/);
  // Scans as msgpack but does not decode: a map with an array key, an unknown ext type.
  assert.throws(
    () => decodeEntries(bytes([0x92, 0x01, 0x81, 0x91, 0x01, 0x01])),
    (e) => e instanceof FrameError && /^undecodable msgpack: ./.test(e.message),
  );
  assert.throws(() => decodeEntries(bytes([0x92, 0x01, 0xd4, 0x05, 0x00])), /undecodable msgpack/);
  assert.throws(
    () => decodeEntries(bytes([0x92, 0x01, 0x81, 0xc1, 0x01])),
    (e) => e instanceof FrameError,
  );
});

test('acks in each string width are msgpack {"ack": chunk}', () => {
  for (const n of [0, 1, 31, 32, 255, 256, 65_535, 65_536, 70_000]) {
    const chunk = 'k'.repeat(n);
    const ack = encodeAck(chunk);
    assert.deepEqual(specDecode(ack), { ack: chunk }, `chunk of ${n}`);
    assert.equal(valueEnd(ack, 0), ack.length, `no trailing bytes at ${n}`);
    assert.deepEqual(decodeFrame(ack), { kind: 'ack', chunk });
  }
  assert.deepEqual(specDecode(encodeAck('é€')), { ack: 'é€' });
});

test('decoder: a frame split over pushes; spare room reused; frames stay intact', () => {
  const frames = [encodeMessage('a', t, { log: '1' }), encodeMessage('b', t, { log: '2' })];
  const all = Buffer.concat(frames);
  const d = new ForwardDecoder();
  // Partial, then many small pushes into the decoder's own buffer, then the rest.
  assert.deepEqual(d.pushRaw(all.subarray(0, 3)), []);
  assert.equal(d.pending, 3);
  const got: Buffer[] = [];
  for (let i = 3; i < all.length; i++) got.push(...d.pushRaw(all.subarray(i, i + 1)));
  assert.deepEqual(
    got.map((b) => b.toString('hex')),
    frames.map((b) => b.toString('hex')),
  );
  assert.equal(d.pending, 0);
  // Pushing the same Buffer object again after a partial frame.
  const d2 = new ForwardDecoder();
  const half = Buffer.from(frames[0]!.subarray(0, 4));
  assert.deepEqual(d2.pushRaw(half), []);
  assert.deepEqual(d2.pushRaw(half), []);
  assert.equal(d2.pending, 8);
  // A whole frame followed by a partial one: pending counts only the partial bytes.
  const d3 = new ForwardDecoder();
  const out = d3.push(Buffer.concat([frames[0]!, frames[1]!.subarray(0, 5)]));
  assert.equal(out.length, 1);
  assert.equal(d3.pending, 5);
  const rest = d3.push(frames[1]!.subarray(5));
  assert.equal(rest.length, 1);
  assert.ok(rest[0]!.kind === 'events' && rest[0]!.tag === 'b');
  assert.equal(d3.pending, 0);
  // The frame handed out before is unchanged after later pushes reuse the buffer.
  assert.ok(out[0]!.kind === 'events' && out[0]!.tag === 'a');
});

test('decoder: a chunk larger than the spare room of its buffer is kept whole', () => {
  const log = 'L'.repeat(200_000);
  const big = encodeMessage('big', t, { log });
  const d = new ForwardDecoder();
  assert.deepEqual(d.pushRaw(big.subarray(0, 3)), []);
  assert.deepEqual(d.pushRaw(big.subarray(3, 4)), []); // now in a 64 KiB buffer of its own
  const [f] = d.push(big.subarray(4));
  assert.ok(f && f.kind === 'events');
  assert.equal(f.entries![0]!.record.log, log);
  // The same after a partial frame of 70 KB (more than 64 KiB kept).
  const d2 = new ForwardDecoder();
  assert.deepEqual(d2.pushRaw(big.subarray(0, 1)), []);
  assert.deepEqual(d2.pushRaw(big.subarray(1, 70_000)), []);
  const [g] = d2.push(big.subarray(70_000));
  assert.ok(g && g.kind === 'events');
  assert.equal(g.entries![0]!.record.log, log);
});

test('decoder limit: a partial frame at the limit is kept, one byte over is refused', () => {
  const big = encodeMessage('a', t, { log: 'x'.repeat(2000) });
  const d = new ForwardDecoder(1000);
  assert.deepEqual(d.push(big.subarray(0, 1000)), []);
  assert.throws(() => d.push(big.subarray(1000, 1001)), /frame larger than 1000 bytes/);
  // The limit counts only the partial frame, not the whole frames before it in the buffer.
  const small = encodeMessage('a', t, { log: 'y' });
  const d2 = new ForwardDecoder(10);
  assert.equal(d2.push(Buffer.concat([small, small, small.subarray(0, 5)])).length, 2);
  assert.equal(d2.pending, 5);
  // A whole frame larger than the limit in one push is still a frame (it is not buffered).
  assert.equal(new ForwardDecoder(10).push(big).length, 1);
  // The default limit is 64 MiB: 1 MiB partial is fine.
  const huge = Buffer.concat([head(0xc6, 4, 2 << 20), Buffer.alloc(1 << 20)]);
  assert.deepEqual(new ForwardDecoder().pushRaw(huge), []);
  assert.throws(() => new ForwardDecoder(1 << 20).pushRaw(huge), /larger than 1048576/);
});

test('encodePacked sets size and, when compressing, compressed "gzip" with a gzip blob', () => {
  const blob = Buffer.concat([encodeEntry(t, rec), encodeEntry(t, rec)]);
  const plain = specDecode(encodePacked('app', blob, 2, { chunk: 'c' })) as unknown[];
  assert.deepEqual(plain[2], { chunk: 'c', size: 2 });
  assert.deepEqual(Buffer.from(plain[1] as Uint8Array), blob);
  const gz = specDecode(encodePacked('app', blob, 2, {}, true)) as unknown[];
  assert.deepEqual(gz[2], { size: 2, compressed: 'gzip' });
  assert.deepEqual([...(gz[1] as Uint8Array).subarray(0, 2)], [0x1f, 0x8b]);
});
