/**
 * The one checker (CheckedAnnouncement) against a real etcd on loopback, with a scripted probe:
 * rise 2 / fall 2 move the record between its DNS key and its withdrawn key under one lease,
 * probes start one interval apart, Docker `unhealthy` withdraws whatever the probe says, and
 * stop() deletes the record wherever it is; a stale copy from an earlier run is removed at start.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startLocalEtcd, waitFor, type LocalEtcd } from '../harness/index.js';
import { createLogger } from '../../agents/common/logger.js';
import { CheckedAnnouncement, CheckStats } from '../../agents/dns/checker.js';
import { withdrawnKey } from '../../agents/dns/instances.js';
import type { ProbeResult } from '../../agents/dns/probes.js';

const log = createLogger('dns-checker-test', 'silent');
let local: LocalEtcd;
let etcd: Etcd3;

before(async () => {
  local = await startLocalEtcd();
  etcd = new Etcd3({ hosts: local.endpoints });
});
after(async () => {
  etcd?.close();
  await local?.stop();
});

test('rise/fall move the record out of DNS and back under one lease; Docker unhealthy overrides; stop deletes it', async () => {
  const key = '/skydns/local/skydns/chk/x1';
  const out = withdrawnKey(key);
  // What the probe answers, one letter per probe, then passes. Each probe is held until the
  // test releases it, so the test samples etcd exactly once between two probes.
  let script = 'PPPFFFPP';
  const probedAt: number[] = [];
  let release: (() => void) | null = null;
  let hold = true;
  const probe = (): Promise<ProbeResult> => {
    probedAt.push(Date.now());
    const ok = (script[0] ?? 'P') === 'P';
    script = script.slice(1);
    if (!hold) return Promise.resolve({ ok, detail: 'ok' });
    return new Promise((resolve) => {
      release = () => resolve({ ok, detail: ok ? 'ok' : 'scripted failure' });
    });
  };
  const stats = new CheckStats();
  const inst = new CheckedAnnouncement({
    client: etcd,
    key,
    record: '{"host":"10.9.0.1","port":80,"ttl":5}',
    meta: { hostname: 'h1', version: 'v1' },
    ttl: 5,
    log,
    check: {
      target: { kind: 'cmd', command: 'unused' },
      intervalMs: 200,
      timeoutMs: 100,
      rise: 2,
      fall: 2,
    },
    stats,
    probe,
  });
  const where = async () => {
    const [a, b] = await Promise.all([etcd.get(key).exec(), etcd.get(out).exec()]);
    return { dns: a.kvs[0], withdrawn: b.kvs[0] };
  };
  // The timeline of where the record is, sampled after every probe.
  const seen: string[] = [];
  // A copy an earlier run left in DNS goes when this one starts (withdrawn until it rises).
  await etcd.put(key).value('{"host":"10.9.0.99"}');
  await inst.start();
  try {
    const first = await where();
    assert.equal(first.dns, undefined, 'starts withdrawn until it has risen, stale copy gone');
    assert.equal(JSON.parse(first.withdrawn!.value.toString()).health, 'starting');
    const lease = first.withdrawn!.lease;
    assert.notEqual(lease, '0');
    for (let k = 1; k <= 8; k++) {
      await waitFor(`probe ${k}`, () => probedAt.length === k && release !== null, 5000, 5);
      const r = release!;
      release = null;
      r();
      // Probe k's result is applied to etcd before probe k + 1 starts.
      await waitFor(`probe ${k + 1}`, () => probedAt.length === k + 1, 5000, 5);
      const w = await where();
      seen.push(`${k}:${w.dns ? 'dns' : 'out'}:${inst.health}`);
    }
    hold = false;
    release!();
    assert.deepEqual(seen, [
      '1:out:starting',
      '2:dns:passing',
      '3:dns:passing',
      '4:dns:passing',
      '5:out:failing',
      '6:out:failing',
      '7:out:failing',
      '8:dns:passing',
    ]);
    const gaps = probedAt.slice(1).map((t, i) => t - probedAt[i]!);
    assert.ok(
      gaps.every((g) => g >= 190 && g <= 600),
      `probe gaps ${gaps.join(', ')} ms (interval 200)`,
    );
    const now = await where();
    assert.equal(now.dns!.lease, lease, 'the same lease throughout');
    assert.deepEqual(JSON.parse(now.dns!.value.toString()), {
      host: '10.9.0.1',
      port: 80,
      ttl: 5,
      hostname: 'h1',
      version: 'v1',
      health: 'passing',
    });
    assert.ok(
      stats.checks >= 8 && stats.checkFailures === 3,
      `${stats.checks} checks, ${stats.checkFailures} failed`,
    );
    assert.equal(stats.failing.size, 0);

    await inst.setDockerHealth('unhealthy');
    assert.equal(inst.health, 'failing');
    assert.equal(stats.failing.size, 1);
    const sick = await where();
    assert.equal(sick.dns, undefined);
    assert.equal(JSON.parse(sick.withdrawn!.value.toString()).health, 'failing');
    await inst.setDockerHealth('healthy');
    assert.equal(inst.health, 'passing');
    assert.ok((await where()).dns);
  } finally {
    await inst.stop();
  }
  const gone = await where();
  assert.deepEqual([gone.dns, gone.withdrawn], [undefined, undefined]);
  const n = probedAt.length;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(probedAt.length, n, 'no probe after stop()');
});
