// The harness itself: real etcd, hosts as namespaces, a dockerd per host — and nothing left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { startCluster, listNamespaces, alive } from '../harness/index.js';

function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dir + '/')) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

test(
  'two hosts run containers, share etcd, and leave nothing behind',
  { timeout: 240_000 },
  async () => {
    const cluster = await startCluster({ name: 'harness', hosts: 2, docker: true });
    const { dir, id } = cluster;
    const pids = cluster.state.pids.map((p) => p.pid);
    let stopped = false;
    try {
      assert.equal(cluster.hosts.length, 2);
      const [h1, h2] = cluster.hosts as [(typeof cluster.hosts)[0], (typeof cluster.hosts)[0]];
      assert.notEqual(h1.ip, h2.ip);

      // A container on each host runs and prints.
      const r1 = await h1.run(['sh', '-c', 'echo hello from $(hostname) on host1']);
      const r2 = await h2.run(['sh', '-c', 'echo hello on host2; echo to-stderr >&2']);
      assert.equal(r1.code, 0, r1.stderr);
      assert.match(r1.stdout, /^hello from \S+ on host1\n$/);
      assert.equal(r2.stdout, 'hello on host2\n');
      assert.equal(r2.stderr, 'to-stderr\n');
      // The image has dig and busybox applets.
      const tools = await h1.run(['sh', '-c', 'dig -v 2>&1 | head -1; which httpd wget nc ping']);
      assert.equal(tools.code, 0, tools.stdout + tools.stderr);
      assert.match(tools.stdout, /DiG 9/);

      // Each host reaches etcd: put from host 1, get from host 2.
      const ep = cluster.etcdEndpoints[0]!;
      const put = await h1.exec([
        'etcdctl',
        '--endpoints',
        ep,
        'put',
        '/flotilla-test/key',
        `from-${h1.name}`,
      ]);
      assert.equal(put.code, 0, `${put.stderr} ${put.stdout}`);
      const get = await h2.exec([
        'etcdctl',
        '--endpoints',
        ep,
        'get',
        '--print-value-only',
        '/flotilla-test/key',
      ]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout.trim(), `from-${h1.name}`);

      // Hosts reach each other over the underlay.
      const ping = await h1.exec(['busybox', 'ping', '-c', '1', '-W', '2', h2.ip]);
      assert.equal(ping.code, 0, ping.stdout);

      await cluster.stop();
      stopped = true;
    } finally {
      if (!stopped) await cluster.stop();
    }
    assert.deepEqual(
      listNamespaces().filter((n) => n.startsWith(`flt${id}-`)),
      [],
      'namespaces of the run remain',
    );
    assert.deepEqual(pids.filter(alive), [], 'etcd or dockerd of the run still alive');
    const left = processesUnder(dir).map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return 'gone';
      }
    });
    assert.deepEqual(left, [], 'containerd or a shim of the run still alive');
    assert.equal(existsSync(dir), false, 'temp dir remains');
  },
);
