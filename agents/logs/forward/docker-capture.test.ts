/**
 * Bytes captured from a real dockerd's fluentd log driver (testdata/, made by
 * scripts/capture-docker-frames.ts with the drop-in's log options): two Message-mode frames with
 * EventTime and a chunk to ack. Our decoder reads them whole or split at any byte, and agrees
 * with @msgpack/msgpack on every field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Decoder, ExtensionCodec } from '@msgpack/msgpack';
import { ForwardDecoder, type Frame } from './codec.js';

const dir = new URL('../../../../agents/logs/forward/testdata/', import.meta.url);
const bytes = readFileSync(new URL('docker-fluentd-message.bin', dir));
const meta = JSON.parse(readFileSync(new URL('docker-fluentd-message.json', dir), 'utf8')) as {
  container: { name: string; id: string };
};

test('frames captured from dockerd decode, whole or split anywhere, as @msgpack/msgpack reads them', () => {
  const whole = new ForwardDecoder().push(bytes);
  assert.equal(whole.length, 2);
  const ext = new ExtensionCodec();
  ext.register({
    type: 0,
    encode: () => null,
    decode: (d: Uint8Array) => {
      const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
      return { sec: v.getUint32(0), nsec: v.getUint32(4) };
    },
  });
  const reference = [...new Decoder({ extensionCodec: ext }).decodeMulti(bytes)] as [
    string,
    { sec: number; nsec: number },
    Record<string, unknown>,
    { chunk: string },
  ][];
  assert.equal(reference.length, 2);
  whole.forEach((f: Frame, i) => {
    assert.equal(f.kind, 'events');
    if (f.kind !== 'events') return;
    const [tag, time, record, option] = reference[i]!;
    assert.equal(f.mode, 'message');
    assert.equal(f.tag, tag);
    assert.equal(f.tag, meta.container.id.slice(0, 12), "Docker's default tag is {{.ID}}");
    assert.deepEqual(
      { sec: f.entries![0]!.time.sec, nsec: f.entries![0]!.time.nsec },
      time,
      'sub-second EventTime',
    );
    assert.ok(time.nsec > 0);
    assert.deepEqual(f.entries![0]!.record, record);
    assert.equal(f.option.chunk, option.chunk);
  });
  const records = reference.map((r) => r[2]);
  assert.deepEqual(
    records.map((r) => [
      r['source'],
      r['log'],
      r['service'],
      r['container_name'],
      r['container_id'],
    ]),
    [
      ['stdout', 'hello stdout', 'web', meta.container.name, meta.container.id],
      ['stderr', 'hello stderr', 'web', meta.container.name, meta.container.id],
    ],
  );
  // Split into two reads at every byte: the same two frames.
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new ForwardDecoder();
    const frames = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
    assert.deepEqual(frames, whole, `split at ${cut}`);
  }
});
