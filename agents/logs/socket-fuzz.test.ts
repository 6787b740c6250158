/**
 * Random-bytes fuzz of the agent's forward socket (seeded): 2,000 connections, 50 at a time, each
 * sending one fuzz input (noise, a valid frame flipped, cut or followed by noise) in 1–3 writes.
 * The agent must survive all of it, close every connection (none left open), count the
 * malformed ones, and still store and ack a good driver's line afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../common/logger.js';
import { startAgent } from './agent.js';
import { EventTime, ForwardDecoder, encodeMessage } from './forward/codec.js';
import { fuzzInput, rng } from './forward/fuzz-inputs.js';
import { freePort } from '../../test/harness/local-etcd.js';
import { waitFor, withDeadline } from '../../test/harness/proc.js';

const log = createLogger('socket-fuzz-test', 'silent');

function fuzzOne(port: number, input: Buffer, cuts: number[]): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    s.on('data', () => undefined);
    s.once('connect', () => {
      let prev = 0;
      for (const c of [...cuts, input.length]) {
        s.write(input.subarray(prev, c));
        prev = c;
      }
      // Half-close: a cut frame stays pending until we go; the agent ends its side then.
      s.end();
    });
  });
}

for (const io of ['native', 'node'] as const)
  test(`--forward-io ${io}: 2,000 fuzzed connections: the agent survives, closes each, and still acks a good line`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flt-sockfuzz-'));
    const agent = await startAgent({
      listen: { host: '127.0.0.1', port: 0 },
      forwardIo: io,
      bufferDir: join(dir, 'buf'),
      bufferMaxBytes: 64 << 20,
      fsync: 'never',
      aggregators: [{ host: '127.0.0.1', port: await freePort() }],
      hostname: 'h1',
      log,
    });
    try {
      const r = rng(Number(process.env.FC_SEED ?? 20_261_202));
      const jobs = Array.from({ length: 2000 }, (_, i) => {
        const input = fuzzInput(r, i);
        const cuts = Array.from({ length: r(3) }, () => r(input.length + 1)).sort((a, b) => a - b);
        return { input, cuts };
      });
      const run = async () => {
        for (let j = jobs.shift(); j; j = jobs.shift()) await fuzzOne(agent.port, j.input, j.cuts);
      };
      await withDeadline(
        Promise.all(Array.from({ length: 50 }, run)),
        120_000,
        'fuzzed connections closed',
      );
      const metrics = await agent.metrics.registry.metrics();
      const malformed = Number(/flotilla_logs_agent_malformed_total (\d+)/.exec(metrics)?.[1]);
      assert.ok(malformed > 500, `only ${malformed} connections counted malformed`);
      // A good driver still gets its line stored and acked.
      const s = connect({ host: '127.0.0.1', port: agent.port });
      const dec = new ForwardDecoder();
      const acked = new Promise<string>((resolve) =>
        s.on('data', (d: Buffer) => {
          for (const f of dec.push(d)) if (f.kind === 'ack') resolve(f.chunk);
        }),
      );
      const before = agent.buffer.backlog;
      s.write(
        encodeMessage(
          't',
          EventTime.fromMillis(Date.now()),
          { log: 'after fuzz' },
          { chunk: 'good' },
        ),
      );
      assert.equal(await withDeadline(acked, 10_000, 'ack after the fuzz'), 'good');
      // Acked once safe (the native transport: journaled), in the buffer right after.
      await waitFor(
        'the good line in the buffer',
        () => agent.buffer.backlog === before + 1,
        5000,
        5,
      );
      s.destroy();
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
