/**
 * The handshake's refusals, one row each: a PING or PONG with missing or mistyped fields, a
 * refusing server, a HELO nonce as bin, str or missing (fluentd sends bin; older peers str).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPing, checkPong, encodeHelo, encodePong, parseHelo } from './handshake.js';
import { ForwardDecoder } from './codec.js';

const NONCE = Buffer.from('0123456789abcdef');
const KEY = 'k';

test('a PING with a field missing or of the wrong type is refused as malformed', () => {
  for (const body of [
    [],
    [1, 'salt', 'digest'],
    ['host', 2, 'digest'],
    ['host', 'salt', 3],
    ['host', 'salt'],
  ]) {
    const c = checkPing(body, NONCE, KEY);
    assert.deepEqual(
      c,
      { ok: false, reason: 'malformed PING', salt: '', clientHost: '' },
      JSON.stringify(body),
    );
  }
  const wrong = checkPing(['host', 'salt', 'f'.repeat(128), '', ''], NONCE, KEY);
  assert.deepEqual(wrong, {
    ok: false,
    reason: 'shared key mismatch',
    salt: 'salt',
    clientHost: 'host',
  });
  // A digest of the wrong length is a mismatch, not a crash.
  assert.equal(checkPing(['host', 'salt', 'abc', '', ''], NONCE, KEY).ok, false);
  assert.equal(checkPong([true, '', 'h', 'abc'], NONCE, KEY, 's'), 'server failed shared key');
  // A refused PING gets a PONG saying so, with no digest.
  const pong = new ForwardDecoder().push(encodePong(wrong, 'srv', NONCE, KEY))[0];
  assert.deepEqual(pong, {
    kind: 'handshake',
    type: 'PONG',
    body: [false, 'shared key mismatch', 'srv', ''],
  });
});

test('a PONG that refuses, is malformed or carries a wrong digest is an error naming why', () => {
  assert.equal(
    checkPong([false, 'shared key mismatch'], NONCE, KEY, 's'),
    'server refused: shared key mismatch',
  );
  assert.equal(checkPong([false, 7], NONCE, KEY, 's'), 'server refused: no reason');
  assert.equal(checkPong(['yes', 'odd', 'h', 'd'], NONCE, KEY, 's'), 'server refused: odd');
  assert.equal(checkPong([true, '', 5, 'd'], NONCE, KEY, 's'), 'malformed PONG');
  assert.equal(checkPong([true, '', 'h', 6], NONCE, KEY, 's'), 'malformed PONG');
  assert.equal(
    checkPong([true, '', 'h', 'd'.repeat(128)], NONCE, KEY, 's'),
    'server failed shared key',
  );
});

test('HELO: the nonce is read as bin or str; no nonce is an error; we send auth "" and keepalive', () => {
  assert.deepEqual(parseHelo([{ nonce: NONCE }]), NONCE);
  assert.deepEqual(parseHelo([{ nonce: new Uint8Array(NONCE) }]), NONCE);
  assert.deepEqual(parseHelo([{ nonce: NONCE.toString('binary') }]), NONCE);
  // A str nonce carries raw bytes (latin1), also above 0x7f.
  const high = Buffer.from([0xff, 0x80, 0x00, 0xc3, 0xa9]);
  assert.deepEqual(parseHelo([{ nonce: high.toString('latin1') }]), high);
  assert.throws(() => parseHelo([{}]), /HELO without nonce/);
  assert.throws(() => parseHelo([]), /HELO without nonce/);
  assert.throws(() => parseHelo([{ nonce: 5 }]), /HELO without nonce/);
  const f = new ForwardDecoder().push(encodeHelo(NONCE))[0]!;
  assert.equal(f.kind, 'handshake');
  if (f.kind !== 'handshake') return;
  const opts = f.body[0] as { nonce: Uint8Array; auth: string; keepalive: boolean };
  assert.deepEqual(Buffer.from(opts.nonce), NONCE);
  assert.equal(opts.auth, '');
  assert.equal(opts.keepalive, true);
});
