// Table tests of the pure query core (query.ts) over in-memory segments: the line shape the API
// returns, each filter's boundaries, and "the last N matching, oldest first" read newest-first
// only as far as needed. store.test.ts runs the same queries over the real on-disk store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventTime, type Entry, type LogRecord } from '../forward/codec.js';
import { matches, runQuery, toLine, type LogLine, type LogQuery } from './query.js';

const T0 = 1_700_000_000_000;
const at = (ms: number, record: LogRecord): Entry => ({ time: EventTime.fromMillis(ms), record });
const rec = (log: string, extra: LogRecord = {}): LogRecord => ({
  service: 'web',
  host: 'h1',
  container_name: 'web-1',
  container_id: 'abc123def',
  stream: 'stdout',
  log,
  ...extra,
});

interface Seg {
  name: string;
  tmin: number;
  tmax: number;
  entries: Entry[];
}
const seg = (name: string, entries: Entry[]): Seg => ({
  name,
  tmin: Math.min(...entries.map((e) => e.time.toMillis())),
  tmax: Math.max(...entries.map((e) => e.time.toMillis())),
  entries,
});
/** Reads like the store does (entries in the time range, stored order) and records what it read. */
function reader(log: string[]) {
  return (s: Seg, since?: number, until?: number): Entry[] => {
    log.push(s.name);
    return s.entries.filter((e) => {
      const ms = e.time.toMillis();
      return ms >= (since ?? -Infinity) && ms <= (until ?? Infinity);
    });
  };
}

test('toLine: the flat record the API and CLI see, whatever types the sender used', () => {
  const e = at(T0 + 1.5, {
    service: Buffer.from('web'),
    host: 'h1',
    container_name: 'web-1',
    container_id: 'abc',
    stream: 'stderr',
    log: Buffer.from('hello'),
  });
  assert.deepEqual(toLine(e), {
    time: '2023-11-14T22:13:20.001500000Z',
    ts: T0 + 1.5,
    service: 'web',
    host: 'h1',
    container: 'web-1',
    container_id: 'abc',
    stream: 'stderr',
    log: 'hello',
  });
  // Docker's fluentd driver calls the stream `source`; missing and null fields are empty; a
  // number is shown as its text.
  const docker = toLine(at(T0, { source: 'stdout', log: 42, host: null }));
  assert.equal(docker.stream, 'stdout');
  assert.equal(docker.log, '42');
  assert.equal(docker.host, '');
  assert.equal(docker.service, '');
  assert.equal(docker.container, '');
  assert.equal(docker.container_id, '');
  assert.equal(toLine(at(T0, { stream: 'stderr', source: 'stdout' })).stream, 'stderr');
});

test('matches: each filter and its boundaries', () => {
  const l: LogLine = toLine(at(T0, rec('GET /index.html 200')));
  const table: [string, Omit<LogQuery, 'service'>, boolean][] = [
    ['no filter', {}, true],
    ['host equal', { host: 'h1' }, true],
    ['host differs', { host: 'h2' }, false],
    ['host is not a prefix match', { host: 'h' }, false],
    ['container name', { container: 'web-1' }, true],
    ['container name prefix is not enough', { container: 'web' }, false],
    ['container id prefix', { container: 'abc1' }, true],
    ['container id in full', { container: 'abc123def' }, true],
    ['container id, not a prefix', { container: 'bc12' }, false],
    ['container miss', { container: 'db-1' }, false],
    ['since = ts (inclusive)', { since: T0 }, true],
    ['since just after', { since: T0 + 1 }, false],
    ['since before', { since: T0 - 1 }, true],
    ['until = ts (inclusive)', { until: T0 }, true],
    ['until just before', { until: T0 - 1 }, false],
    ['until after', { until: T0 + 1 }, true],
    ['since 0 is a real bound', { since: 0 }, true],
    ['grep hit', { grep: /index\.html/ }, true],
    ['grep miss', { grep: /404/ }, false],
    ['all filters, one failing', { host: 'h1', container: 'abc', since: T0, grep: /x{3}/ }, false],
    [
      'all filters, all passing',
      { host: 'h1', container: 'abc', since: T0, until: T0, grep: /200$/ },
      true,
    ],
  ];
  for (const [name, q, want] of table)
    assert.equal(matches({ service: 'web', ...q }, l), want, name);
  // A zero timestamp against an `until` of 0 and a `since` of 0.
  const zero = toLine(at(0, rec('z')));
  assert.equal(matches({ service: 'web', until: 0 }, zero), true);
  assert.equal(matches({ service: 'web', since: 1 }, zero), false);
});

test('runQuery: last N matching, oldest first, reading newest segments only as far as needed', () => {
  const segs = [
    seg('s1', [at(T0 + 0, rec('a0')), at(T0 + 1, rec('a1')), at(T0 + 2, rec('a2'))]),
    seg('s2', [
      at(T0 + 3, rec('b3')),
      at(T0 + 4, rec('b4', { host: 'h2' })),
      at(T0 + 5, rec('b5')),
    ]),
    seg('s3', [at(T0 + 6, rec('c6')), at(T0 + 7, rec('c7', { host: 'h2' }))]),
  ];
  const table: [string, LogQuery, string[], string[]][] = [
    [
      'all',
      { service: 'web' },
      ['a0', 'a1', 'a2', 'b3', 'b4', 'b5', 'c6', 'c7'],
      ['s3', 's2', 's1'],
    ],
    ['last 2: the newest segment is enough', { service: 'web', limit: 2 }, ['c6', 'c7'], ['s3']],
    ['last 3 reads one more', { service: 'web', limit: 3 }, ['b5', 'c6', 'c7'], ['s3', 's2']],
    [
      'last 5 exactly fills two',
      { service: 'web', limit: 5 },
      ['b3', 'b4', 'b5', 'c6', 'c7'],
      ['s3', 's2'],
    ],
    [
      'last 8 = all',
      { service: 'web', limit: 8 },
      ['a0', 'a1', 'a2', 'b3', 'b4', 'b5', 'c6', 'c7'],
      ['s3', 's2', 's1'],
    ],
    [
      'last 100',
      { service: 'web', limit: 100 },
      ['a0', 'a1', 'a2', 'b3', 'b4', 'b5', 'c6', 'c7'],
      ['s3', 's2', 's1'],
    ],
    ['limit 0', { service: 'web', limit: 0 }, [], ['s3']],
    ['filter then limit', { service: 'web', host: 'h2', limit: 2 }, ['b4', 'c7'], ['s3', 's2']],
    ['filter then limit 1', { service: 'web', host: 'h2', limit: 1 }, ['c7'], ['s3']],
    ['no match reads all', { service: 'web', host: 'h9', limit: 1 }, [], ['s3', 's2', 's1']],
    // Segment ranges are inclusive: a segment whose tmax is `since` (or tmin is `until`) is read.
    [
      'since = tmax of s1',
      { service: 'web', since: T0 + 2 },
      ['a2', 'b3', 'b4', 'b5', 'c6', 'c7'],
      ['s3', 's2', 's1'],
    ],
    [
      'since after s1',
      { service: 'web', since: T0 + 3 },
      ['b3', 'b4', 'b5', 'c6', 'c7'],
      ['s3', 's2'],
    ],
    [
      'until = tmin of s3',
      { service: 'web', until: T0 + 6 },
      ['a0', 'a1', 'a2', 'b3', 'b4', 'b5', 'c6'],
      ['s3', 's2', 's1'],
    ],
    [
      'until before s3',
      { service: 'web', until: T0 + 5 },
      ['a0', 'a1', 'a2', 'b3', 'b4', 'b5'],
      ['s2', 's1'],
    ],
    ['a window inside s2', { service: 'web', since: T0 + 4, until: T0 + 4 }, ['b4'], ['s2']],
    ['a window between entries', { service: 'web', since: T0 + 8, until: T0 + 9 }, [], []],
    [
      'window and limit',
      { service: 'web', since: T0 + 1, until: T0 + 6, limit: 4 },
      ['b3', 'b4', 'b5', 'c6'],
      ['s3', 's2'],
    ],
  ];
  for (const [name, q, want, read] of table) {
    const log: string[] = [];
    const got = runQuery(q, segs, reader(log));
    assert.deepEqual(
      got.map((l) => l.log),
      want,
      name,
    );
    assert.deepEqual(log, read, `${name}: segments read`);
  }
});

test('runQuery: ordered by time across overlapping segments, arrival order breaking ties', () => {
  // An agent that reconnected late: s2 holds records older than the end of s1.
  const segs = [
    seg('s1', [at(T0 + 10, rec('x10')), at(T0 + 30, rec('x30')), at(T0 + 30, rec('y30'))]),
    seg('s2', [at(T0 + 20, rec('z20')), at(T0 + 30, rec('z30')), at(T0 + 5, rec('z5'))]),
  ];
  const got = runQuery({ service: 'web' }, segs, reader([]));
  assert.deepEqual(
    got.map((l) => l.log),
    ['z5', 'x10', 'z20', 'x30', 'y30', 'z30'],
  );
});

test('runQuery: split lines are joined within a segment, an unfinished one is emitted with what it has', () => {
  const piece = (ms: number, id: string, ord: number, last: boolean, log: string) =>
    at(
      T0 + ms,
      rec(log, {
        partial_message: 'true',
        partial_id: id,
        partial_ordinal: String(ord),
        partial_last: String(last),
      }),
    );
  const segs = [
    seg('s1', [
      piece(0, 'p', 1, false, 'hel'),
      at(T0 + 1, rec('whole')),
      piece(2, 'p', 2, true, 'lo'),
      piece(3, 'q', 1, false, 'cut off'),
    ]),
  ];
  const got = runQuery({ service: 'web' }, segs, reader([]));
  assert.deepEqual(
    got.map((l) => [l.log, l.ts]),
    [
      ['hello', T0],
      ['whole', T0 + 1],
      ['cut off', T0 + 3],
    ],
  );
  // The joined line is what grep sees.
  assert.deepEqual(
    runQuery({ service: 'web', grep: /^hello$/ }, segs, reader([])).map((l) => l.log),
    ['hello'],
  );
});
