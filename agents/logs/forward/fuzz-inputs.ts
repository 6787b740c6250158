/**
 * Seeded fuzz inputs for the forward protocol (test helper): pure noise, valid frames of every
 * mode with bytes flipped or cut short, and valid frames followed by noise, in turn.
 */
import {
  EventTime,
  encodeAck,
  encodeEntry,
  encodeForward,
  encodeMessage,
  encodePacked,
  encodeValue,
} from './codec.js';
import { encodeHelo } from './handshake.js';

/** xorshift32: fast and reproducible. */
export function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const t = new EventTime(1_700_000_000, 42);
const rec = { log: 'a line', source: 'stdout', container_id: 'c'.repeat(64) };
const entries = [encodeEntry(t, rec), encodeEntry(t, { ...rec, log: 'two' })];
export const VALID = [
  encodeMessage('docker.web', t, rec, { chunk: 'abc' }),
  encodeMessage('docker.web', 1_700_000_000, rec),
  encodeForward('app', [
    { time: t, record: rec },
    { time: t, record: { n: 1 } },
  ]),
  encodePacked('app', Buffer.concat(entries), 2, { chunk: 'p' }),
  encodePacked('app', Buffer.concat(entries), 2, {}, true),
  encodeAck('abc'),
  encodeValue(null),
  encodeHelo(Buffer.alloc(16, 7)),
];

/** Input number `i` (its kind cycles through noise, flipped, cut, trailing). */
export function fuzzInput(r: (n: number) => number, i: number): Buffer {
  const base = VALID[r(VALID.length)]!;
  switch (i % 4) {
    case 0: {
      const b = Buffer.alloc(1 + r(48));
      for (let j = 0; j < b.length; j++) b[j] = r(256);
      return b;
    }
    case 1: {
      const b = Buffer.from(base);
      for (let k = 0; k <= r(3); k++) b[r(b.length)] = r(256);
      return b;
    }
    case 2:
      return base.subarray(0, r(base.length));
    default: {
      const noise = Buffer.alloc(1 + r(16));
      for (let j = 0; j < noise.length; j++) noise[j] = r(256);
      return Buffer.concat([base, noise]);
    }
  }
}
