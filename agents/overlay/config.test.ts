import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig, subnetFits } from './config.js';
import { IPv6, formatCidr, formatIPv4, formatPrefix, parseCidr } from './ip.js';

const KEY = '/coreos.com/network/config';

test('defaults follow flannel: SubnetLen, SubnetMin (second subnet), SubnetMax (last)', () => {
  const table: [string, number, string, string][] = [
    ['10.5.0.0/16', 24, '10.5.1.0', '10.5.255.0'],
    ['10.0.0.0/8', 24, '10.0.1.0', '10.255.255.0'],
    ['10.5.0.0/22', 24, '10.5.1.0', '10.5.3.0'],
    ['10.5.0.0/23', 25, '10.5.0.128', '10.5.1.128'],
    ['10.5.0.0/26', 28, '10.5.0.16', '10.5.0.48'],
    ['10.5.0.0/28', 30, '10.5.0.4', '10.5.0.12'],
  ];
  for (const [net, len, min, max] of table) {
    const c = parseNetworkConfig(JSON.stringify({ Network: net }), KEY);
    assert.equal(formatCidr(c.network), net);
    assert.equal(c.subnetLen, len, net);
    assert.equal(formatIPv4(c.subnetMin), min, net);
    assert.equal(formatIPv4(c.subnetMax), max, net);
    assert.deepEqual(c.backend, {
      type: 'vxlan',
      vni: 1,
      port: 8472,
      directRouting: false,
      learning: false,
      mtu: undefined,
    });
  }
});

test('keys match case-insensitively and backend fields are read', () => {
  const c = parseNetworkConfig(
    '{"network":"10.6.0.0/16","SUBNETLEN":26,"subnetmin":"10.6.3.0","backend":{"type":"host-gw","vni":7,"PORT":4789,"directrouting":true}}',
    KEY,
  );
  assert.equal(c.subnetLen, 26);
  assert.equal(formatIPv4(c.subnetMin), '10.6.3.0');
  assert.equal(formatIPv4(c.subnetMax), '10.6.255.192');
  assert.equal(c.backend.type, 'host-gw');
  assert.equal(c.backend.vni, 7);
  assert.equal(c.backend.port, 4789);
  assert.equal(c.backend.directRouting, true);
});

test('invalid configs give one line naming the field and value', () => {
  const table: [string, RegExp][] = [
    [
      '{"Network":"10.5.0/16"}',
      /^config at \/coreos.com\/network\/config: "Network" is not a CIDR \("10.5.0\/16"\)$/,
    ],
    ['{}', /"Network" is missing/],
    ['not json', /not valid JSON/],
    ['[1]', /must be a JSON object/],
    ['{"Network":"10.5.0.0/29"}', /"Network" is too small \("10.5.0.0\/29"\)/],
    ['{"Network":"10.5.0.0/16","SubnetLen":17}', /"SubnetLen" 17 leaves fewer than four subnets/],
    [
      '{"Network":"10.5.0.0/16","SubnetLen":31}',
      /"SubnetLen" must be a whole number from 1 to 30 \(31\)/,
    ],
    [
      '{"Network":"10.5.0.0/16","SubnetMin":"10.6.0.0"}',
      /"SubnetMin" "10.6.0.0" is outside "Network" 10.5.0.0\/16/,
    ],
    ['{"Network":"10.5.0.0/16","SubnetMax":"10.5.3.7"}', /"SubnetMax" "10.5.3.7" is not on a \/24/],
    [
      '{"Network":"10.5.0.0/16","SubnetMin":"10.5.9.0","SubnetMax":"10.5.3.0"}',
      /"SubnetMin" 10.5.9.0 is above "SubnetMax" 10.5.3.0/,
    ],
    ['{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}', /"Backend.Type" "udp" is not supported/],
    [
      '{"Network":"10.5.0.0/16","Backend":{"VNI":"x"}}',
      /"Backend.VNI" must be a whole number .* \("x"\)/,
    ],
    [
      '{"Network":"10.5.0.0/16","Backend":{"DirectRouting":"yes"}}',
      /"Backend.DirectRouting" must be true or false \("yes"\)/,
    ],
  ];
  for (const [text, re] of table) {
    assert.throws(
      () => parseNetworkConfig(text, KEY),
      (err: Error) => {
        assert.equal(err.name, 'ConfigError');
        assert.match(err.message, re, text);
        assert.ok(!err.message.includes('\n'));
        return true;
      },
    );
  }
});

test('subnetFits checks length and the [SubnetMin, SubnetMax] range', () => {
  const c = parseNetworkConfig('{"Network":"10.5.0.0/16"}', KEY);
  assert.equal(subnetFits(c, parseCidr('10.5.7.0/24')!), true);
  assert.equal(subnetFits(c, parseCidr('10.5.0.0/24')!), false);
  assert.equal(subnetFits(c, parseCidr('10.5.7.0/25')!), false);
  assert.equal(subnetFits(c, parseCidr('10.6.7.0/24')!), false);
});

test('IPv6 pool with flannel defaults: EnableIPv6, IPv6Network, IPv6SubnetLen/Min/Max', () => {
  const table: [string, number, string, string][] = [
    ['fd00:5::/48', 64, 'fd00:5:0:1::', 'fd00:5:0:ffff::'],
    ['fd00:5::/62', 64, 'fd00:5:0:1::', 'fd00:5:0:3::'],
    ['fd00:5::/64', 66, 'fd00:5:0:0:4000::', 'fd00:5:0:0:c000::'],
  ];
  for (const [net, len, min, max] of table) {
    const c = parseNetworkConfig(
      JSON.stringify({ Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: net }),
      KEY,
    );
    const p = c.ipv6!;
    assert.equal(formatPrefix(IPv6, p.network), net);
    assert.equal(p.subnetLen, len, net);
    assert.equal(IPv6.format(p.subnetMin), min, net);
    assert.equal(IPv6.format(p.subnetMax), max, net);
  }
  const c = parseNetworkConfig(
    '{"Network":"10.5.0.0/16","enableipv6":true,"IPv6Network":"fd00:5::/48","IPv6SubnetLen":56,"IPv6SubnetMin":"fd00:5:0:200::","IPv6SubnetMax":"fd00:5:0:f00::"}',
    KEY,
  );
  assert.equal(c.ipv6!.subnetLen, 56);
  assert.equal(IPv6.format(c.ipv6!.subnetMin), 'fd00:5:0:200::');
  assert.equal(
    parseNetworkConfig('{"Network":"10.5.0.0/16","IPv6Network":"fd00::/48"}', KEY).ipv6,
    undefined,
    'IPv6 only with EnableIPv6',
  );
  const bad: [string, RegExp][] = [
    ['{"Network":"10.5.0.0/16","EnableIPv6":true}', /"IPv6Network" is missing/],
    ['{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/125"}', /too small/],
    [
      '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd00::1"}',
      /"IPv6SubnetMin" "fd00::1" is not on a \/64 \("IPv6SubnetLen"\) boundary/,
    ],
    ['{"Network":"10.5.0.0/16","EnableIPv6":"yes"}', /"EnableIPv6" must be true or false/],
    ['{"EnableIPv4":false,"EnableIPv6":true}', /IPv6-only network\) is not supported/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseNetworkConfig(text, KEY), re, text);
});
