import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSubnetEnvSubnet,
  parseSubnetEnvSubnet6,
  renderDockerOpts,
  renderSubnetEnv,
  writeFileAtomic,
} from './subnet-env.js';
import { IPv6, formatCidr, formatPrefix, parseCidr, parsePrefix } from './ip.js';

const env = {
  network: parseCidr('10.5.0.0/16')!,
  subnet: parseCidr('10.5.7.0/24')!,
  mtu: 1450,
  ipMasq: false,
};

test('subnet.env is byte-identical to flanneld', () => {
  assert.equal(
    renderSubnetEnv(env),
    'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
  );
  assert.equal(formatCidr(parseSubnetEnvSubnet(renderSubnetEnv(env))!), '10.5.7.0/24');
  assert.equal(parseSubnetEnvSubnet('FLANNEL_MTU=1\n'), undefined);
});

test('docker options match mk-docker-opts.sh (docker masquerades only when we do not)', () => {
  assert.equal(
    renderDockerOpts(env),
    'DOCKER_OPT_BIP="--bip=10.5.7.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1450"\nDOCKER_OPTS=" --bip=10.5.7.1/24 --ip-masq=true --mtu=1450"\n',
  );
  assert.match(renderDockerOpts({ ...env, ipMasq: true }), /--ip-masq=false/);
});

test('atomic write creates the directory and leaves no temp file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flt-ovl-'));
  try {
    const file = join(dir, 'run', 'subnet.env');
    await writeFileAtomic(file, 'a\n');
    await writeFileAtomic(file, 'b\n');
    assert.equal(await readFile(file, 'utf8'), 'b\n');
    assert.deepEqual(await readdir(join(dir, 'run')), ['subnet.env']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dual-stack subnet.env is byte-identical to flanneld (IPv6 lines after the IPv4 ones)', () => {
  const dual = {
    ...env,
    ipv6: {
      network: parsePrefix(IPv6, 'fd00:5::/48')!,
      subnet: parsePrefix(IPv6, 'fd00:5:7::/64')!,
    },
  };
  const text = renderSubnetEnv(dual);
  assert.equal(
    text,
    'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.7.1/24\n' +
      'FLANNEL_IPV6_NETWORK=fd00:5::/48\nFLANNEL_IPV6_SUBNET=fd00:5:7::1/64\n' +
      'FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
  );
  assert.equal(formatPrefix(IPv6, parseSubnetEnvSubnet6(text)!), 'fd00:5:7::/64');
  assert.equal(parseSubnetEnvSubnet6(renderSubnetEnv(env)), undefined);
});
