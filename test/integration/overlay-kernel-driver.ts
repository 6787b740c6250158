/**
 * Runs one reconcile of the vxlan/host-gw backend against the current network namespace, for
 * overlay-kernel.test.ts (started with nsenter inside a test namespace). Input: JSON on argv[2]
 * { iface, backend, self, leases: [[subnet, publicIP, mac?]] }; output: JSON { mac, ops }.
 */
import { Kernel } from '../../agents/overlay/kernel.js';
import { VxlanBackend } from '../../agents/overlay/backends/vxlan.js';
import { HostGwBackend } from '../../agents/overlay/backends/host-gw.js';
import { parseNetworkConfig } from '../../agents/overlay/config.js';
import { parseCidr, parseIPv4 } from '../../agents/overlay/ip.js';
import { desiredState, diffState } from '../../agents/overlay/reconcile.js';
import type { Lease } from '../../agents/overlay/lease.js';

interface Input {
  iface: string;
  backend: string;
  self: string;
  leases: [string, string, string?][];
}
const input = JSON.parse(process.argv[2]!) as Input;
const cfg = parseNetworkConfig(
  JSON.stringify({ Network: '10.5.0.0/16', Backend: { Type: input.backend } }),
  'test',
);
const kernel = new Kernel();
const link = await kernel.linkByName(input.iface);
if (!link) throw new Error(`no ${input.iface}`);
const addr = (await kernel.addresses()).get(link.index)![0]!;
const external = {
  link,
  publicIP: addr.ip,
  localIP: addr.ip,
  nets: [{ ip: addr.ip & ~(2 ** (32 - addr.len) - 1), len: addr.len }],
};
const backend =
  input.backend === 'vxlan'
    ? new VxlanBackend({ kernel, external }, cfg.backend)
    : new HostGwBackend({ kernel, external });
await backend.ensureDevice();
const self = parseCidr(input.self)!;
await backend.configure(self);
const leases: Lease[] = input.leases.map(([s, ip, mac]) => ({
  key: s,
  subnet: parseCidr(s)!,
  attrs: {
    publicIP: parseIPv4(ip)!,
    backendType: input.backend,
    ...(mac ? { vni: 1, vtepMAC: mac } : {}),
  },
  etcdLease: '1',
  modRevision: '1',
}));
const desired = desiredState({
  backend: cfg.backend,
  self,
  publicIP: external.publicIP,
  overlayDev: backend.overlayDev ?? '',
  externalDev: link.name,
  externalNets: external.nets,
  leases,
});
const devices = backend.devices();
const scope = {
  network: cfg.network,
  devices: new Map([...devices].map(([n, i]) => [i, n])),
  overlayIndex: backend.overlayIndex(),
};
const ops = diffState(desired, await kernel.readState(scope));
const failures = await kernel.apply(ops, devices);
const after = diffState(desired, await kernel.readState(scope));
process.stdout.write(
  JSON.stringify({
    mac: backend.type === 'vxlan' ? backend.leaseAttrs().vtepMAC : undefined,
    ops: ops.map((o) => `${o.action} ${o.kind}`),
    failures: failures.map((f) => `${f.op.action} ${f.op.kind}: ${f.err.message}`),
    remaining: after.length,
  }),
);
kernel.close();
