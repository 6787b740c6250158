import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { envScript, findHost } from './cluster-env.js';
import { devWrapper, shQuote } from './dev-bin.js';

const hosts = [
  { name: 'fltdemo-h1', ip: '10.231.7.11', dockerSocket: '/tmp/fltdemo/h1/docker/docker.sock' },
  { name: 'fltdemo-h2', ip: '10.231.7.12', dockerSocket: '/tmp/fltdemo/h2/docker/docker.sock' },
];

test('a host is named by its number, hN or its namespace', () => {
  for (const [arg, want] of [
    ['2', 'fltdemo-h2'],
    ['h1', 'fltdemo-h1'],
    ['fltdemo-h2', 'fltdemo-h2'],
    ['3', undefined],
    ['h', undefined],
  ] as const)
    assert.equal(findHost(hosts, arg)?.name, want, arg);
});

test('shQuote leaves plain words alone and quotes the rest for sh', () => {
  for (const s of ['/a/b', "it's", 'a b', '$HOME', ''])
    assert.equal(execFileSync('sh', ['-c', `printf %s ${shQuote(s)}`], { encoding: 'utf8' }), s);
  assert.equal(shQuote('unix:///x/y.sock'), 'unix:///x/y.sock');
});

test('the env script, evaluated by sh, sets every variable and adds dist/bin to PATH once', () => {
  const script = envScript({
    host: hosts[1]!,
    index: 2,
    etcdEndpoints: ['http://10.231.7.1:2379'],
    logsServer: 'http://10.231.7.11:24241',
    logsTokenFile: '/tmp/fltdemo/etc/flotilla/logs-token',
    binDir: '/repo with space/dist/bin',
  });
  const out = execFileSync(
    'sh',
    [
      '-c',
      `eval "$1"; eval "$1"; echo "$DOCKER_HOST|$ETCDCTL_API|$ETCDCTL_ENDPOINTS|$LOGS_SERVER|$FLOTILLA_LOGS_SERVER|$FLOTILLA_LOGS_TOKEN_FILE"; echo "$PATH"`,
      'sh',
      script,
    ],
    { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } },
  ).split('\n');
  assert.equal(
    out[0],
    'unix:///tmp/fltdemo/h2/docker/docker.sock|3|http://10.231.7.1:2379|http://10.231.7.11:24241|http://10.231.7.11:24241|/tmp/fltdemo/etc/flotilla/logs-token',
  );
  assert.equal(out[1], '/repo with space/dist/bin:/usr/bin:/bin');
});

test('with a secure etcd, every tool finds the operator certificate under the name it reads', () => {
  const script = envScript({
    host: hosts[0]!,
    index: 1,
    etcdEndpoints: ['https://10.231.7.1:2379'],
    logsServer: 'http://10.231.7.11:24241',
    etcdTls: { caFile: '/p/ca.pem', certFile: '/p/root.pem', keyFile: "/p/it's-key.pem" },
    binDir: '/r/dist/bin',
  });
  const names = [
    'ETCDCTL_ENDPOINTS',
    // etcdctl's own names
    'ETCDCTL_CACERT',
    'ETCDCTL_CERT',
    'ETCDCTL_KEY',
    // the flags' env equivalents of announce/dnsctl/dnsd, logs/logsd, overlayd
    ...['SKYDNS', 'FLOTILLA', 'FLANNELD'].flatMap((p) =>
      ['CAFILE', 'CERTFILE', 'KEYFILE'].map((k) => `${p}_ETCD_${k}`),
    ),
  ];
  const out = execFileSync(
    'sh',
    ['-c', `eval "$1"; for n in ${names.join(' ')}; do eval "echo \\$$n"; done`, 'sh', script],
    { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } },
  );
  assert.deepEqual(out.trim().split('\n'), [
    'https://10.231.7.1:2379',
    ...Array.from({ length: 4 }, () => ['/p/ca.pem', '/p/root.pem', "/p/it's-key.pem"]).flat(),
  ]);
  // etcdctl warns about every ETCDCTL_ variable it does not know: none of ours.
  assert.doesNotMatch(script, /ETCDCTL_(CAFILE|CERTFILE|KEYFILE)/);
});

test('a wrapper runs its node on its script with the arguments as given', () => {
  const w = devWrapper('logs', '/bin/echo', "/r/it's.js");
  const out = execFileSync('sh', ['-c', w, 'logs', 'tail', 'a b'], { encoding: 'utf8' });
  assert.equal(out, "/r/it's.js tail a b\n");
});
