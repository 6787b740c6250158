import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './check.js';
import { spawnSync } from 'node:child_process';
import { dockerOptionsFromDropIn } from './docker-dropin.js';
import { commandFromUnit, parseUnit } from './unit-file.js';

const dropIn = () =>
  readFileSync(join(REPO_ROOT, 'units', 'docker.service.d', '50-flotilla.conf'), 'utf8');

test('the Docker drop-in gives dockerd the overlay subnet, dnsd on the bridge and rotated json-file logs', () => {
  const o = dockerOptionsFromDropIn(dropIn(), { FLANNEL_SUBNET: '10.5.7.1/24', FLANNEL_MTU: 1450 });
  assert.equal(o.bip, '10.5.7.1/24');
  assert.equal(o.mtu, 1450);
  assert.deepEqual(o.dns, ['10.5.7.1']);
  assert.deepEqual(o.dnsSearch, ['skydns.local']);
  assert.equal(o.logDriver, 'json-file');
  assert.deepEqual(o.logOpts, { 'max-size': '50m', 'max-file': '5' });
  assert.ok(o.other.includes('--ip-masq=false'), o.other.join(' '));
});

test('the drop-in is rejected when it stops being one dockerd line', () => {
  const text = dropIn().replace('exec /usr/bin/dockerd', 'exec /usr/bin/containerd');
  assert.throws(
    () => dockerOptionsFromDropIn(text, { FLANNEL_SUBNET: '10.5.7.1/24', FLANNEL_MTU: 1450 }),
    /does not exec dockerd/,
  );
});

test('a real shell runs the drop-in line to the same dockerd arguments', () => {
  const subnet = { FLANNEL_SUBNET: '10.5.9.1/24', FLANNEL_MTU: '1400' };
  const argv = commandFromUnit(parseUnit(dropIn()), { name: 'docker.service', env: subnet });
  const script = argv[2]!.replace('exec /usr/bin/dockerd', "exec printf '%s\\n'");
  const r = spawnSync('/bin/sh', ['-c', script], {
    env: { ...subnet, DOCKER_OPTS: '--debug --data-root=/d' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const words = r.stdout.trim().split('\n');
  assert.ok(words.includes('--dns=10.5.9.1'), words.join(' '));
  assert.ok(words.includes('--bip=10.5.9.1/24'), words.join(' '));
  assert.ok(words.includes('--mtu=1400'), words.join(' '));
  assert.deepEqual(words.slice(-2), ['--debug', '--data-root=/d']);
  const o = dockerOptionsFromDropIn(dropIn(), subnet);
  const rebuilt = [
    ...o.other.filter((w) => w.startsWith('--host') || w.startsWith('--containerd')),
    `--bip=${o.bip}`,
    `--mtu=${o.mtu}`,
    ...o.other.filter((w) => w.startsWith('--ip-masq')),
    ...o.dns.map((d) => `--dns=${d}`),
    ...o.dnsSearch.map((d) => `--dns-search=${d}`),
    `--log-driver=${o.logDriver}`,
    ...Object.entries(o.logOpts).flatMap(([k, v]) => ['--log-opt', `${k}=${v}`]),
  ];
  assert.deepEqual(words.slice(0, -2), rebuilt);
});
