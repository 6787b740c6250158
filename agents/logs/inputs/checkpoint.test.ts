import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CheckpointError,
  decodeCheckpoints,
  encodeCheckpoints,
  type Checkpoint,
} from './checkpoint.js';

const cp: Checkpoint = {
  inode: 42,
  fp: 'ab12',
  src: 'c1:42:ab12',
  offset: 1000,
  seq: 17,
  size: 2000,
};

test('checkpoints round-trip through the file format', () => {
  const all = { ['a'.repeat(64)]: cp, ['b'.repeat(64)]: { ...cp, fp: '', offset: 0, seq: 1 } };
  assert.deepEqual(decodeCheckpoints(encodeCheckpoints(all)), all);
  assert.deepEqual(decodeCheckpoints(encodeCheckpoints({})), {});
});

test('a bad checkpoint file is a CheckpointError saying what is wrong', () => {
  const bad: [string, RegExp][] = [
    ['{', /not JSON/],
    ['{"version":2,"containers":{}}', /"version" must be 1/],
    ['{"version":1}', /"containers" must be an object/],
    ['{"version":1,"containers":[]}', /"containers" must be an object/],
    [
      JSON.stringify({ version: 1, containers: { x: { ...cp, offset: -1 } } }),
      /container x: needs/,
    ],
    [JSON.stringify({ version: 1, containers: { x: { ...cp, seq: 0 } } }), /container x/],
    [JSON.stringify({ version: 1, containers: { x: { ...cp, src: '' } } }), /container x/],
    [JSON.stringify({ version: 1, containers: { x: { ...cp, inode: '42' } } }), /container x/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => decodeCheckpoints(text), CheckpointError, text);
    assert.throws(() => decodeCheckpoints(text), re, text);
  }
});
