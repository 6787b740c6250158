// Table tests for the allocator's dual-stack choice and the spread of its random picks, written
// for the survivors of `npm run mutate -- overlay/allocator`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSubnet, randomFreeSubnet } from './allocator.js';
import { parseNetworkConfig } from './config.js';
import { IPv6, formatCidr, formatPrefix, parseCidr, parseIPv4, parsePrefix } from './ip.js';
import type { Lease } from './lease.js';

const v4 = parseNetworkConfig('{"Network":"10.5.0.0/16"}', 'k');
const dual = parseNetworkConfig(
  '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48"}',
  'k',
);
// Three IPv6 subnets only: fd00:6:0:1::/64 … fd00:6:0:3::/64.
const dualSmall6 = parseNetworkConfig(
  '{"Network":"10.6.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:6::/62"}',
  'k',
);
const ME = parseIPv4('192.168.1.10')!;
const p6 = (s: string) => parsePrefix(IPv6, s)!;
const lease = (subnet: string, ip: string, subnet6?: string): Lease => ({
  key: `/coreos.com/network/subnets/${subnet.replace('/', '-')}`,
  subnet: parseCidr(subnet)!,
  ...(subnet6 ? { subnet6: p6(subnet6) } : {}),
  attrs: { publicIP: parseIPv4(ip)!, backendType: 'vxlan', vni: 1, vtepMAC: '02:00:00:00:00:01' },
  etcdLease: '7',
  modRevision: '1',
});

/** A seeded generator (mulberry32) so the spread checks are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('our lease is reused only when its IPv6 side matches the network (flannel isIPv6SubnetConfigCompat)', () => {
  const table: [string, Lease, boolean][] = [
    [
      'dual-stack lease on a dual-stack network',
      lease('10.5.9.0/24', '192.168.1.10', 'fd00:5:0:9::/64'),
      true,
    ],
    ['IPv4-only lease on a dual-stack network', lease('10.5.9.0/24', '192.168.1.10'), false],
    [
      'dual-stack lease, IPv6 subnet outside the pool',
      lease('10.5.9.0/24', '192.168.1.10', 'fd00:7:0:9::/64'),
      false,
    ],
    [
      'dual-stack lease, IPv6 subnet of the wrong length',
      lease('10.5.9.0/24', '192.168.1.10', 'fd00:5:0:9::/80'),
      false,
    ],
    [
      'dual-stack lease, IPv6 subnet 0 (below IPv6SubnetMin)',
      lease('10.5.9.0/24', '192.168.1.10', 'fd00:5::/64'),
      false,
    ],
  ];
  for (const [name, l, reused] of table) {
    const c = chooseSubnet(dual, [l], ME, undefined, seeded(1));
    assert.equal(c.kind === 'existing' && c.lease === l, reused, name);
    if (!reused) {
      assert.equal(c.kind, 'new', name);
      if (c.kind === 'new')
        assert.ok(c.subnet6, `${name}: a new dual-stack choice has an IPv6 subnet`);
    }
  }
  const withV6 = lease('10.5.9.0/24', '192.168.1.10', 'fd00:5:0:9::/64');
  assert.equal(
    chooseSubnet(v4, [withV6], ME, undefined).kind,
    'new',
    'IPv6 lease on an IPv4-only network',
  );
  assert.equal(
    chooseSubnet(v4, [lease('10.5.9.0/24', '192.168.1.10')], ME, undefined).kind,
    'existing',
  );
});

test('dual-stack: the previous IPv6 subnet is kept when free and valid, else a free one from the pool', () => {
  const other = lease('10.5.3.0/24', '192.168.1.11', 'fd00:5:0:3::/64');
  const prev = parseCidr('10.5.20.0/24');
  const table: [string, string, string | undefined][] = [
    ['free and in the pool', 'fd00:5:0:20::/64', 'fd00:5:0:20::/64'],
    ['taken by another host', 'fd00:5:0:3::/64', undefined],
    ['outside the pool', 'fd00:9:0:20::/64', undefined],
    ['the first subnet (below IPv6SubnetMin)', 'fd00:5::/64', undefined],
  ];
  for (const [name, previous6, want] of table) {
    const c = chooseSubnet(dual, [other], ME, prev, seeded(2), p6(previous6));
    assert.equal(c.kind, 'previous', name);
    if (c.kind !== 'previous') continue;
    assert.equal(formatCidr(c.subnet), '10.5.20.0/24', name);
    const got = formatPrefix(IPv6, c.subnet6!);
    if (want) assert.equal(got, want, name);
    else {
      assert.notEqual(got, previous6, name);
      assert.notEqual(got, 'fd00:5:0:3::/64', name);
      assert.equal(c.subnet6!.len, 64, name);
      assert.ok(
        c.subnet6!.ip >= dual.ipv6!.subnetMin && c.subnet6!.ip <= dual.ipv6!.subnetMax,
        name,
      );
    }
  }
  // No previous IPv6 subnet at all: a fresh one, with a new or previous IPv4 subnet alike.
  const fresh = chooseSubnet(dual, [other], ME, undefined, seeded(3));
  assert.equal(fresh.kind, 'new');
  if (fresh.kind === 'new') {
    assert.equal(fresh.subnet.len, 24);
    assert.equal(fresh.subnet6!.len, 64);
    assert.notEqual(fresh.subnet6!.ip, p6('fd00:5:0:3::/64').ip);
  }
});

test('dual-stack: a full IPv6 pool is full even when IPv4 subnets are free', () => {
  const taken = ['fd00:6:0:1::/64', 'fd00:6:0:2::/64', 'fd00:6:0:3::/64'].map((s6, i) =>
    lease(`10.6.${i + 1}.0/24`, `192.168.2.${i}`, s6),
  );
  assert.deepEqual(chooseSubnet(dualSmall6, taken, ME, undefined, seeded(4)), { kind: 'full' });
  assert.deepEqual(chooseSubnet(dualSmall6, taken, ME, parseCidr('10.6.9.0/24'), seeded(4)), {
    kind: 'full',
  });
  // One IPv6 subnet left: it is the one handed out, whatever the random numbers say.
  for (let seed = 0; seed < 20; seed++) {
    const c = chooseSubnet(dualSmall6, taken.slice(1), ME, undefined, seeded(seed));
    assert.equal(c.kind, 'new');
    if (c.kind === 'new') assert.equal(formatPrefix(IPv6, c.subnet6!), 'fd00:6:0:1::/64');
  }
});

test('a new subnet is a whole /SubnetLen network, not just an address', () => {
  const c = chooseSubnet(v4, [], ME, undefined, seeded(5));
  assert.equal(c.kind, 'new');
  if (c.kind !== 'new') return;
  assert.equal(c.subnet.len, 24);
  assert.equal(c.subnet.ip % 256, 0);
  assert.equal('subnet6' in c, false, 'no IPv6 subnet on an IPv4-only network');
});

test('random picks are uniform over the free subnets, also when most of the pool is taken in one run', () => {
  // 10.5.1.0 … 10.5.200.0 taken, 55 free. A scan from a random start alone would hand out
  // 10.5.201.0 about 200 times in 255; uniform is once in 55.
  const taken = new Set<number>();
  for (let i = 1; i <= 200; i++) taken.add(parseIPv4(`10.5.${i}.0`)!);
  const random = seeded(6);
  const counts = new Map<number, number>();
  const N = 2000;
  for (let i = 0; i < N; i++) {
    const ip = randomFreeSubnet(v4, taken, random)!;
    assert.ok(!taken.has(ip));
    counts.set(ip, (counts.get(ip) ?? 0) + 1);
  }
  const most = Math.max(...counts.values());
  assert.ok(
    most < N * 0.06,
    `one subnet got ${most} of ${N} picks (uniform ≈ ${Math.round(N / 55)})`,
  );
  assert.ok(counts.size > 50, `only ${counts.size} of the 55 free subnets were picked`);
});
