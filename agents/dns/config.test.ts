import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { parseFlags } from '../common/cli.js';
import { containerAddress } from './announce.js';
import { buildConfig, dnsdFlags, readSubnetFile } from './config.js';
import { allowed, networkList, parseUpstream, resolvConfServers } from './forwarder.js';

const dir = mkdtempSync(join(tmpdir(), 'flt-dnscfg-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const cfg = (argv: string[]) => buildConfig(parseFlags(dnsdFlags, argv, {}).flags);

test('defaults follow SkyDNS and pick up the overlay subnet file', () => {
  const subnet = join(dir, 'subnet.env');
  writeFileSync(
    subnet,
    'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.7.1/24\nFLANNEL_MTU=1450\n',
  );
  assert.deepEqual(readSubnetFile(subnet), { network: '10.5.0.0/16', bridgeIp: '10.5.7.1' });
  const c = cfg(['--subnet-file', subnet, '--nameservers', '10.0.0.2,[fd00::1]:5353']);
  assert.deepEqual(c.addrs, [
    { host: '127.0.0.1', port: 53 },
    { host: '10.5.7.1', port: 53 },
  ]);
  assert.deepEqual(c.zones, ['skydns.local.']);
  assert.equal(c.prefix, '/skydns');
  assert.deepEqual(c.forwardNetworks, ['127.0.0.0/8', '::1/128', '10.5.0.0/16']);
  assert.deepEqual(c.upstreams, [
    { host: '10.0.0.2', port: 53 },
    { host: 'fd00::1', port: 5353 },
  ]);
  assert.equal(c.ttl, 3600);
  assert.equal(c.minTtl, 60);
  const none = cfg(['--subnet-file', join(dir, 'missing'), '--domain', 'A.Example', '--no-rec']);
  assert.deepEqual(none.addrs, [{ host: '127.0.0.1', port: 53 }]);
  assert.match(none.notice ?? '', /--subnet-file .*missing: listening only on 127\.0\.0\.1:53/);
  assert.equal(c.notice, undefined);
  assert.equal(
    cfg(['--subnet-file', join(dir, 'missing'), '--addr', '127.0.0.1:5354']).notice,
    undefined,
  );
  assert.deepEqual(none.zones, ['a.example.']);
  assert.equal(none.noRec, true);
});

test('bad flag values give one-line errors naming the flag', () => {
  const cases: [string[], RegExp][] = [
    [['--addr', 'nope'], /--addr: "nope" is not host:port/],
    [['--domain', 'a b'], /--domain: "a b" is not a domain name/],
    [['--prefix', 'skydns'], /--prefix: "skydns" must be an etcd path/],
    [['--nameservers', 'dns.google'], /--nameservers: "dns.google" is not an IP address/],
    [['--metrics-addr', 'x'], /--metrics-addr: "x" is not host:port/],
    [['--udp-io', 'fast'], /--udp-io: "fast" is not one of auto, batch, dgram/],
  ];
  for (const [argv, re] of cases) assert.throws(() => cfg(argv), re, argv.join(' '));
});

test('resolv.conf, upstreams and forwarding networks', () => {
  assert.deepEqual(
    resolvConfServers(
      '# c\nnameserver 10.0.0.2\nsearch x\nnameserver fe80::1%eth0\nnameserver bogus\n',
    ),
    [
      { host: '10.0.0.2', port: 53 },
      { host: 'fe80::1%eth0', port: 53 },
    ],
  );
  assert.deepEqual(parseUpstream('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
  assert.throws(() => parseUpstream('1.2.3.4:0'), /not an IP address or IP:port/);
  const nets = networkList(['127.0.0.0/8', '10.5.0.0/16', '::1/128']);
  const table: [string, boolean][] = [
    ['127.0.0.1', true],
    ['10.5.200.3', true],
    ['::ffff:10.5.1.1', true],
    ['::1', true],
    ['10.6.0.1', false],
    ['192.168.1.1', false],
    ['not-an-ip', false],
  ];
  for (const [ip, want] of table) assert.equal(allowed(nets, ip), want, ip);
  assert.throws(
    () => networkList(['10.0.0.0/33']),
    /--forward-networks: "10.0.0.0\/33" is not a CIDR/,
  );
});

const inspect = (o: {
  running?: boolean;
  labels?: Record<string, string>;
  ip?: string;
  exposed?: string[];
}) =>
  ({
    Id: 'abcdef0123456789abcdef',
    State: { Running: o.running ?? true },
    Config: {
      Labels: o.labels ?? {},
      ExposedPorts: Object.fromEntries((o.exposed ?? []).map((p) => [p, {}])),
    },
    NetworkSettings: { Networks: { bridge: { IPAddress: o.ip ?? '172.17.0.2' } } },
  }) as unknown as Docker.ContainerInspectInfo;

test('container address from docker inspect data (registrator records: registrator-meta.test.ts)', () => {
  assert.deepEqual(containerAddress(inspect({ exposed: ['8080/tcp', '443/tcp'] })), {
    ip: '172.17.0.2',
    port: 443,
    running: true,
  });
});

test('--round-robin defaults on; lease TTL bounds default to CoreDNS’s and are checked', () => {
  const base = ['--nameservers', '10.0.0.2'];
  const d = cfg(base);
  assert.equal(d.roundRobin, true);
  assert.equal(d.udpIo, 'auto');
  assert.equal(cfg([...base, '--udp-io', 'dgram']).udpIo, 'dgram');
  assert.deepEqual([d.minLeaseTtl, d.maxLeaseTtl], [30, 86400]);
  assert.equal(cfg([...base, '--round-robin=false']).roundRobin, false);
  assert.equal(cfg([...base, '--no-round-robin']).roundRobin, false);
  const c = cfg([...base, '--min-lease-ttl', '5', '--max-lease-ttl', '60']);
  assert.deepEqual([c.minLeaseTtl, c.maxLeaseTtl], [5, 60]);
  assert.throws(
    () => cfg([...base, '--min-lease-ttl', '100', '--max-lease-ttl', '60']),
    /--min-lease-ttl \(100\) and --max-lease-ttl \(60\) need 0 <= min <= max/,
  );
  assert.throws(() => cfg([...base, '--round-robin=maybe']), /--round-robin: "maybe" is not true/);
});
