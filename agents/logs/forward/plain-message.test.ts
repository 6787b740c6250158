// plainMessage (Docker's Message frame read in place) against decodeFrame: what it takes gives
// the same tag, time, record and chunk; everything else it leaves to decodeFrame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encode as specEncode } from '@msgpack/msgpack';
import { readFileSync } from 'node:fs';
import {
  EventTime,
  decodeFrame,
  encodeMessage,
  plainMessage,
  type LogRecord,
  type PlainMessage,
  valueEnd,
} from './codec.js';

const T = new EventTime(1_795_000_000, 123_456_789);
const ID = 'c'.repeat(64);
const docker = (over: LogRecord = {}): LogRecord => ({
  container_id: ID,
  container_name: '/web-1',
  source: 'stdout',
  log: 'GET / 200',
  ...over,
});

/** What decodeFrame makes of the frame, in PlainMessage's terms. */
function viaDecode(frame: Buffer): PlainMessage {
  const f = decodeFrame(frame);
  assert.equal(f.kind, 'events');
  if (f.kind !== 'events') throw new Error('unreachable');
  const e = f.entries![0]!;
  const r = e.record;
  const m: PlainMessage = {
    tag: f.tag,
    time: e.time,
    container_id: r.container_id as string,
    container_name: r.container_name as string,
    source: r.source as string,
    log: Buffer.from(r.log as string),
  };
  if (r.service !== undefined) m.service = r.service as string;
  if (f.option.chunk !== undefined) m.chunk = f.option.chunk;
  return m;
}

const same = (frame: Buffer) => {
  const m = plainMessage(frame, 0, frame.length);
  assert.ok(m, `taken: ${frame.toString('hex')}`);
  assert.deepEqual(m, viaDecode(frame));
};
const str = (s: string) => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);

test('plainMessage: Docker frames are read in place, as decodeFrame reads them', () => {
  same(encodeMessage('web', T, docker(), { chunk: 'Y2h1bms=' }));
  same(encodeMessage('web', T, docker({ service: 'api' }), { chunk: 'k1' }));
  same(encodeMessage('web', T, docker({ log: '' }))); // no option, nil option
  same(encodeMessage('web', T, docker({ log: 'ü€😀 '.repeat(20) }), { chunk: 'k' }));
  same(encodeMessage('web', T, docker({ log: 'x'.repeat(300) }), { chunk: 'k' }));
  same(encodeMessage('web', T, docker({ log: 'y'.repeat(70_000) }), { chunk: 'k' }));
  same(encodeMessage('t'.repeat(40), T, docker(), { size: 1, chunk: 'k', other: [1, { a: 2 }] }));
  // ext 8 (c7 08 00) instead of fixext 8 (d7 00) for the EventTime
  const f = encodeMessage('web', T, docker(), { chunk: 'k' });
  const at = f.indexOf(Buffer.from([0xd7, 0x00]));
  same(Buffer.concat([f.subarray(0, at), Buffer.from([0xc7, 0x08, 0x00]), f.subarray(at + 2)]));
  // inside a larger buffer: only [start, end) is read
  const pad = Buffer.concat([Buffer.from([1, 2, 3]), f, Buffer.from([0xc0])]);
  assert.equal(plainMessage(pad, 3, 3 + f.length)?.chunk, 'k');
  // a frame from another encoder (the spec's reference) reads the same
  const spec = Buffer.from(specEncode(['web', 1_795_000_000, docker(), { chunk: 'k' }]));
  assert.equal(plainMessage(spec, 0, spec.length), undefined); // integer time: decodeFrame's way
});

test("plainMessage: the frames Docker's fluentd driver sent (testdata capture) are read in place", () => {
  const bin = readFileSync(
    new URL('../../../../agents/logs/forward/testdata/docker-fluentd-message.bin', import.meta.url),
  );
  let p = 0;
  let n = 0;
  while (p < bin.length) {
    const e = valueEnd(bin, p);
    same(bin.subarray(p, e));
    assert.ok(plainMessage(bin, p, e)?.chunk);
    p = e;
    n++;
  }
  assert.equal(n, 2);
});

test('plainMessage: anything else is left to decodeFrame (undefined)', () => {
  const cases: [string, Buffer][] = [
    ['an extra record key', encodeMessage('web', T, docker({ partial_message: 'true' }))],
    [
      'a record without log',
      encodeMessage('web', T, { container_id: ID, container_name: '/a', source: 'stdout' }),
    ],
    ['a non-string value', encodeMessage('web', T, docker({ log: 5 }))],
    ['a non-string service', encodeMessage('web', T, docker({ service: ['x'] }))],
    ['a non-ASCII container name', encodeMessage('web', T, docker({ container_name: '/wéb' }))],
    ['a non-ASCII tag', encodeMessage('wéb', T, docker())],
    ['a HELO tag', encodeMessage('HELO', T, docker())],
    ['a float time', Buffer.from(specEncode(['web', 1.5, docker(), { chunk: 'k' }]))],
    ['a non-ASCII chunk', encodeMessage('web', T, docker(), { chunk: 'ké' })],
    ['a non-string chunk', Buffer.from(specEncode(['web', 1, docker(), { chunk: 1 }]))],
    ['a Forward frame', Buffer.from(specEncode(['web', [[1, docker()]]]))],
    ['a heartbeat', Buffer.from([0xc0])],
  ];
  for (const [name, f] of cases) assert.equal(plainMessage(f, 0, f.length), undefined, name);
  const f = encodeMessage('web', T, docker({ log: 'abc' }), { chunk: 'k' });
  // a log that is not UTF-8
  const bad = Buffer.from(f);
  bad[bad.indexOf('abc')] = 0xff;
  assert.equal(plainMessage(bad, 0, bad.length), undefined, 'invalid UTF-8');
  // a repeated key (msgpackr keeps the last one; left to it)
  const at = f.indexOf(Buffer.from([0xd7, 0x00]));
  const dup = Buffer.concat([
    Buffer.from([0x94]),
    str('web'),
    f.subarray(at, at + 10),
    Buffer.from([0x85]),
    ...[
      'container_id',
      'c',
      'container_name',
      '/a',
      'source',
      'stdout',
      'log',
      'a',
      'log',
      'b',
    ].map(str),
    Buffer.from([0xc0]),
  ]);
  assert.equal(
    (decodeFrame(dup) as { entries: { record: LogRecord }[] }).entries[0]!.record.log,
    'b',
  );
  assert.equal(plainMessage(dup, 0, dup.length), undefined, 'repeated key');
  // trailing bytes, and a frame cut short
  const more = Buffer.concat([f, Buffer.from([0xc0])]);
  assert.equal(plainMessage(more, 0, more.length), undefined, 'trailing byte');
  for (let cut = 1; cut < f.length; cut++)
    assert.equal(plainMessage(f, 0, cut), undefined, `cut at ${cut}`);
});

test('plainMessage agrees with decodeFrame on generated Docker frames (property, seeded)', () => {
  const ascii = fc.string({ unit: fc.constantFrom(...'abcdefghij-_/0123456789'), maxLength: 40 });
  fc.assert(
    fc.property(
      ascii,
      ascii,
      fc.constantFrom('stdout', 'stderr'),
      fc.string({ unit: 'grapheme', maxLength: 300 }),
      fc.option(ascii, { nil: undefined }),
      fc.option(fc.base64String({ minLength: 4, maxLength: 64 }), { nil: undefined }),
      fc.nat(0xffffffff),
      fc.nat(999_999_999),
      (name, tag, source, log, service, chunk, sec, nsec) => {
        const rec = docker({ container_name: name, source, log });
        if (service !== undefined) rec.service = service;
        const frame = encodeMessage(
          tag,
          new EventTime(sec, nsec),
          rec,
          chunk === undefined ? undefined : { chunk },
        );
        const m = plainMessage(frame, 0, frame.length);
        assert.ok(m);
        assert.deepEqual(m, viaDecode(frame));
      },
    ),
    { seed: 9, numRuns: 500 },
  );
});
