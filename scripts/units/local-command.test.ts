import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './check.js';
import { localCommand } from './local-command.js';

const unit = (name: string) => readFileSync(join(REPO_ROOT, 'units', name), 'utf8');

test('localCommand: overlayd.service as run on a harness host', () => {
  const argv = localCommand(unit('overlayd.service'), {
    name: 'overlayd.service',
    repoRoot: REPO_ROOT,
    node: '/usr/bin/node',
    env: { COREOS_PRIVATE_IPV4: '10.77.0.2', FLOTILLA_ETCD_ENDPOINTS: 'http://10.77.0.1:2379' },
    relocate: { '/run/flannel/': '/tmp/c/h1/flannel/' },
  });
  assert.deepEqual(argv.slice(0, 2), ['/usr/bin/node', join(REPO_ROOT, 'dist/agents/overlay/main.js')]);
  for (const want of [
    '--etcd-endpoints=http://10.77.0.1:2379',
    '--iface=10.77.0.2',
    '--public-ip=10.77.0.2',
    '--subnet-file=/tmp/c/h1/flannel/subnet.env',
    '--docker-opts-file=/tmp/c/h1/flannel/docker',
  ])
    assert.ok(argv.includes(want), `${want} in ${argv.join(' ')}`);
});

test('localCommand: logsd agent with its buffer relocated and the host name', () => {
  const argv = localCommand(unit('logsd.service'), {
    name: 'logsd.service',
    repoRoot: REPO_ROOT,
    node: 'node',
    env: { FLOTILLA_LOGS_AGGREGATOR: '10.77.0.4:24240', COREOS_PRIVATE_IPV4: '10.77.0.3' },
    specifiers: { H: 'flt-h2' },
    relocate: { '/var/lib/flotilla/': '/tmp/c/h2/lib/', '/var/lib/docker/': '/tmp/c/h2/docker/' },
  });
  assert.deepEqual(argv, [
    'node',
    join(REPO_ROOT, 'dist/agents/logs/main.js'),
    'agent',
    '--listen',
    '127.0.0.1:24224',
    '--containers-dir',
    '/tmp/c/h2/docker/containers',
    '--buffer-dir',
    '/tmp/c/h2/lib/logs',
    '--aggregator',
    '10.77.0.4:24240',
    '--hostname',
    'flt-h2',
    '--http',
    '10.77.0.3:24230',
  ]);
});

test('localCommand: non-Flotilla commands stay as written (nginx@ runs docker)', () => {
  const argv = localCommand(unit('nginx@.service'), {
    name: 'nginx@1.service',
    repoRoot: REPO_ROOT,
    env: { NGINX_IMAGE: 'flotilla-test', NGINX_COMMAND: 'httpd -f -p 80' },
  });
  assert.equal(argv[0], '/usr/bin/docker');
  assert.ok(argv.join(' ').endsWith('flotilla-test httpd -f -p 80'), argv.join(' '));
});

test('localCommand: a unit naming a command that is not a package.json bin is refused', () => {
  const text = unit('dnsd.service').replace('/opt/flotilla/bin/dnsd', '/opt/flotilla/bin/skydns');
  assert.throws(
    () => localCommand(text, { name: 'dnsd.service', repoRoot: REPO_ROOT }),
    /\/opt\/flotilla\/bin\/skydns is not a package.json bin/,
  );
});
