import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './check.js';
import { dockerOptionsFromDropIn } from './docker-dropin.js';

const dropIn = () =>
  readFileSync(join(REPO_ROOT, 'units', 'docker.service.d', '50-flotilla.conf'), 'utf8');

test('the Docker drop-in gives dockerd the overlay subnet, dnsd on the bridge and the fluentd driver', () => {
  const o = dockerOptionsFromDropIn(dropIn(), { FLANNEL_SUBNET: '10.5.7.1/24', FLANNEL_MTU: 1450 });
  assert.equal(o.bip, '10.5.7.1/24');
  assert.equal(o.mtu, 1450);
  assert.deepEqual(o.dns, ['10.5.7.1']);
  assert.equal(o.logDriver, 'fluentd');
  assert.deepEqual(o.logOpts, {
    'fluentd-address': '127.0.0.1:24224',
    'fluentd-request-ack': 'true',
    'fluentd-sub-second-precision': 'true',
    labels: 'service',
    env: 'SERVICE_NAME',
  });
  assert.ok(o.other.includes('--ip-masq=false'), o.other.join(' '));
});

test('the drop-in is rejected when it stops being one dockerd line', () => {
  const text = dropIn().replace('exec /usr/bin/dockerd', 'exec /usr/bin/containerd');
  assert.throws(
    () => dockerOptionsFromDropIn(text, { FLANNEL_SUBNET: '10.5.7.1/24', FLANNEL_MTU: 1450 }),
    /does not exec dockerd/,
  );
});
