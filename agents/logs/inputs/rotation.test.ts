import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideStart, nextFile, parseLogName, parseMaxSize, type LogFile } from './rotation.js';
import type { Checkpoint } from './checkpoint.js';

const ID = 'c'.repeat(64);
const f = (index: number, inode: number, size = 1000, compressed = false): LogFile => ({
  name: `${ID}-json.log${index ? `.${index}` : ''}${compressed ? '.gz' : ''}`,
  index,
  inode,
  size,
  fp: `fp${inode}`,
  compressed,
});
const cp = (inode: number, offset: number, size = offset): Checkpoint => ({
  inode,
  fp: `fp${inode}`,
  src: `s${inode}`,
  offset,
  seq: 50,
  size,
});

test('parseLogName: the current file, its rotations, compressed ones; nothing else', () => {
  const cases: [string, ReturnType<typeof parseLogName>][] = [
    [`${ID}-json.log`, { index: 0, compressed: false }],
    [`${ID}-json.log.1`, { index: 1, compressed: false }],
    [`${ID}-json.log.12.gz`, { index: 12, compressed: true }],
    [`${ID}-json.log.tmp`, undefined],
    ['config.v2.json', undefined],
    [`${'d'.repeat(64)}-json.log`, undefined],
  ];
  for (const [name, want] of cases) assert.deepEqual(parseLogName(ID, name), want, name);
});

test('parseMaxSize: docker sizes', () => {
  const cases: [string | undefined, number | undefined][] = [
    ['50m', 50 * 1024 ** 2],
    ['200k', 200 * 1024],
    ['1g', 1024 ** 3],
    ['4096', 4096],
    [undefined, undefined],
    ['lots', undefined],
  ];
  for (const [v, want] of cases) assert.equal(parseMaxSize(v), want, String(v));
});

test('decideStart: resume, start over, and count what rotation took', () => {
  const cases: {
    name: string;
    cp?: Checkpoint;
    files: LogFile[];
    maxSize?: number;
    want: { inode?: number; offset: number; seq: number; src?: string; skipped: number };
  }[] = [
    {
      name: 'no checkpoint: the oldest file from its start',
      files: [f(0, 3), f(2, 1), f(1, 2)],
      want: { inode: 1, offset: 0, seq: 1, skipped: 0 },
    },
    { name: 'no files yet', files: [], want: { offset: 0, seq: 1, skipped: 0 } },
    {
      name: 'checkpointed file still current',
      cp: cp(3, 500),
      files: [f(0, 3)],
      want: { inode: 3, offset: 500, seq: 50, src: 's3', skipped: 0 },
    },
    {
      name: 'checkpointed file was rotated (renamed): resume in it',
      cp: cp(3, 500),
      files: [f(0, 4), f(1, 3)],
      want: { inode: 3, offset: 500, seq: 50, src: 's3', skipped: 0 },
    },
    {
      name: 'checkpointed file deleted: oldest left, lost bytes at least max-size minus offset',
      cp: cp(3, 500, 800),
      files: [f(0, 6), f(1, 5), f(2, 4)],
      maxSize: 1000,
      want: { inode: 4, offset: 0, seq: 1, skipped: 500 },
    },
    {
      name: 'deleted, without max-size: what was seen unread',
      cp: cp(3, 500, 800),
      files: [f(0, 6)],
      want: { inode: 6, offset: 0, seq: 1, skipped: 300 },
    },
    {
      name: 'same inode, other first line (recycled inode): start over',
      cp: { ...cp(3, 500), fp: 'other' },
      files: [f(0, 3)],
      want: { inode: 3, offset: 0, seq: 1, skipped: 0 },
    },
    {
      name: 'same inode but shorter than the offset (truncated): start over',
      cp: cp(3, 5000),
      files: [f(0, 3, 1000)],
      want: { inode: 3, offset: 0, seq: 1, skipped: 0 },
    },
    {
      name: 'compressed rotations older than the first plain file are refused and counted',
      files: [f(0, 9, 100), f(1, 8, 300, true), f(2, 7, 200, true)],
      want: { inode: 9, offset: 0, seq: 1, skipped: 500 },
    },
  ];
  for (const c of cases) {
    const d = decideStart(c.cp, c.files, c.maxSize);
    assert.deepEqual(
      { inode: d.file?.inode, offset: d.offset, seq: d.seq, src: d.src, skipped: d.skipped },
      { inode: undefined, src: undefined, ...c.want },
      c.name,
    );
    if (d.skipped > 0) assert.ok(d.reasons.length > 0, `${c.name}: a reason to log`);
  }
});

test('nextFile: the next newer file after a finished one', () => {
  const files = [f(0, 5), f(1, 4), f(2, 3, 10, true), f(3, 2)];
  assert.equal(nextFile(files, 2).file?.inode, 4, 'skips the compressed one');
  assert.deepEqual(
    nextFile(files, 2).refused.map((r) => r.inode),
    [3],
  );
  assert.equal(nextFile(files, 4).file?.inode, 5);
  assert.equal(nextFile(files, 5).file, undefined, 'the newest has no successor yet');
  assert.equal(nextFile([f(0, 7), f(1, 6)], 1).file?.inode, 6, 'deleted: the oldest left');
});
