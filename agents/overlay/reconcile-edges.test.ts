/**
 * desiredState's skips and orders, one row each: a lease of another subnet that carries our own
 * PublicIP (a stale lease of this host) is not a peer; a vxlan lease without a VtepMAC is not
 * programmed; DirectRouting applies to exactly the peers inside one of our external networks;
 * the output is ordered by subnet whatever order the leases came in; and an entry differing in
 * one field only is replaced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredState, diffState, type DesiredInput } from './reconcile.js';
import { parseNetworkConfig } from './config.js';
import { parseCidr, parseIPv4 } from './ip.js';
import type { Lease } from './lease.js';

const lease = (subnet: string, ip: string, mac?: string): Lease => ({
  key: subnet,
  subnet: parseCidr(subnet)!,
  attrs: {
    publicIP: parseIPv4(ip)!,
    backendType: 'vxlan',
    ...(mac ? { vni: 1, vtepMAC: mac } : {}),
  },
  etcdLease: '1',
  modRevision: '1',
});
const input = (leases: Lease[], direct = false): DesiredInput => ({
  backend: parseNetworkConfig(
    `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":${direct}}}`,
    'k',
  ).backend,
  self: parseCidr('10.5.1.0/24')!,
  publicIP: parseIPv4('192.168.0.1')!,
  overlayDev: 'flannel.1',
  externalDev: 'eth0',
  externalNets: [parseCidr('192.168.0.0/24')!, parseCidr('172.16.0.0/16')!],
  leases,
});
const dsts = (i: DesiredInput) => desiredState(i).routes.map((r) => `${r.dst} ${r.dev}`);

test('a lease with our PublicIP under another subnet is not a peer; a vxlan lease without MAC is skipped', () => {
  assert.deepEqual(
    dsts(
      input([
        lease('10.5.9.0/24', '192.168.0.1', '02:00:00:00:00:09'),
        lease('10.5.2.0/24', '192.168.0.2'),
        lease('10.5.3.0/24', '192.168.0.3', '02:00:00:00:00:03'),
      ]),
    ),
    ['10.5.3.0/24 flannel.1'],
  );
});

test('DirectRouting: a plain route for peers inside any external network, overlay for the rest', () => {
  assert.deepEqual(
    dsts(
      input(
        [
          lease('10.5.2.0/24', '192.168.0.2', '02:00:00:00:00:02'),
          lease('10.5.3.0/24', '172.16.5.5', '02:00:00:00:00:03'),
          lease('10.5.4.0/24', '10.9.9.9', '02:00:00:00:00:04'),
        ],
        true,
      ),
    ),
    ['10.5.2.0/24 eth0', '10.5.3.0/24 eth0', '10.5.4.0/24 flannel.1'],
  );
});

test('output is ordered by subnet, whatever order the leases arrive in', () => {
  const ls = ['10.5.30.0/24', '10.5.4.0/24', '10.5.200.0/24', '10.5.2.0/24'].map((s, i) =>
    lease(s, `192.168.0.${i + 2}`, `02:00:00:00:00:0${i + 2}`),
  );
  const want = ['10.5.2.0/24', '10.5.4.0/24', '10.5.30.0/24', '10.5.200.0/24'].map(
    (s) => `${s} flannel.1`,
  );
  assert.deepEqual(dsts(input(ls)), want);
  assert.deepEqual(dsts(input([...ls].reverse())), want);
});

test('an entry that differs in one field is replaced; an identical one is left alone', () => {
  const desired = desiredState(input([lease('10.5.2.0/24', '192.168.0.2', '02:00:00:00:00:02')]));
  assert.deepEqual(diffState(desired, desired), []);
  const moved = { ...desired, fdb: [{ ...desired.fdb[0]!, dst: '192.168.0.9' }] };
  assert.deepEqual(diffState(desired, moved), [
    { action: 'replace', kind: 'fdb', entry: desired.fdb[0] },
  ]);
});
