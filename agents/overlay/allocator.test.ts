import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../../test/fc-seed.js';
import { chooseSubnet, randomFreeSubnet } from './allocator.js';
import { parseNetworkConfig } from './config.js';
import { formatCidr, parseCidr, parseIPv4 } from './ip.js';
import type { Lease } from './lease.js';

const cfg = parseNetworkConfig('{"Network":"10.5.0.0/16"}', 'k');
const ME = parseIPv4('192.168.1.10')!;
const lease = (subnet: string, ip: string, etcdLease = '7'): Lease => ({
  key: `/coreos.com/network/subnets/${subnet.replace('/', '-')}`,
  subnet: parseCidr(subnet)!,
  attrs: { publicIP: parseIPv4(ip)!, backendType: 'vxlan', vni: 1, vtepMAC: '02:00:00:00:00:01' },
  etcdLease,
  modRevision: '1',
});

test('restart reuses, in order: our lease, the previous subnet if free, then a random free one', () => {
  const others = [lease('10.5.3.0/24', '192.168.1.11'), lease('10.5.4.0/24', '192.168.1.12')];
  const ours = lease('10.5.9.0/24', '192.168.1.10');
  const c1 = chooseSubnet(cfg, [...others, ours], ME, parseCidr('10.5.20.0/24'));
  assert.equal(c1.kind === 'existing' && c1.lease, ours);

  const c2 = chooseSubnet(cfg, others, ME, parseCidr('10.5.20.0/24'));
  assert.deepEqual(c2, { kind: 'previous', subnet: parseCidr('10.5.20.0/24') });

  const c3 = chooseSubnet(cfg, others, ME, parseCidr('10.5.3.0/24'));
  assert.equal(c3.kind, 'new');

  const c4 = chooseSubnet(cfg, others, ME, parseCidr('10.5.0.0/24')); // below SubnetMin
  assert.equal(c4.kind, 'new');
  if (c4.kind === 'new') assert.notEqual(formatCidr(c4.subnet), '10.5.0.0/24');
});

test('a reservation (no etcd lease) for our IP wins over an ordinary lease', () => {
  const normal = lease('10.5.9.0/24', '192.168.1.10');
  const reserved = lease('10.5.50.0/24', '192.168.1.10', '0');
  const c = chooseSubnet(cfg, [normal, reserved], ME, undefined);
  assert.equal(c.kind === 'existing' && c.lease, reserved);
});

test('our lease outside the current config is not reused', () => {
  const stale = lease('10.9.9.0/24', '192.168.1.10');
  assert.equal(chooseSubnet(cfg, [stale], ME, undefined).kind, 'new');
});

test('new subnets are free, aligned, within [SubnetMin, SubnetMax]; full pool says so', () => {
  const small = parseNetworkConfig('{"Network":"10.5.0.0/26"}', 'k'); // /28 subnets: .16 .32 .48
  fc.assert(
    fc.property(
      fc.subarray([16, 32, 48]),
      fc.double({ min: 0, max: 0.999999, noNaN: true }),
      (takenLow, r) => {
        const taken = new Set(takenLow.map((x) => small.network.ip + x));
        const ip = randomFreeSubnet(small, taken, () => r);
        if (taken.size === 3) return ip === undefined;
        return (
          ip !== undefined &&
          !taken.has(ip) &&
          (ip - small.network.ip) % 16 === 0 &&
          ip >= small.subnetMin &&
          ip <= small.subnetMax
        );
      },
    ),
  );
  const all = ['10.5.0.16/28', '10.5.0.32/28', '10.5.0.48/28'].map((s, i) =>
    lease(s, `1.1.1.${i}`),
  );
  assert.deepEqual(chooseSubnet(small, all, ME, undefined), { kind: 'full' });
});

test('random picks spread over the pool', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) seen.add(randomFreeSubnet(cfg, new Set())!);
  assert.ok(seen.size > 120, `only ${seen.size} distinct subnets in 300 picks`);
});
