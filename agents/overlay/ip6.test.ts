import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IPv6, addrToBytes, bytesToAddr, formatPrefix, parseIPv6, parsePrefix } from './ip.js';

test('IPv6 text is what Go net.IP.String() prints (RFC 5952)', () => {
  const table: [string, string][] = [
    ['fd00:5:7:0:0:0:0:0', 'fd00:5:7::'],
    ['FD00:0005:0007::1', 'fd00:5:7::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['::ffff:0:10.1.2.3', '::ffff:0:a01:203'],
  ];
  for (const [text, want] of table) assert.equal(IPv6.format(parseIPv6(text)!), want, text);
  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', 'fd00::g', '12345::', ':', '1.2.3.4', ''])
    assert.equal(parseIPv6(bad), undefined, bad);
});

test('IPv6 addresses round-trip through text and kernel bytes', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (ip) => {
      const text = IPv6.format(ip);
      assert.equal(parseIPv6(text), ip);
      assert.equal(bytesToAddr(addrToBytes(text)), text);
      assert.equal(addrToBytes(text).length, 16);
    }),
  );
});

test('IPv6 prefixes: host bits cleared, or rejected when strict', () => {
  assert.equal(formatPrefix(IPv6, parsePrefix(IPv6, 'fd00:5:7::1/64')!), 'fd00:5:7::/64');
  assert.equal(parsePrefix(IPv6, 'fd00:5:7::1/64', true), undefined);
  assert.equal(parsePrefix(IPv6, 'fd00::/129'), undefined);
});
