import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeEntries, EventTime } from '../forward/codec.js';
import {
  JsonLineError,
  LineJoiner,
  encodeRecord,
  parseLine,
  parseTime,
  parseLineJson,
  recordBound,
  recordTail,
  type JsonLine,
} from './json-file.js';

test('parseTime: RFC 3339 as dockerd writes it → seconds and nanoseconds', () => {
  const cases: [string, number, number][] = [
    ['2026-12-02T10:00:00.123456789Z', Date.UTC(2026, 11, 2, 10) / 1000, 123456789],
    ['2026-12-02T10:00:00.5Z', Date.UTC(2026, 11, 2, 10) / 1000, 500000000],
    ['2026-12-02T10:00:00Z', Date.UTC(2026, 11, 2, 10) / 1000, 0],
    ['2026-12-02T12:00:00.000000001+02:00', Date.UTC(2026, 11, 2, 10) / 1000, 1],
    // the cached whole-second part must not leak into the next second
    ['2026-12-02T10:00:01.25Z', Date.UTC(2026, 11, 2, 10) / 1000 + 1, 250000000],
    // the same second again (the fast path), with each fraction length
    ['2026-12-02T10:00:01Z', Date.UTC(2026, 11, 2, 10) / 1000 + 1, 0],
    ['2026-12-02T10:00:01.1Z', Date.UTC(2026, 11, 2, 10) / 1000 + 1, 100000000],
    ['2026-12-02T10:00:01.000000007Z', Date.UTC(2026, 11, 2, 10) / 1000 + 1, 7],
    ['2026-12-02T10:00:01.12345678Z', Date.UTC(2026, 11, 2, 10) / 1000 + 1, 123456780],
    // an offset after a cached "Z" second of the same text: not taken for Z
    ['2026-12-02T10:00:01.5+01:00', Date.UTC(2026, 11, 2, 9) / 1000 + 1, 500000000],
  ];
  for (const [text, sec, nsec] of cases) {
    const t = parseTime(text);
    assert.deepEqual([t.sec, t.nsec], [sec, nsec], text);
  }
  for (const bad of [
    'yesterday',
    '2026-12-02 10:00:00Z',
    '2026-12-02T10:00:00.1234567891Z',
    '',
    // after a cached second: a bad fraction, an empty one, a stray character
    '2026-12-02T10:00:01.12x4Z',
    '2026-12-02T10:00:01.Z',
    '2026-12-02T10:00:01xZ',
    '2026-12-02T10:00:01.1234567890Z',
  ])
    assert.throws(() => parseTime(bad), JsonLineError, bad);
});

test('parseLine: json-file lines → fields; anything else is a JsonLineError naming the problem', () => {
  const ok = parseLine('{"log":"hi\\n","stream":"stderr","time":"2026-12-02T10:00:00Z"}');
  assert.deepEqual([ok.log, ok.stream, ok.time.nsec], ['hi\n', 'stderr', 0]);
  const attrs = parseLine(
    '{"log":"a\\n","stream":"stdout","attrs":{"service":"x"},"time":"2026-12-02T10:00:00Z"}',
  );
  assert.equal(attrs.log, 'a\n');
  const bad: [string, RegExp][] = [
    ['not json', /not JSON/],
    ['{"stream":"stdout","time":"2026-12-02T10:00:00Z"}', /no "log"/],
    ['{"log":"x\\n","stream":"stdout"}', /no "time"/],
    ['{"log":"x\\n","time":"noon"}', /not RFC 3339/],
    ['[1,2]', /no "log"/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseLine(text), re, text);
});

const t0 = new EventTime(100, 0);
const t1 = new EventTime(101, 0);
const L = (log: string, stream = 'stdout', time = t0): JsonLine => ({ log, stream, time });

test('LineJoiner: 16 KiB pieces are joined per stream; pending says when a checkpoint is unsafe', () => {
  type Step = [JsonLine, string | undefined, boolean];
  const cases: { name: string; steps: Step[] }[] = [
    { name: 'a whole line', steps: [[L('a\n'), 'a', false]] },
    {
      name: 'three pieces',
      steps: [
        [L('x'.repeat(16384)), undefined, true],
        [L('y'.repeat(16384), 'stdout', t1), undefined, true],
        [L('z\n', 'stdout', t1), 'x'.repeat(16384) + 'y'.repeat(16384) + 'z', false],
      ],
    },
    {
      name: 'a stderr line between the pieces of a stdout line',
      steps: [
        [L('part-'), undefined, true],
        [L('err\n', 'stderr'), 'err', true],
        [L('end\n'), 'part-end', false],
      ],
    },
    { name: 'an empty line', steps: [[L('\n'), '', false]] },
  ];
  for (const c of cases) {
    const j = new LineJoiner();
    for (const [line, want, pending] of c.steps) {
      assert.equal(j.push(line)?.log, want, c.name);
      assert.equal(j.pending, pending, `${c.name}: pending`);
    }
  }
  const j = new LineJoiner();
  j.push(L('no newline at exit'));
  const flushed = j.flush();
  assert.deepEqual(
    flushed.map((l) => l.log),
    ['no newline at exit'],
  );
  assert.equal(j.pending, false);
  // the joined line keeps the time of its first piece
  const k = new LineJoiner();
  k.push(L('a', 'stdout', t0));
  assert.equal(k.push(L('b\n', 'stdout', t1))!.time, t0);
});

test('encodeRecord writes the msgpack entry the aggregator stores (same as the generic encoder)', () => {
  const tail = recordTail({
    service: 'web',
    host: 'h1',
    container_name: 'web-1',
    container_id: 'c'.repeat(64),
  });
  for (const log of ['', 'short', 'ü'.repeat(40), 'x'.repeat(300), 'y'.repeat(70_000)]) {
    const line = { log, stream: 'stderr', time: new EventTime(1_795_000_000, 123456789) };
    const out = Buffer.alloc(recordBound(line, tail));
    const end = encodeRecord(out, 0, line, tail);
    const [e] = decodeEntries(out.subarray(0, end));
    assert.deepEqual([e!.time.sec, e!.time.nsec], [1_795_000_000, 123456789]);
    assert.deepEqual(e!.record, {
      log,
      stream: 'stderr',
      service: 'web',
      host: 'h1',
      container_name: 'web-1',
      container_id: 'c'.repeat(64),
    });
  }
});

test("parseLine: the fast path for dockerd's own layout gives what JSON.parse gives (property, seeded)", () => {
  const time = fc
    .tuple(fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 999_999_999 }))
    .map(([s, ns]) => {
      const frac = String(ns).padStart(9, '0').replace(/0+$/, '');
      return `2026-12-02T10:00:${String(s).padStart(2, '0')}${frac ? `.${frac}` : ''}Z`;
    });
  fc.assert(
    fc.property(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.boolean(),
      fc.constantFrom('stdout', 'stderr'),
      time,
      (text, newline, stream, t) => {
        const line = JSON.stringify({ log: newline ? `${text}\n` : text, stream, time: t });
        assert.deepEqual(parseLine(line), parseLineJson(line));
      },
    ),
    { seed: 20_261_202, numRuns: 5000 },
  );
  // Layouts the fast path leaves to JSON.parse, with the same result.
  for (const line of [
    '{"log":"a\\"b\\n","stream":"stdout","time":"2026-12-02T10:00:00Z"}',
    '{"log":"tab\\there\\n","stream":"stderr","time":"2026-12-02T10:00:00.5Z"}',
    '{"log":"x\\n","stream":"stdout","attrs":{"service":"web"},"time":"2026-12-02T10:00:00Z"}',
    '{"stream":"stdout","log":"x\\n","time":"2026-12-02T10:00:00Z"}',
    '{"log":"ends in a backslash \\\\n","stream":"stdout","time":"2026-12-02T10:00:00Z"}',
  ])
    assert.deepEqual(parseLine(line), parseLineJson(line), line);
});
