// `logs tail --json` stays one valid JSON object per record whatever bytes a container wrote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loopbackAggregator } from './testdata/loopback-aggregator.js';
import type { LogLine } from './aggregator/query.js';
import { EventTime, encodeEntry, encodeValue } from './forward/codec.js';

const CLI = fileURLToPath(new URL('./cli-main.js', import.meta.url));
const run = promisify(execFile);

/** A msgpack entry whose `log` is a str holding exactly these bytes (may be invalid UTF-8). */
function rawStrEntry(t: EventTime, bytes: Buffer): Buffer {
  const head = encodeValue([t, { service: 'evil', host: 'h', container_name: 'c', log: 'X' }]);
  // Replace the 1-byte fixstr "X" (0xa1 0x58) at the end with a str8 of `bytes`.
  assert.deepEqual([...head.subarray(-2)], [0xa1, 0x58]);
  return Buffer.concat([head.subarray(0, -2), Buffer.from([0xd9, bytes.length]), bytes]);
}

test('logs tail --json: any bytes of a record give one valid JSON line each', async () => {
  const { agg, stop } = await loopbackAggregator('flt-logs-json-');
  try {
    const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('');
    const texts = [
      `all C0: ${controls}\x7f`,
      'newlines\ninside\r\nand U+2028\u2028 U+2029\u2029',
      'quotes " and \\ backslash',
      'a lone surrogate \ud800 here',
      '\x1b]0;title\x07\x1b[2J bidi \u202e',
    ];
    const now = Date.now();
    const t = (i: number) => EventTime.fromMillis(now - 1000 + i);
    const entries = texts.map((log, i) =>
      encodeEntry(t(i), { service: 'evil', host: 'h', container_name: 'c', log }),
    );
    // Invalid UTF-8 in a str, and a bin value, as a non-Docker sender might write them.
    entries.push(rawStrEntry(t(10), Buffer.from([0xff, 0xfe, 0x0a, 0xc3, 0x28, 0x00])));
    entries.push(
      encodeEntry(t(11), { service: 'evil', host: 'h', log: Buffer.from([0x80, 0x0a, 0x1b]) }),
    );
    const blob = Buffer.concat(entries);
    agg.store.ingest({
      parts: [{ service: 'evil', count: entries.length, blob, tmin: now - 1000, tmax: now }],
    });
    const out = await run(process.execPath, [
      CLI,
      'tail',
      '--service=evil',
      '-n',
      '0',
      '--json',
      `--server=http://127.0.0.1:${agg.httpPort}`,
    ]);
    const lines = out.stdout.split('\n');
    assert.equal(lines.pop(), '', 'ends with a newline');
    assert.equal(lines.length, entries.length, 'one line per record, none split by its text');
    const objs = lines.map((l) => JSON.parse(l) as LogLine);
    // Well-formed strings come back exactly; a lone surrogate (not encodable as UTF-8, so
    // msgpack carries it as bytes that are not UTF-8) comes back as U+FFFD.
    assert.deepEqual(
      objs.slice(0, texts.length).map((o) => o.log),
      texts.map((x) => x.replace('\ud800', '\ufffd\ufffd\ufffd')),
    );
    // Invalid UTF-8 becomes U+FFFD, never a raw byte that breaks the JSON or the line.
    assert.equal(objs[5]!.log, '\ufffd\ufffd\n\ufffd(\x00');
    assert.equal(objs[6]!.log, '\ufffd\n\x1b');
    for (const l of lines) {
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\x00-\x1f]/.test(l), `raw control character in ${JSON.stringify(l)}`);
      assert.ok(Buffer.from(l).toString() === l, 'valid UTF-8');
    }
  } finally {
    await stop();
  }
});
