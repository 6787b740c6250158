import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AppliedLeases,
  desiredState,
  diffState,
  leaseEntries,
  type DesiredInput,
  type KernelState,
} from './reconcile.js';
import { parseNetworkConfig } from './config.js';
import { parseCidr, parseIPv4 } from './ip.js';
import type { Lease } from './lease.js';

const vxlan = parseNetworkConfig('{"Network":"10.5.0.0/16"}', 'k').backend;
const lease = (subnet: string, ip: string, mac?: string, type = 'vxlan'): Lease => ({
  key: subnet,
  subnet: parseCidr(subnet)!,
  attrs: { publicIP: parseIPv4(ip)!, backendType: type, ...(mac ? { vni: 1, vtepMAC: mac } : {}) },
  etcdLease: '1',
  modRevision: '1',
});
const base: DesiredInput = {
  backend: vxlan,
  self: parseCidr('10.5.1.0/24')!,
  publicIP: parseIPv4('192.168.0.1')!,
  overlayDev: 'flannel.1',
  externalDev: 'eth0',
  externalNets: [parseCidr('192.168.0.0/24')!],
  leases: [
    lease('10.5.1.0/24', '192.168.0.1', '02:00:00:00:00:01'),
    lease('10.5.2.0/24', '192.168.0.2', '02:00:00:00:00:02'),
    lease('10.5.3.0/24', '192.168.9.3', '02:00:00:00:00:03'),
    lease('10.5.4.0/24', '192.168.0.4', undefined, 'host-gw'),
  ],
};

test('vxlan: each other vxlan lease gets neighbour, fdb and onlink route; own and non-vxlan leases are ignored', () => {
  assert.deepEqual(desiredState(base), {
    routes: [
      { dst: '10.5.2.0/24', gw: '10.5.2.0', dev: 'flannel.1', onlink: true },
      { dst: '10.5.3.0/24', gw: '10.5.3.0', dev: 'flannel.1', onlink: true },
    ],
    neighs: [
      { ip: '10.5.2.0', mac: '02:00:00:00:00:02', dev: 'flannel.1' },
      { ip: '10.5.3.0', mac: '02:00:00:00:00:03', dev: 'flannel.1' },
    ],
    fdb: [
      { mac: '02:00:00:00:00:02', dst: '192.168.0.2', dev: 'flannel.1' },
      { mac: '02:00:00:00:00:03', dst: '192.168.9.3', dev: 'flannel.1' },
    ],
  });
});

test('vxlan DirectRouting: peers on our L2 get a plain route via their PublicIP', () => {
  const s = desiredState({ ...base, backend: { ...vxlan, directRouting: true } });
  assert.deepEqual(s.routes, [
    { dst: '10.5.2.0/24', gw: '192.168.0.2', dev: 'eth0', onlink: false },
    { dst: '10.5.3.0/24', gw: '10.5.3.0', dev: 'flannel.1', onlink: true },
  ]);
  assert.deepEqual(
    s.neighs.map((n) => n.ip),
    ['10.5.3.0'],
  );
});

test('host-gw: only host-gw leases, routed via their PublicIP', () => {
  const s = desiredState({ ...base, backend: { ...vxlan, type: 'host-gw' } });
  assert.deepEqual(s, {
    routes: [{ dst: '10.5.4.0/24', gw: '192.168.0.4', dev: 'eth0', onlink: false }],
    neighs: [],
    fdb: [],
  });
});

test('diff: equal states give no ops', () => {
  const s = desiredState(base);
  const copy: KernelState = JSON.parse(JSON.stringify(s)) as KernelState;
  copy.routes.reverse();
  assert.deepEqual(diffState(s, copy), []);
});

test('diff: adds, replaces changed entries in place, removes vanished ones, in a safe order', () => {
  const desired = desiredState(base);
  const actual: KernelState = {
    routes: [
      { dst: '10.5.2.0/24', gw: '10.5.2.0', dev: 'flannel.1', onlink: true },
      { dst: '10.5.9.0/24', gw: '10.5.9.0', dev: 'flannel.1', onlink: true },
    ],
    neighs: [
      { ip: '10.5.2.0', mac: '02:00:00:00:00:99', dev: 'flannel.1' },
      { ip: '10.5.9.0', mac: '02:00:00:00:00:09', dev: 'flannel.1' },
    ],
    fdb: [{ mac: '02:00:00:00:00:09', dst: '192.168.0.9', dev: 'flannel.1' }],
  };
  const ops = diffState(desired, actual).map(
    (o) => `${o.action} ${o.kind} ${Object.values(o.entry).join(' ')}`,
  );
  assert.deepEqual(ops, [
    'del route 10.5.9.0/24 10.5.9.0 flannel.1 true',
    'del neigh 10.5.9.0 02:00:00:00:00:09 flannel.1',
    'del fdb 02:00:00:00:00:09 192.168.0.9 flannel.1',
    'add fdb 02:00:00:00:00:02 192.168.0.2 flannel.1',
    'add fdb 02:00:00:00:00:03 192.168.9.3 flannel.1',
    'replace neigh 10.5.2.0 02:00:00:00:00:02 flannel.1',
    'add neigh 10.5.3.0 02:00:00:00:00:03 flannel.1',
    'add route 10.5.3.0/24 10.5.3.0 flannel.1 true',
  ]);
});

test('diff: a lease that vanished while we were down is removed from every table', () => {
  const withGone = desiredState(base);
  const now = desiredState({ ...base, leases: base.leases.filter((l) => l.key !== '10.5.3.0/24') });
  const ops = diffState(now, withGone);
  assert.deepEqual(
    ops.map((o) => `${o.action} ${o.kind}`),
    ['del route', 'del neigh', 'del fdb'],
  );
  assert.ok(
    ops.every(
      (o) =>
        JSON.stringify(o.entry).includes('10.5.3.0') ||
        JSON.stringify(o.entry).includes('192.168.9.3'),
    ),
  );
});

test('a lease event costs only its own delta against what was applied for it', () => {
  const applied = new AppliedLeases();
  const peer = lease('10.5.2.0/24', '192.168.0.2', '02:00:00:00:00:02');
  const show = (ops: ReturnType<AppliedLeases['update']>) =>
    ops.map((o) => `${o.action} ${o.kind} ${Object.values(o.entry).join(' ')}`);
  assert.deepEqual(show(applied.update(peer.key, leaseEntries(base, peer))), [
    'add fdb 02:00:00:00:00:02 192.168.0.2 flannel.1',
    'add neigh 10.5.2.0 02:00:00:00:00:02 flannel.1',
    'add route 10.5.2.0/24 10.5.2.0 flannel.1 true',
  ]);
  assert.deepEqual(applied.update(peer.key, leaseEntries(base, peer)), [], 'same lease again');
  const moved = lease('10.5.2.0/24', '192.168.0.7', '02:00:00:00:00:07');
  assert.deepEqual(show(applied.update(moved.key, leaseEntries(base, moved))), [
    'del fdb 02:00:00:00:00:02 192.168.0.2 flannel.1',
    'add fdb 02:00:00:00:00:07 192.168.0.7 flannel.1',
    'replace neigh 10.5.2.0 02:00:00:00:00:07 flannel.1',
  ]);
  assert.deepEqual(show(applied.update(moved.key, undefined)), [
    'del route 10.5.2.0/24 10.5.2.0 flannel.1 true',
    'del neigh 10.5.2.0 02:00:00:00:00:07 flannel.1',
    'del fdb 02:00:00:00:00:07 192.168.0.7 flannel.1',
  ]);
  const own = base.leases[0]!;
  assert.deepEqual(applied.update(own.key, leaseEntries(base, own)), [], 'own lease');
});
