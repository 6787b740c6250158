import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../../test/fc-seed.js';
import {
  decodeLease,
  encodeLease,
  keyToSubnet,
  keyToSubnets,
  subnetKey,
  type LeaseAttrs,
} from './lease.js';
import { IPv6, formatCidr, formatPrefix, parseCidr, parseIPv4, parsePrefix } from './ip.js';

test('vxlan lease JSON is byte-identical to flannel', () => {
  const text = encodeLease({
    publicIP: parseIPv4('192.168.250.2')!,
    backendType: 'vxlan',
    vni: 1,
    vtepMAC: 'b2:30:db:24:3d:30',
  });
  assert.equal(
    text,
    '{"PublicIP":"192.168.250.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"b2:30:db:24:3d:30"}}',
  );
});

test('host-gw lease has no BackendData, as flannel omits it', () => {
  assert.equal(
    encodeLease({ publicIP: parseIPv4('10.0.0.9')!, backendType: 'host-gw' }),
    '{"PublicIP":"10.0.0.9","PublicIPv6":null,"BackendType":"host-gw"}',
  );
});

test('decode reads flannel records and rejects bad ones with a reason', () => {
  const a = decodeLease(
    '{"PublicIP":"10.1.2.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"B2:30:DB:24:3D:30"},"Extra":1}',
  );
  assert.deepEqual(a, {
    publicIP: parseIPv4('10.1.2.3'),
    backendType: 'vxlan',
    vni: 1,
    vtepMAC: 'b2:30:db:24:3d:30',
  });
  const bad: [string, RegExp][] = [
    ['{', /not JSON/],
    ['null', /not a JSON object/],
    ['{"PublicIP":"1.2.3"}', /"PublicIP" is not an IPv4 address \("1.2.3"\)/],
    ['{"PublicIP":"1.2.3.4","BackendType":"vxlan","BackendData":{"VtepMAC":"zz"}}', /VtepMAC/],
  ];
  for (const [t, re] of bad) assert.throws(() => decodeLease(t), re);
});

test('encode/decode round-trips any lease', () => {
  const mac = fc
    .array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })
    .map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
  const attrs: fc.Arbitrary<LeaseAttrs> = fc.oneof(
    fc.record({
      publicIP: fc.nat({ max: 0xffffffff }),
      backendType: fc.constant('vxlan'),
      vni: fc.nat({ max: 16_000_000 }),
      vtepMAC: mac,
    }),
    fc.record({ publicIP: fc.nat({ max: 0xffffffff }), backendType: fc.constant('host-gw') }),
  );
  fc.assert(fc.property(attrs, (a) => assert.deepEqual(decodeLease(encodeLease(a)), { ...a })));
});

test('keys map to subnets and back', () => {
  const table: [string, string | undefined][] = [
    ['/coreos.com/network/subnets/10.5.7.0-24', '10.5.7.0/24'],
    ['/coreos.com/network/subnets/10.5.7.128-25', '10.5.7.128/25'],
    ['/coreos.com/network/subnets/10.5.7.1-24', undefined],
    ['/coreos.com/network/subnets/10.5.7.0', undefined],
    ['/coreos.com/network/config', undefined],
    ['/other/subnets/10.5.7.0-24', undefined],
  ];
  for (const [key, want] of table) {
    const s = keyToSubnet('/coreos.com/network', key);
    assert.equal(s && formatCidr(s), want, key);
    if (s) assert.equal(subnetKey('/coreos.com/network/', s), key);
  }
  assert.equal(subnetKey('/p', parseCidr('10.5.7.0/24')!), '/p/subnets/10.5.7.0-24');
});

test('dual-stack vxlan lease JSON and key are byte-identical to flannel (BackendV6Data, PublicIPv6)', () => {
  const attrs: LeaseAttrs = {
    publicIP: parseIPv4('192.168.250.2')!,
    backendType: 'vxlan',
    vni: 1,
    vtepMAC: 'b2:30:db:24:3d:30',
    publicIPv6: IPv6.parse('fd00:250::2')!,
    v6vni: 1,
    v6VtepMAC: '6e:1f:0a:7c:44:01',
  };
  // What flannel v0.20.2's newSubnetAttrs + json.Marshal(LeaseAttrs) writes.
  const flannel =
    '{"PublicIP":"192.168.250.2","PublicIPv6":"fd00:250::2","BackendType":"vxlan",' +
    '"BackendData":{"VNI":1,"VtepMAC":"b2:30:db:24:3d:30"},' +
    '"BackendV6Data":{"VNI":1,"VtepMAC":"6e:1f:0a:7c:44:01"}}';
  assert.equal(encodeLease(attrs), flannel);
  assert.deepEqual(decodeLease(flannel), attrs);
  // flannel's MakeSubnetKey: "<v4 net>-<len>&<v6 net>-<len>".
  const s6 = parsePrefix(IPv6, 'fd00:5:7::/64')!;
  const key = subnetKey('/coreos.com/network', parseCidr('10.5.7.0/24')!, s6);
  assert.equal(key, '/coreos.com/network/subnets/10.5.7.0-24&fd00:5:7::-64');
  const both = keyToSubnets('/coreos.com/network', key)!;
  assert.equal(formatCidr(both.subnet), '10.5.7.0/24');
  assert.equal(formatPrefix(IPv6, both.subnet6!), 'fd00:5:7::/64');
  assert.equal(keyToSubnets('/coreos.com/network', `${key.slice(0, -3)}1-64`), undefined);
});

test('an IPv6-only peer lease (PublicIP 0.0.0.0, BackendV6Data only) decodes', () => {
  const text =
    '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:250::9","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"6e:1f:0a:7c:44:09"}}';
  const a = decodeLease(text);
  assert.deepEqual(a, {
    publicIP: 0,
    backendType: 'vxlan',
    publicIPv6: IPv6.parse('fd00:250::9'),
    v6vni: 1,
    v6VtepMAC: '6e:1f:0a:7c:44:09',
  });
  assert.equal(encodeLease(a), text);
  assert.throws(
    () => decodeLease('{"PublicIP":"1.2.3.4","PublicIPv6":"fd00::zz","BackendType":"vxlan"}'),
    /"PublicIPv6" is not an IPv6 address/,
  );
});
