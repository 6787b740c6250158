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
import { IPv6, parseCidr, parseIPv4, parsePrefix } from './ip.js';
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

test('dual-stack: one pass programs each family the peer has, on that family device', () => {
  const v6 = (t: string) => IPv6.parse(t)!;
  const p6 = (t: string) => parsePrefix(IPv6, t)!;
  const dual: DesiredInput = {
    ...base,
    ipv6: {
      self: p6('fd00:5:1::/64'),
      publicIP: v6('fd00:250::1'),
      overlayDev: 'flannel-v6.1',
      externalNets: [p6('fd00:250::/64')],
    },
  };
  const both: Lease = {
    ...lease('10.5.2.0/24', '192.168.0.2', '02:00:00:00:00:02'),
    subnet6: p6('fd00:5:2::/64'),
  };
  both.attrs = {
    ...both.attrs,
    publicIPv6: v6('fd00:250::2'),
    v6vni: 1,
    v6VtepMAC: '06:00:00:00:00:02',
  };
  const v6only: Lease = {
    key: 'k9',
    subnet: parseCidr('10.5.9.0/24')!,
    subnet6: p6('fd00:5:9::/64'),
    attrs: {
      publicIP: 0,
      backendType: 'vxlan',
      publicIPv6: v6('fd00:250::9'),
      v6vni: 1,
      v6VtepMAC: '06:00:00:00:00:09',
    },
    etcdLease: '1',
    modRevision: '1',
  };
  const v4only = lease('10.5.3.0/24', '192.168.9.3', '02:00:00:00:00:03');
  const s = desiredState({ ...dual, leases: [both, v6only, v4only] });
  assert.deepEqual(s.routes, [
    { dst: '10.5.2.0/24', gw: '10.5.2.0', dev: 'flannel.1', onlink: true },
    { dst: 'fd00:5:2::/64', gw: 'fd00:5:2::', dev: 'flannel-v6.1', onlink: true },
    { dst: '10.5.3.0/24', gw: '10.5.3.0', dev: 'flannel.1', onlink: true },
    { dst: 'fd00:5:9::/64', gw: 'fd00:5:9::', dev: 'flannel-v6.1', onlink: true },
  ]);
  assert.deepEqual(
    s.fdb.map((f) => `${f.dev} ${f.mac} ${f.dst}`),
    [
      'flannel.1 02:00:00:00:00:02 192.168.0.2',
      'flannel-v6.1 06:00:00:00:00:02 fd00:250::2',
      'flannel.1 02:00:00:00:00:03 192.168.9.3',
      'flannel-v6.1 06:00:00:00:00:09 fd00:250::9',
    ],
  );
  assert.deepEqual(
    s.neighs.map((n) => `${n.dev} ${n.ip}`),
    [
      'flannel.1 10.5.2.0',
      'flannel-v6.1 fd00:5:2::',
      'flannel.1 10.5.3.0',
      'flannel-v6.1 fd00:5:9::',
    ],
  );
  // DirectRouting applies per family: both peers share our IPv6 L2, so their IPv6 routes go direct.
  const direct = desiredState({
    ...dual,
    backend: { ...vxlan, directRouting: true },
    leases: [both, v6only],
  });
  assert.deepEqual(
    direct.routes.map((r) => `${r.dst} via ${r.gw} dev ${r.dev}`),
    [
      '10.5.2.0/24 via 192.168.0.2 dev eth0',
      'fd00:5:2::/64 via fd00:250::2 dev eth0',
      'fd00:5:9::/64 via fd00:250::9 dev eth0',
    ],
  );
  // Without our IPv6 side (an IPv4-only network) the IPv6-only peer gives nothing.
  assert.deepEqual(desiredState({ ...base, leases: [v6only] }).routes, []);
});
