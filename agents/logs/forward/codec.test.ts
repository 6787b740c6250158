import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../../../test/fc-seed.js';
import { Unpackr } from 'msgpackr';
import { gzipSync } from 'node:zlib';
import {
  EventTime,
  ForwardDecoder,
  FrameError,
  decodeEntries,
  encodeAck,
  encodeEntry,
  encodeForward,
  encodeMessage,
  encodePacked,
  encodeValue,
  valueEnd,
  type Entry,
  type Frame,
} from './codec.js';
import {
  checkPing,
  checkPong,
  encodeHelo,
  encodePing,
  encodePong,
  newNonce,
  parseHelo,
} from './handshake.js';

const t0 = new EventTime(1_700_000_000, 123_456_789);
const rec = { log: 'hello', source: 'stdout', container_id: 'abc' };

function decodeAll(bytes: Buffer, cuts: number[] = []): Frame[] {
  const d = new ForwardDecoder();
  const out: Frame[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(...d.push(bytes.subarray(prev, c)));
    prev = c;
  }
  assert.equal(d.pending, 0);
  return out;
}

function eventsOf(f: Frame): { tag: string; entries: Entry[]; chunk?: string } {
  assert.equal(f.kind, 'events');
  if (f.kind !== 'events') throw new Error('unreachable');
  const entries = f.entries ?? decodeEntries(f.blob!);
  return { tag: f.tag, entries, ...(f.option.chunk ? { chunk: f.option.chunk } : {}) };
}

test('each mode decodes to the same tag, time and record', () => {
  const blob = Buffer.concat([encodeEntry(t0, rec), encodeEntry(t0, rec)]);
  const cases: [string, Buffer, string, number][] = [
    ['message', encodeMessage('app', t0, rec), 'message', 1],
    ['message with option', encodeMessage('app', t0, rec, { chunk: 'c1' }), 'message', 1],
    ['forward', encodeForward('app', [{ time: t0, record: rec }]), 'forward', 1],
    ['packed', encodePacked('app', blob, 2, { chunk: 'c2' }), 'packed', 2],
    ['compressed', encodePacked('app', blob, 2, {}, true), 'compressed', 2],
  ];
  for (const [name, bytes, mode, n] of cases) {
    const [f] = decodeAll(bytes);
    assert.ok(f && f.kind === 'events', name);
    assert.equal(f.mode, mode, name);
    const ev = eventsOf(f);
    assert.equal(ev.tag, 'app', name);
    assert.equal(ev.entries.length, n, name);
    for (const e of ev.entries) {
      assert.deepEqual(e.time, t0, name);
      assert.deepEqual(e.record, rec, name);
    }
  }
});

test('integer and float times become EventTime', () => {
  const [a] = decodeAll(encodeMessage('t', 1_700_000_000, rec));
  assert.deepEqual(eventsOf(a!).entries[0]!.time, new EventTime(1_700_000_000, 0));
  const [b] = decodeAll(encodeMessage('t', 1_700_000_000.5, rec));
  assert.deepEqual(eventsOf(b!).entries[0]!.time, new EventTime(1_700_000_000, 500_000_000));
});

test('EventTime is msgpack fixext8 type 0 as Docker sends it', () => {
  const bytes = encodeValue(t0);
  assert.equal(bytes.toString('hex'), 'd700' + '6553f100' + '075bcd15');
  assert.equal(t0.toISOString(), '2023-11-14T22:13:20.123456789Z');
});

test('a gzip stream of several members (Fluent Bit appends) decodes whole', () => {
  const a = encodeEntry(t0, { log: 'a' });
  const b = encodeEntry(t0, { log: 'b' });
  const bytes = encodeValue([
    't',
    Buffer.concat([gzipSync(a), gzipSync(b)]),
    { compressed: 'gzip' },
  ]);
  const ev = eventsOf(decodeAll(bytes)[0]!);
  assert.deepEqual(
    ev.entries.map((e) => e.record.log),
    ['a', 'b'],
  );
});

test('ack is a plain msgpack map {"ack": chunk} (no msgpackr records)', () => {
  const bytes = encodeAck('Y2h1bms=');
  assert.ok(bytes[0] === 0x81 || bytes[0] === 0xde, 'a msgpack map');
  const plain = new Unpackr({ useRecords: false, mapsAsObjects: true });
  assert.deepEqual(plain.unpack(bytes), { ack: 'Y2h1bms=' });
  assert.deepEqual(decodeAll(bytes), [{ kind: 'ack', chunk: 'Y2h1bms=' }]);
  // Every string length class (fixstr, str8, str16, str32) and multi-byte UTF-8.
  for (const chunk of [
    '',
    'a'.repeat(31),
    'b'.repeat(32),
    'c'.repeat(255),
    'é'.repeat(200),
    'd'.repeat(65535),
    'e'.repeat(70_000),
  ]) {
    const b = encodeAck(chunk);
    assert.deepEqual(plain.unpack(b), { ack: chunk }, `chunk of ${chunk.length}`);
    assert.deepEqual(decodeAll(b), [{ kind: 'ack', chunk }], `chunk of ${chunk.length}`);
  }
});

test('heartbeat (nil) and handshake frames are recognised', () => {
  const nonce = newNonce();
  const frames = decodeAll(Buffer.concat([Buffer.from([0xc0]), encodeHelo(nonce)]));
  assert.equal(frames[0]!.kind, 'heartbeat');
  const helo = frames[1]!;
  assert.ok(helo.kind === 'handshake' && helo.type === 'HELO');
  assert.deepEqual(parseHelo(helo.body), nonce);
});

test('malformed frames throw FrameError naming the problem', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['reserved byte', Buffer.from([0xc1]), /invalid msgpack byte 0xc1/],
    ['not an array', encodeValue('hello'), /frame must be an array/],
    ['one item', encodeValue(['tag']), /2 to 6 items/],
    ['tag not string', encodeValue([1, 2, {}]), /tag must be a string/],
    ['record not map', encodeValue(['t', 1, 'x']), /record must be a map/],
    ['bad time', encodeValue(['t', true, {}]), /event time/],
    ['bad gzip', encodeValue(['t', Buffer.from('nope'), { compressed: 'gzip' }]), /bad gzip/],
    ['bad chunk', encodeValue(['t', 1, {}, { chunk: 5 }]), /chunk/],
    ['map not ack', encodeValue({ x: 1 }), /unexpected map/],
    ['truncated packed entry', encodeValue(['t', Buffer.from([0x92, 0x01])]), /truncated entry/],
  ];
  for (const [name, bytes, re] of cases) {
    assert.throws(
      () => {
        const [f] = new ForwardDecoder().push(bytes);
        if (f?.kind === 'events' && f.blob) decodeEntries(f.blob);
      },
      (err: unknown) => err instanceof FrameError && re.test(err.message),
      name,
    );
  }
});

test('a frame larger than the limit is refused before it is complete', () => {
  const d = new ForwardDecoder(1000);
  const big = encodeMessage('t', t0, { log: 'x'.repeat(5000) });
  assert.throws(() => d.push(big.subarray(0, 2000)), /larger than 1000/);
});

// Property tests: arbitrary records and every way of cutting the stream give the same frames.
const recordArb = fc
  .dictionary(
    fc.string({ maxLength: 12 }).filter((k) => k !== '__proto__'),
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.integer(), { maxLength: 3 }),
      fc.string({ minLength: 200, maxLength: 70_000 }).map((s) => s.slice(0, 70_000)),
    ),
    { maxKeys: 6 },
  )
  .map((r) => ({ ...r }));
const timeArb = fc
  .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 999_999_999 }))
  .map(([s, n]) => new EventTime(s, n));
const entryArb = fc.record({ time: timeArb, record: recordArb }).map((e) => ({ ...e }));
const frameArb = fc.tuple(
  fc.constantFrom('message', 'forward', 'packed', 'compressed'),
  fc.string({ minLength: 1, maxLength: 20 }),
  fc.array(entryArb, { minLength: 1, maxLength: 5 }),
  fc.option(fc.string({ minLength: 1, maxLength: 24 }), { nil: undefined }),
);

function encodeFrame([mode, tag, entries, chunk]: [string, string, Entry[], string | undefined]): {
  bytes: Buffer;
  entries: Entry[];
} {
  const option = chunk ? { chunk } : undefined;
  if (mode === 'message')
    return {
      bytes: encodeMessage(tag, entries[0]!.time, entries[0]!.record, option),
      entries: entries.slice(0, 1),
    };
  if (mode === 'forward') return { bytes: encodeForward(tag, entries, option), entries };
  const blob = Buffer.concat(entries.map((e) => encodeEntry(e.time, e.record)));
  return { bytes: encodePacked(tag, blob, entries.length, option, mode === 'compressed'), entries };
}

test('property: any frames, any cut points, decode to what was encoded', () => {
  fc.assert(
    fc.property(
      fc.array(frameArb, { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (frames, rawCuts) => {
        const enc = frames.map(encodeFrame);
        const bytes = Buffer.concat(enc.map((e) => e.bytes));
        const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const out = decodeAll(bytes, cuts);
        assert.equal(out.length, frames.length);
        out.forEach((f, i) => {
          const ev = eventsOf(f);
          assert.equal(ev.tag, frames[i]![1]);
          assert.equal(ev.chunk, frames[i]![3]);
          assert.deepEqual(ev.entries, enc[i]!.entries);
        });
      },
    ),
    { numRuns: 150 },
  );
});

test('split reads at every byte boundary, including one byte at a time', () => {
  const bytes = Buffer.concat([
    encodeMessage('a', t0, { log: 'x'.repeat(300), n: 70000 }, { chunk: 'k1' }),
    encodePacked('b', Buffer.concat([encodeEntry(t0, rec), encodeEntry(t0, rec)]), 2, {
      chunk: 'k2',
    }),
    encodeAck('k3'),
  ]);
  const whole = decodeAll(bytes);
  for (let cut = 0; cut <= bytes.length; cut++) assert.deepEqual(decodeAll(bytes, [cut]), whole);
  const d = new ForwardDecoder();
  const oneByOne: Frame[] = [];
  for (let i = 0; i < bytes.length; i++) oneByOne.push(...d.push(bytes.subarray(i, i + 1)));
  assert.deepEqual(oneByOne, whole);
});

test('property: valueEnd finds the end of any msgpack value and -1 for any prefix', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const bytes = encodeValue(v);
      assert.equal(valueEnd(bytes, 0), bytes.length);
      for (let i = 0; i < bytes.length; i++) assert.equal(valueEnd(bytes.subarray(0, i), 0), -1);
    }),
    { numRuns: 200 },
  );
});

test('shared-key handshake: right key passes both ways, wrong key fails both ways', () => {
  const nonce = newNonce();
  const ping = new ForwardDecoder().push(encodePing(nonce, 'agent-1', 'k3y', 'salt'))[0]!;
  assert.ok(ping.kind === 'handshake' && ping.type === 'PING');
  const good = checkPing(ping.body, nonce, 'k3y');
  assert.equal(good.ok, true);
  const pong = new ForwardDecoder().push(encodePong(good, 'agg', nonce, 'k3y'))[0]!;
  assert.ok(pong.kind === 'handshake');
  assert.equal(checkPong(pong.body, nonce, 'k3y', 'salt'), '');
  assert.equal(checkPong(pong.body, nonce, 'other', 'salt'), 'server failed shared key');
  const bad = checkPing(ping.body, nonce, 'wrong');
  assert.deepEqual([bad.ok, bad.reason], [false, 'shared key mismatch']);
  const refused = new ForwardDecoder().push(encodePong(bad, 'agg', nonce, 'wrong'))[0]!;
  assert.ok(refused.kind === 'handshake');
  assert.match(checkPong(refused.body, nonce, 'wrong', 'salt'), /refused: shared key mismatch/);
});
