// The harness's 3-member etcd: members in their own namespaces, a leader everyone follows, a
// partition that really cuts one member off, a SIGKILLed leader replaced — and nothing left
// behind, neither after stop() nor after the owning process is SIGKILLed (the next run sweeps).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  alive,
  listNamespaces,
  loadState,
  startCluster,
  sweepLeftovers,
  waitFor,
} from '../harness/index.js';

test(
  'three members: leader, partition, leader kill, restart; stop() removes every member',
  { timeout: 120_000 },
  async () => {
    const cluster = await startCluster({ name: 'members', hosts: 0, etcdMembers: 3 });
    const { id, dir } = cluster;
    try {
      assert.deepEqual(
        listNamespaces()
          .filter((n) => n.startsWith(`flt${id}-e`))
          .sort(),
        [`flt${id}-e1`, `flt${id}-e2`, `flt${id}-e3`],
      );
      assert.equal(cluster.etcdEndpoints.length, 3);
      assert.deepEqual(
        loadState(id)?.etcdMembers?.map((m) => m.name),
        ['m1', 'm2', 'm3'],
      );
      const leader = await cluster.etcdLeader();
      const st = await cluster.etcdStatus();
      assert.equal(st.length, 3);
      assert.ok(st.every((s) => s.leader === st.find((x) => x.member === leader)!.id));

      // Partition a follower: it loses its leader, the other two keep theirs.
      const follower = cluster.etcdMembers.find((m) => m !== leader)!;
      await cluster.partitionEtcd(follower.name);
      assert.deepEqual(loadState(id)?.partitioned, [follower.name]);
      await waitFor(
        `${follower.name} without a leader`,
        async () => {
          const s = (await cluster.etcdStatus()).find((x) => x.member === follower);
          return !s || s.leader === '0' || s.leader === s.id;
        },
        15_000,
        300,
      );
      assert.equal((await cluster.etcdLeader()).name, leader.name);
      await cluster.healEtcd(follower.name);
      assert.deepEqual(loadState(id)?.partitioned, []);

      // SIGKILL the leader: another member leads; the old one rejoins from its data dir.
      await cluster.stopEtcdMember(leader.name, 'SIGKILL');
      assert.ok(!loadState(id)?.pids.some((p) => p.what === `etcd member ${leader.name}`));
      const next = await cluster.etcdLeader();
      assert.notEqual(next.name, leader.name);
      await cluster.startEtcdMember(leader.name);
      await waitFor(
        'all three follow one leader again',
        async () => {
          const all = await cluster.etcdStatus();
          return (
            all.length === 3 && all.every((s) => s.leader === all[0]!.leader && s.leader !== '0')
          );
        },
        15_000,
        300,
      );
    } finally {
      await cluster.stop();
    }
    assert.deepEqual(
      listNamespaces().filter((n) => n.startsWith(`flt${id}-`)),
      [],
    );
    assert.equal(existsSync(dir), false);
  },
);

test(
  'a run SIGKILLed with 3 members up is swept by the next run',
  { timeout: 90_000 },
  async () => {
    const harness = new URL('../harness/index.js', import.meta.url).href;
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { startCluster } = await import(${JSON.stringify(harness)});
         const c = await startCluster({ name: 'orphan', hosts: 0, etcdMembers: 3 });
         process.stdout.write(c.id + '\\n');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const id = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('exit', (code) =>
        reject(new Error(`child exited ${code} before its cluster was up`)),
      );
    });
    const state = loadState(id)!;
    const memberPids = state.etcdMembers!.map((m) => m.pid!);
    assert.equal(memberPids.length, 3);
    assert.ok(memberPids.every(alive));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    sweepLeftovers();
    assert.deepEqual(
      listNamespaces().filter((n) => n.startsWith(`flt${id}-`)),
      [],
    );
    assert.deepEqual(memberPids.filter(alive), []);
    assert.equal(loadState(id), undefined);
  },
);
