/**
 * The netlink edge against a real kernel, in a namespace of our own: the vxlan device, its
 * neighbours, FDB and routes are programmed, a second run changes nothing, and a vanished lease
 * is removed. Needs root; no etcd or docker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTrackedRun } from '../harness/index.js';

// The namespace is recorded in a harness run state (and named `flt<id>-…`), so a later run
// sweeps it if this process dies before `after`.
const run = startTrackedRun('ovk');
const NS = run.namespace('k');
const DRIVER = fileURLToPath(new URL('./overlay-kernel-driver.js', import.meta.url));
const ip = (...args: string[]) => execFileSync('ip', ['-n', NS, ...args], { encoding: 'utf8' });

function drive(backend: string, leases: [string, string, string?][]) {
  const r = spawnSync(
    'nsenter',
    [
      `--net=/var/run/netns/${NS}`,
      process.execPath,
      DRIVER,
      JSON.stringify({ iface: 'eth0', backend, self: '10.5.1.0/24', leases }),
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as {
    mac?: string;
    ops: string[];
    failures: string[];
    remaining: number;
  };
}

/** Everything the kernel holds in the namespace, as `ip`/`bridge` print it (ifindex included). */
function dump(): string {
  return [
    ip('-d', 'link', 'show'),
    ip('addr', 'show'),
    ip('route', 'show', 'table', 'all'),
    ip('neigh', 'show'),
    execFileSync('bridge', ['-n', NS, 'fdb', 'show'], { encoding: 'utf8' }),
  ].join('\n');
}

/**
 * Runs `fn` while `ip monitor all` watches the namespace; returns what the monitor printed: any
 * kernel change (also a delete + identical re-add, or a replace with the same content).
 */
async function watched(fn: () => void): Promise<string> {
  const mon = spawn('ip', ['-n', NS, 'monitor', 'all'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  mon.stdout.on('data', (c: Buffer) => (out += c.toString()));
  try {
    // A probe change proves the monitor is listening before `fn` runs.
    await new Promise((r) => setTimeout(r, 200));
    ip('link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1');
    ip('link', 'del', 'probe0');
    const seen = /\[LINK\]Deleted \d+: probe1/;
    const deadline = Date.now() + 5000;
    while (!seen.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.match(out, seen, 'ip monitor did not start');
    const start = out.length;
    fn();
    await new Promise((r) => setTimeout(r, 300));
    return out.slice(start);
  } finally {
    mon.kill();
  }
}

before(() => {
  execFileSync('ip', ['netns', 'add', NS]);
  // No IPv6: its address autoconfiguration would change the kernel state on its own.
  execFileSync('nsenter', [
    `--net=/var/run/netns/${NS}`,
    'sysctl',
    '-qw',
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
  ]);
  ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0');
  ip('addr', 'add', '192.168.77.1/24', 'dev', 'eth0');
  for (const d of ['lo', 'eth0', 'peer0']) ip('link', 'set', d, 'up');
});
after(() => {
  run.stop();
});

const LEASES: [string, string, string?][] = [
  ['10.5.1.0/24', '192.168.77.1', '02:00:00:00:00:01'],
  ['10.5.2.0/24', '192.168.77.2', '02:00:00:00:00:02'],
  ['10.5.3.0/24', '192.168.77.3', '02:00:00:00:00:03'],
];

test('vxlan backend programs device, neighbours, FDB and routes; a rerun changes nothing; a vanished lease is removed', async () => {
  const first = drive('vxlan', LEASES);
  assert.deepEqual(first.failures, []);
  assert.equal(first.remaining, 0);
  assert.equal(first.ops.length, 6);
  const link = ip('-d', 'link', 'show', 'flannel.1');
  assert.match(link, /mtu 1450/);
  assert.match(link, /vxlan id 1 local 192.168.77.1 dev eth0 .*dstport 8472 nolearning/);
  assert.match(link, new RegExp(`link/ether ${first.mac}`));
  assert.match(ip('addr', 'show', 'flannel.1'), /inet 10.5.1.0\/32/);
  const routes = ip('route', 'show', 'dev', 'flannel.1');
  assert.match(routes, /10.5.2.0\/24 via 10.5.2.0 onlink/);
  assert.match(routes, /10.5.3.0\/24 via 10.5.3.0 onlink/);
  assert.match(
    ip('neigh', 'show', 'dev', 'flannel.1'),
    /10.5.3.0 lladdr 02:00:00:00:00:03 PERMANENT/,
  );
  const fdb = execFileSync('bridge', ['-n', NS, 'fdb', 'show', 'dev', 'flannel.1'], {
    encoding: 'utf8',
  });
  assert.match(fdb, /02:00:00:00:00:02 dst 192.168.77.2 self permanent/);

  const before = dump();
  let again: ReturnType<typeof drive> | undefined;
  const changes = await watched(() => (again = drive('vxlan', LEASES)));
  assert.equal(changes, '', 'a rerun made kernel changes (ip monitor)');
  assert.equal(dump(), before, 'kernel state differs after a rerun');
  assert.deepEqual(again!.ops, [], 'second run must not touch the kernel');
  assert.equal(again!.mac, first.mac, 'device (and MAC) reused');

  const gone = drive('vxlan', LEASES.slice(0, 2));
  assert.deepEqual(gone.ops, ['del route', 'del neigh', 'del fdb']);
  assert.doesNotMatch(ip('route'), /10.5.3.0/);
  assert.doesNotMatch(ip('neigh', 'show', 'dev', 'flannel.1'), /10.5.3.0/);
  assert.doesNotMatch(
    execFileSync('bridge', ['-n', NS, 'fdb', 'show', 'dev', 'flannel.1'], { encoding: 'utf8' }),
    /02:00:00:00:00:03/,
  );

  // A peer whose MAC changed (its device was recreated) is updated in place.
  const moved = drive('vxlan', [LEASES[0]!, ['10.5.2.0/24', '192.168.77.2', '02:00:00:00:00:22']]);
  assert.deepEqual(moved.ops, ['del fdb', 'add fdb', 'replace neigh']);
  assert.match(ip('neigh', 'show', 'dev', 'flannel.1'), /10.5.2.0 lladdr 02:00:00:00:00:22/);

  // An incompatible device (wrong VNI) is recreated.
  ip('link', 'del', 'flannel.1');
  ip('link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '9', 'dev', 'eth0', 'dstport', '8472');
  const recreated = drive('vxlan', LEASES.slice(0, 2));
  assert.deepEqual(recreated.failures, []);
  assert.match(ip('-d', 'link', 'show', 'flannel.1'), /vxlan id 1 /);
});

test('host-gw backend routes peers via their PublicIP on the external interface', () => {
  const r = drive(
    'host-gw',
    LEASES.map(([s, i]) => [s, i] as [string, string]),
  );
  assert.deepEqual(r.failures, []);
  const routes = ip('route', 'show', 'dev', 'eth0');
  assert.match(routes, /10.5.2.0\/24 via 192.168.77.2/);
  assert.match(routes, /10.5.3.0\/24 via 192.168.77.3/);
  assert.deepEqual(
    drive(
      'host-gw',
      LEASES.map(([s, i]) => [s, i] as [string, string]),
    ).ops,
    [],
  );
});
