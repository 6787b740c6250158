// The forward core's two ways to a buffer entry for Docker's line: decoded (`prepare`) and read
// in place (`preparePlain`) give the same bytes and service, with and without metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../common/logger.js';
import { metricsFor } from '../../common/metrics.js';
import { EventTime, decodeFrame, encodeMessage, plainMessage } from '../forward/codec.js';
import type { ContainerMeta } from '../enrich.js';
import type { InputContext } from './input.js';
import { createForwardCore } from './forward-core.js';

const ctx = {
  hostname: 'h1',
  log: createLogger('forward-core-test', 'silent'),
  metrics: metricsFor('forward_core_test'),
} as unknown as InputContext; // buffer, shipper: not used by prepare

test('preparePlain gives the bytes and service prepare gives for the same Docker frame', () => {
  const core = createForwardCore(ctx, {});
  const meta: ContainerMeta = {
    name: '/web-1',
    labels: { service: 'from-label' },
    env: {},
  };
  const id = 'c'.repeat(64);
  const cases = [
    { rec: { log: 'GET / 200' }, meta: undefined },
    { rec: { log: 'GET / 200' }, meta },
    { rec: { log: 'ü€😀'.repeat(30), service: 'api' }, meta: undefined },
    { rec: { log: '', source: 'stderr' }, meta },
    { rec: { log: 'x', service: '' }, meta },
    { rec: { log: 'z'.repeat(70_000) }, meta: undefined },
  ];
  for (const [i, c] of cases.entries()) {
    const frame = encodeMessage(
      'docker.web',
      new EventTime(1_795_000_000 + i, 987_654_321),
      { container_id: id, container_name: '/web-1', source: 'stdout', ...c.rec },
      { chunk: `k${i}` },
    );
    const f = decodeFrame(frame);
    assert.ok(f.kind === 'events' && f.entries);
    const [run] = core.prepare(f.tag, f.entries, [c.meta]);
    const m = plainMessage(frame, 0, frame.length);
    assert.ok(m, `case ${i} read in place`);
    const p = core.preparePlain(m, c.meta);
    assert.equal(p.service, run!.service, `case ${i} service`);
    assert.deepEqual(p.bytes, run!.bufs[0], `case ${i} bytes`);
    assert.equal(p.ms, run!.tmin);
  }
});
