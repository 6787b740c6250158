// Table tests for the network config parser (config.ts), written for the survivors of
// `npm run mutate -- overlay/config`: the exact one-line error for each bad field, each bound
// of each number (the last valid value and the first invalid one), and the pool checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig, poolFits, subnetFits } from './config.js';
import { IPv6, formatIPv4, parseCidr, parsePrefix } from './ip.js';

const KEY = '/coreos.com/network/config';
const parse = (doc: unknown) =>
  parseNetworkConfig(typeof doc === 'string' ? doc : JSON.stringify(doc), KEY);
const N = { Network: '10.5.0.0/16' };
const V6 = { ...N, EnableIPv6: true, IPv6Network: 'fd00:5::/48' };

test('each bad field gives exactly this one line', () => {
  const table: [unknown, string][] = [
    ['null', 'must be a JSON object like {"Network": "10.5.0.0/16"}'],
    ['"10.5.0.0/16"', 'must be a JSON object like {"Network": "10.5.0.0/16"}'],
    ['42', 'must be a JSON object like {"Network": "10.5.0.0/16"}'],
    [{}, '"Network" is missing (e.g. "10.5.0.0/16")'],
    [{ Network: 123 }, '"Network" is not a CIDR (123)'],
    [{ Network: null }, '"Network" is not a CIDR (null)'],
    [
      { Network: '10.5.0.0/29' },
      '"Network" is too small ("10.5.0.0/29"); the smallest useful network is a /28',
    ],
    [{ ...N, EnableIPv6: 'yes' }, '"EnableIPv6" must be true or false ("yes")'],
    [{ ...N, EnableIPv6: true }, '"IPv6Network" is missing (e.g. "fd00:5::/48")'],
    [
      { ...N, EnableIPv6: true, IPv6Network: '10.0.0.0/8' },
      '"IPv6Network" is not an IPv6 CIDR ("10.0.0.0/8")',
    ],
    [
      { ...N, EnableIPv6: true, IPv6Network: 'fd00::/125' },
      '"IPv6Network" is too small ("fd00::/125"); the smallest useful network is a /124',
    ],
    [{ ...N, SubnetLen: -1 }, '"SubnetLen" must be a whole number from 1 to 30 (-1)'],
    [{ ...N, SubnetLen: 31 }, '"SubnetLen" must be a whole number from 1 to 30 (31)'],
    [{ ...N, SubnetLen: 24.5 }, '"SubnetLen" must be a whole number from 1 to 30 (24.5)'],
    [{ ...N, SubnetLen: '24' }, '"SubnetLen" must be a whole number from 1 to 30 ("24")'],
    [
      { ...N, SubnetLen: 17 },
      '"SubnetLen" 17 leaves fewer than four subnets in 10.5.0.0/16; use at least 18',
    ],
    [
      { Network: '0.0.0.0/0', SubnetLen: 1 },
      '"SubnetLen" 1 leaves fewer than four subnets in 0.0.0.0/0; use at least 2',
    ],
    [{ ...V6, IPv6SubnetLen: 127 }, '"IPv6SubnetLen" must be a whole number from 1 to 126 (127)'],
    [{ ...N, SubnetMin: 5 }, '"SubnetMin" is not an IPv4 address (5)'],
    [{ ...N, SubnetMin: 'junk' }, '"SubnetMin" is not an IPv4 address ("junk")'],
    [{ ...N, SubnetMax: '10.6.0.0' }, '"SubnetMax" "10.6.0.0" is outside "Network" 10.5.0.0/16'],
    [
      { ...V6, IPv6SubnetMax: 'fd00:6::' },
      '"IPv6SubnetMax" "fd00:6::" is outside "IPv6Network" fd00:5::/48',
    ],
    [
      { ...V6, IPv6SubnetMin: 'fd00:5:0:9::', IPv6SubnetMax: 'fd00:5:0:8::' },
      '"IPv6SubnetMin" fd00:5:0:9:: is above "IPv6SubnetMax" fd00:5:0:8::; no subnet can be allocated',
    ],
    [{ ...N, Backend: 'vxlan' }, '"Backend" must be an object like {"Type": "vxlan"} ("vxlan")'],
    [{ ...N, Backend: [] }, '"Backend" must be an object like {"Type": "vxlan"} ([])'],
    [
      { ...N, Backend: { VNI: 16_777_216 } },
      '"Backend.VNI" must be a whole number from 0 to 16777215 (16777216)',
    ],
    [
      { ...N, Backend: { VNI: -1 } },
      '"Backend.VNI" must be a whole number from 0 to 16777215 (-1)',
    ],
    [
      { ...N, Backend: { Port: 65_536 } },
      '"Backend.Port" must be a whole number from 1 to 65535 (65536)',
    ],
    [
      { ...N, Backend: { Port: 1.5 } },
      '"Backend.Port" must be a whole number from 1 to 65535 (1.5)',
    ],
    [
      { ...N, Backend: { MTU: 575 } },
      '"Backend.MTU" must be a whole number from 576 to 65535 (575)',
    ],
    [
      { ...N, Backend: { MTU: 65_536 } },
      '"Backend.MTU" must be a whole number from 576 to 65535 (65536)',
    ],
    [{ ...N, Backend: { Learning: 1 } }, '"Backend.Learning" must be true or false (1)'],
  ];
  for (const [doc, msg] of table)
    assert.throws(
      () => parse(doc),
      (err: Error) => err.name === 'ConfigError' && err.message === `config at ${KEY}: ${msg}`,
      `${JSON.stringify(doc)} → ${msg}`,
    );
});

test('the last valid value of each bound is accepted, and 0 or empty means the default', () => {
  const ok: [unknown, (c: ReturnType<typeof parse>) => unknown, unknown][] = [
    [{ ...N, SubnetLen: 30 }, (c) => c.subnetLen, 30],
    [{ ...N, SubnetLen: 18 }, (c) => c.subnetLen, 18],
    [{ ...N, SubnetLen: 0 }, (c) => c.subnetLen, 24],
    [{ Network: '0.0.0.0/0', SubnetLen: 2 }, (c) => c.subnetLen, 2],
    [{ ...V6, IPv6SubnetLen: 126 }, (c) => c.ipv6!.subnetLen, 126],
    [{ ...N, SubnetMin: '' }, (c) => formatIPv4(c.subnetMin), '10.5.1.0'],
    [{ ...N, SubnetMin: null }, (c) => formatIPv4(c.subnetMin), '10.5.1.0'],
    [{ ...N, SubnetMin: '10.5.0.0' }, (c) => formatIPv4(c.subnetMin), '10.5.0.0'],
    [
      { ...N, SubnetMin: '10.5.9.0', SubnetMax: '10.5.9.0' },
      (c) => formatIPv4(c.subnetMax),
      '10.5.9.0',
    ],
    [{ ...N, Backend: null }, (c) => c.backend.type, 'vxlan'],
    [{ ...N, Backend: { VNI: 0 } }, (c) => c.backend.vni, 1],
    [{ ...N, Backend: { VNI: 16_777_215 } }, (c) => c.backend.vni, 16_777_215],
    [{ ...N, Backend: { Port: 0 } }, (c) => c.backend.port, 8472],
    [{ ...N, Backend: { Port: 1 } }, (c) => c.backend.port, 1],
    [{ ...N, Backend: { Port: 65_535 } }, (c) => c.backend.port, 65_535],
    [{ ...N, Backend: { MTU: 576 } }, (c) => c.backend.mtu, 576],
    [{ ...N, Backend: { MTU: 1400 } }, (c) => c.backend.mtu, 1400],
    [{ ...N, Backend: { MTU: 65_535 } }, (c) => c.backend.mtu, 65_535],
    [{ ...N, Backend: { MTU: 0 } }, (c) => c.backend.mtu, undefined],
    [{ ...N, Backend: { Learning: true } }, (c) => c.backend.learning, true],
    [
      { ...N, Backend: { learning: true, directrouting: true } },
      (c) => [c.backend.learning, c.backend.directRouting],
      [true, true],
    ],
    // An exact-case key wins over one that only matches case-insensitively (as Go does).
    [
      '{"network":"10.6.0.0/16","Network":"10.5.0.0/16"}',
      (c) => formatIPv4(c.network.ip),
      '10.5.0.0',
    ],
  ];
  for (const [doc, get, want] of ok) assert.deepEqual(get(parse(doc)), want, JSON.stringify(doc));
});

test('subnetFits and poolFits: length and both ends of [min, max] inclusive', () => {
  const c = parse({ ...N, SubnetMin: '10.5.3.0', SubnetMax: '10.5.9.0' });
  const table: [string, boolean][] = [
    ['10.5.3.0/24', true],
    ['10.5.9.0/24', true],
    ['10.5.2.0/24', false],
    ['10.5.10.0/24', false],
    ['10.5.3.0/25', false],
  ];
  for (const [s, want] of table) assert.equal(subnetFits(c, parseCidr(s)!), want, s);
  const pool = parse({ ...V6, IPv6SubnetMin: 'fd00:5:0:3::', IPv6SubnetMax: 'fd00:5:0:9::' }).ipv6!;
  const table6: [string, boolean][] = [
    ['fd00:5:0:3::/64', true],
    ['fd00:5:0:9::/64', true],
    ['fd00:5:0:5::/64', true],
    ['fd00:5:0:2::/64', false],
    ['fd00:5:0:a::/64', false],
    ['fd00:5:0:5::/80', false],
    ['fd00:5:0:5::/63', false],
  ];
  for (const [s, want] of table6) assert.equal(poolFits(pool, parsePrefix(IPv6, s)!), want, s);
});
