// The aggregator's onward output (`--forward-out`, forward-out.ts) against a real forward
// receiver on loopback: batches wait in the in-memory queue while the receiver is down and
// arrive in order once it is up; unacked frames are resent after a reconnect; on overflow the
// oldest unsent batches are dropped and counted, the newest kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { createLogger } from '../../common/logger.js';
import { waitFor } from '../../../test/harness/proc.js';
import {
  EventTime,
  ForwardDecoder,
  decodeEntries,
  encodeAck,
  encodeEntry,
  encodePacked,
} from '../forward/codec.js';
import { ForwardOut } from './forward-out.js';
import type { Part } from './store.js';

const log = createLogger('test', 'silent');

const part = (service: string, lines: string[]): Part => {
  const t0 = 1_700_000_000_000;
  const blob = Buffer.concat(
    lines.map((l, i) => encodeEntry(EventTime.fromMillis(t0 + i), { service, log: l })),
  );
  return { service, count: lines.length, blob, tmin: t0, tmax: t0 + lines.length };
};

/** A forward receiver: records every PackedForward frame's tag and lines; acks unless told not to. */
function receiver(port = 0) {
  const got: { tag: string; lines: string[]; chunk: string; option: Record<string, unknown> }[] =
    [];
  const sockets = new Set<Socket>();
  let ack = true;
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    const dec = new ForwardDecoder();
    s.on('data', (d) => {
      for (const f of dec.push(d)) {
        if (f.kind !== 'events') continue;
        const lines = decodeEntries(f.blob!).map((e) => String(e.record.log));
        got.push({
          tag: f.tag,
          lines,
          chunk: f.option.chunk!,
          option: f.option as Record<string, unknown>,
        });
        if (ack) s.write(encodeAck(f.option.chunk!));
      }
    });
  });
  return {
    got,
    setAck(v: boolean) {
      ack = v;
    },
    listen: () =>
      new Promise<number>((resolve) =>
        server.listen(port, '127.0.0.1', () =>
          resolve((server.address() as { port: number }).port),
        ),
      ),
    dropClients() {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on yet (taken from a listener closed at once). */
async function freePort(): Promise<number> {
  const r = receiver();
  const port = await r.listen();
  await r.close();
  return port;
}

test('forward-out: batches queue while the receiver is down and arrive in order, as PackedForward with acks', async () => {
  const port = await freePort();
  const out = new ForwardOut({ host: '127.0.0.1', port }, log);
  const r = receiver(port);
  try {
    for (let i = 0; i < 5; i++) out.send([part('web', [`a${i}`, `b${i}`])]);
    out.send([part('db', ['d0'])]);
    // The receiver comes up later; the sender retries once a second.
    await new Promise((res) => setTimeout(res, 300));
    await r.listen();
    await waitFor('six batches forwarded', () => r.got.length >= 6, 10_000);
    assert.deepEqual(
      r.got.map((g) => [g.tag, g.lines]),
      [
        ['web', ['a0', 'b0']],
        ['web', ['a1', 'b1']],
        ['web', ['a2', 'b2']],
        ['web', ['a3', 'b3']],
        ['web', ['a4', 'b4']],
        ['db', ['d0']],
      ],
    );
    for (const g of r.got) {
      assert.equal(g.option['size'], g.lines.length, 'option.size is the entry count');
      assert.ok(g.chunk.length >= 16, 'each frame asks for an ack with a chunk id');
    }
    assert.equal(new Set(r.got.map((g) => g.chunk)).size, 6, 'chunk ids are unique');
    assert.equal(out.dropped, 0);
    // Acked batches are not sent again after a reconnect.
    r.dropClients();
    out.send([part('web', ['after reconnect'])]);
    await waitFor('the next batch after a reconnect', () => r.got.length >= 7, 10_000);
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(
      r.got.slice(6).map((g) => g.lines),
      [['after reconnect']],
    );
  } finally {
    out.stop();
    await r.close();
  }
});

test('forward-out: frames not acked are resent after the connection drops', async () => {
  const r = receiver();
  const port = await r.listen();
  const out = new ForwardOut({ host: '127.0.0.1', port }, log);
  try {
    r.setAck(false);
    out.send([part('web', ['x0']), part('web', ['x1'])]);
    await waitFor('two frames received unacked', () => r.got.length >= 2, 10_000);
    r.setAck(true);
    r.dropClients();
    await waitFor('both resent', () => r.got.length >= 4, 10_000);
    assert.deepEqual(
      r.got.map((g) => g.lines[0]),
      ['x0', 'x1', 'x0', 'x1'],
    );
    assert.deepEqual(
      r.got.slice(2).map((g) => g.chunk),
      r.got.slice(0, 2).map((g) => g.chunk),
      'the same chunk ids, so a receiver that dedups can drop the copies',
    );
  } finally {
    out.stop();
    await r.close();
  }
});

test('forward-out: a full queue drops the oldest unsent batches, counts them, keeps the newest', async () => {
  const port = await freePort();
  const one = part('web', ['p00']);
  // Room for exactly ten frames (a chunk id is 16 base64 characters).
  const frameSize = encodePacked('web', one.blob, 1, { chunk: 'x'.repeat(16) }).length;
  const out = new ForwardOut({ host: '127.0.0.1', port }, log, frameSize * 10);
  const r = receiver(port);
  try {
    for (let i = 0; i < 50; i++) out.send([part('web', [`p${String(i).padStart(2, '0')}`])]);
    assert.equal(out.dropped, 40);
    const kept = 10;
    await r.listen();
    await waitFor('the kept batches forwarded', () => r.got.length >= kept, 10_000);
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(
      r.got.map((g) => g.lines[0]),
      Array.from({ length: kept }, (_, i) => `p${String(50 - kept + i).padStart(2, '0')}`),
      'the newest batches, in order',
    );
  } finally {
    out.stop();
    await r.close();
  }
});
