/**
 * Lease keys and records at their edges, one row each (flannel's formats): keys under another
 * prefix or with junk around the subnet are not leases; a prefix with trailing slashes names the
 * same keys; a record that is not a JSON object, or has a PublicIP/VtepMAC of the wrong type,
 * is rejected with its reason (a non-string BackendType reads as none); a missing or non-integer VNI reads as 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeLease, keyToSubnet, LeaseFormatError, subnetKey, subnetsPrefix } from './lease.js';
import { formatCidr, parseCidr } from './ip.js';

const P = '/coreos.com/network';

test('keys: only <prefix>/subnets/a.b.c.d-len names a subnet', () => {
  const rows: [string, string | undefined][] = [
    [`${P}/subnets/10.5.7.0-24`, '10.5.7.0/24'],
    [`${P}/subnets/10.5.17.0-24`, '10.5.17.0/24'],
    [`${P}/subnets/10.5.7.0-24x`, undefined],
    [`${P}/subnets/x10.5.7.0-24`, undefined],
    [`${P}/subnets/10.5.7-24`, undefined],
    [`/other/subnets/10.5.7.0-24`, undefined],
    [`${P}/subnet/10.5.7.0-24`, undefined],
  ];
  for (const [key, want] of rows) {
    const s = keyToSubnet(P, key);
    assert.equal(s ? formatCidr(s) : undefined, want, key);
  }
  assert.equal(subnetsPrefix(`${P}//`), `${P}/subnets/`);
  assert.equal(subnetKey(`${P}/`, parseCidr('10.5.7.0/24')!), `${P}/subnets/10.5.7.0-24`);
});

test('records: wrong shapes are rejected with a reason; VNI defaults to 1', () => {
  const bad: [string, RegExp][] = [
    ['{', /not JSON/],
    ['[1]', /object/],
    ['null', /object/],
    ['"x"', /object/],
    ['{"PublicIP":7,"BackendType":"vxlan"}', /PublicIP/],
    ['{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VtepMAC":5}}', /VtepMAC/],
  ];
  for (const [text, re] of bad) {
    assert.throws(
      () => decodeLease(text),
      (e: unknown) =>
        e instanceof LeaseFormatError && e.name === 'LeaseFormatError' && re.test(e.message),
      text,
    );
  }
  // A BackendType that is not a string reads as none (not a backend we program).
  assert.equal(decodeLease('{"PublicIP":"10.0.0.1","BackendType":7}').backendType, '');
  const long = `{${'x'.repeat(500)}`;
  assert.throws(
    () => decodeLease(long),
    (e: Error) => e.message.length < 200,
    'the reason quotes at most the start of a long record',
  );
  const mac = '"BackendData":{"VtepMAC":"02:00:00:00:00:01"';
  for (const [vni, want] of [
    ['', 1],
    [',"VNI":4', 4],
    [',"VNI":"4"', 1],
    [',"VNI":1.5', 1],
  ] as const) {
    const a = decodeLease(`{"PublicIP":"10.0.0.1","BackendType":"vxlan",${mac}${vni}}}`);
    assert.equal(a.vni, want, vni);
  }
});
