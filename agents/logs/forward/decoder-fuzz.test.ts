/**
 * Random-bytes fuzz of ForwardDecoder (seeded, FC_SEED to explore): 100,000 inputs — pure noise,
 * valid frames of every mode with bytes flipped or cut, and valid frames followed by noise.
 * Every input either yields frames or throws FrameError (never another error, never a hang),
 * and the result does not depend on how the bytes were split into reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForwardDecoder, FrameError, decodeEntries, type Frame } from './codec.js';
import { fuzzInput, rng } from './fuzz-inputs.js';

/** What a decoder makes of `bytes` read in the given pieces: frames (normalised) or the error. */
function outcome(bytes: Buffer, cuts: number[]): string {
  const d = new ForwardDecoder(1 << 20);
  const frames: Frame[] = [];
  try {
    let prev = 0;
    for (const c of [...cuts, bytes.length]) {
      frames.push(...d.push(bytes.subarray(prev, c)));
      prev = c;
    }
    // Packed entries are decoded too: a bad blob must also be a FrameError.
    for (const f of frames) if (f.kind === 'events' && f.blob) decodeEntries(f.blob);
  } catch (err) {
    if (!(err instanceof FrameError))
      throw new Error(`not a FrameError: ${String(err)} for ${bytes.toString('hex')}`);
    return 'FrameError';
  }
  // A cheap fingerprint: kinds, modes, tags and entry counts in order.
  return frames
    .map((f) =>
      f.kind === 'events'
        ? `${f.mode}:${f.tag}:${f.entries?.length ?? f.blob!.length}:${f.option.chunk ?? ''}`
        : f.kind,
    )
    .join('|');
}

test('100,000 random and mutated inputs: frames or FrameError, the same however the bytes are split', () => {
  const r = rng(Number(process.env.FC_SEED ?? 20_261_202));
  let errors = 0;
  for (let i = 0; i < 100_000; i++) {
    const b = fuzzInput(r, i);
    const whole = outcome(b, []);
    if (whole === 'FrameError') errors++;
    // Split into 1..3 reads at random points: the same outcome (a trailing partial frame simply
    // stays pending in both).
    if (i % 3 === 0) {
      const cuts = Array.from({ length: 1 + r(2) }, () => r(b.length + 1)).sort((x, y) => x - y);
      assert.equal(outcome(b, cuts), whole, `split at ${cuts} of ${b.toString('hex')}`);
    }
  }
  assert.ok(errors > 10_000, `only ${errors} inputs rejected: the fuzz is not reaching the checks`);
  assert.ok(errors < 95_000, `${errors} rejected: valid prefixes are not decoding`);
});
