import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  UnitSyntaxError,
  commandFromUnit,
  environmentOf,
  expandExecWords,
  expandSpecifiers,
  listValues,
  parseUnit,
  parseUnitName,
  specifiersIn,
  splitExec,
  templateOf,
} from './unit-file.js';
import { REPO_ROOT } from './check.js';

test('parseUnit: sections, keys, comments, whitespace around =', () => {
  const u = parseUnit('# c\n[Unit]\nDescription = a b \n; c2\n\n[Service]\nExecStart=/x -y\n');
  assert.deepEqual(
    u.sections.map((s) => [s.name, s.entries.map((e) => [e.key, e.value, e.line])]),
    [
      ['Unit', [['Description', 'a b', 3]]],
      ['Service', [['ExecStart', '/x -y', 7]]],
    ],
  );
});

test('parseUnit: continuation lines join with a space and skip comment lines', () => {
  const u = parseUnit('[Service]\nExecStart=/bin/a \\\n  --b \\\n# note\n  --c\nX=1\n');
  const e = u.sections[0]!.entries;
  assert.deepEqual(
    e.map((x) => [x.key, x.value, x.line]),
    [
      ['ExecStart', '/bin/a  --b  --c', 2],
      ['X', '1', 6],
    ],
  );
});

test('parseUnit: errors name the line', () => {
  const cases: [string, RegExp][] = [
    ['Key=1\n', /line 1: .*outside any \[Section\]/],
    ['[Unit]\nnot a pair\n', /line 2: .*not Key=Value/],
    ['[Unit\nA=1\n', /line 1: malformed section header/],
    ['[Unit]\n=v\n', /line 2/],
  ];
  for (const [text, re] of cases)
    assert.throws(
      () => parseUnit(text),
      (err: unknown) => err instanceof UnitSyntaxError && re.test(err.message),
      text,
    );
});

test('listValues: an empty assignment clears earlier ones', () => {
  const u = parseUnit('[Service]\nExecStart=/a\nExecStart=\nExecStart=/b\n');
  assert.deepEqual(listValues(u, 'Service', 'ExecStart'), ['/b']);
});

test('unit names: templates, instances, specifiers', () => {
  assert.deepEqual(parseUnitName('nginx@.service'), {
    prefix: 'nginx',
    instance: '',
    type: 'service',
  });
  assert.deepEqual(parseUnitName('nginx@1.service'), {
    prefix: 'nginx',
    instance: '1',
    type: 'service',
  });
  assert.equal(parseUnitName('dnsd.service').instance, undefined);
  assert.equal(templateOf('nginx@web.service'), 'nginx@.service');
  assert.equal(templateOf('nginx.service'), undefined);
  assert.throws(() => parseUnitName('nginx'), /not a unit name/);
  assert.deepEqual(specifiersIn('a%i b%%c %H%n'), ['%i', '%H', '%n']);
  const table: [string, string][] = [
    ['%n', 'nginx-announce@7.service'],
    ['%N', 'nginx-announce@7'],
    ['%p', 'nginx-announce'],
    ['%i.web', '7.web'],
    ['100%%', '100%'],
    ['%H', 'core-01'],
  ];
  for (const [value, want] of table)
    assert.equal(expandSpecifiers(value, 'nginx-announce@7.service', { H: 'core-01' }), want);
  assert.throws(() => expandSpecifiers('%h', 'x.service'), /specifier %h has no value/);
});

test('splitExec: quotes, escapes, prefixes', () => {
  assert.deepEqual(splitExec(`-/bin/sh -c 'exec a "b" c' "x y" z\\s1`), {
    words: ['/bin/sh', '-c', 'exec a "b" c', 'x y', 'z 1'],
    ignoreFailure: true,
    prefixes: '',
  });
  assert.equal(splitExec('+@/x y').prefixes, '+@');
  assert.throws(() => splitExec(`/x 'open`), /unterminated/);
  assert.throws(() => splitExec(`/x 'a'b`), /after a closing quote/);
});

test('expandExecWords: $VAR splits, ${VAR} in place, $$ literal', () => {
  const env = { A: 'one two', B: '10.5.7.1/24', E: '' };
  assert.deepEqual(expandExecWords(['x', '$A', '--bip=${B}', '$E', '$${B%%/*}', 'p$A'], env), [
    'x',
    'one',
    'two',
    '--bip=10.5.7.1/24',
    '${B%%/*}',
    'p$A',
  ]);
  assert.deepEqual(expandExecWords(['--x=${MISSING}'], {}), ['--x=']);
});

test('environmentOf: quoted assignments, later wins', () => {
  const u = parseUnit('[Service]\nEnvironment=A=1 "B=x y"\nEnvironment=A=2\nEnvironment=C=\n');
  assert.deepEqual(environmentOf(u), { A: '2', B: 'x y', C: '' });
});

const unitText = (name: string) => readFileSync(join(REPO_ROOT, 'units', name), 'utf8');

test('commandFromUnit: the agent line of overlayd.service with a host address', () => {
  const argv = commandFromUnit(parseUnit(unitText('overlayd.service')), {
    name: 'overlayd.service',
    env: { COREOS_PRIVATE_IPV4: '10.99.0.2' },
  });
  assert.equal(argv[0], '/opt/flotilla/bin/overlayd');
  assert.ok(argv.includes('--public-ip=10.99.0.2'), argv.join(' '));
  assert.ok(argv.includes('--etcd-endpoints=http://127.0.0.1:2379'), argv.join(' '));
  assert.ok(!argv.some((a) => a.includes('$') || a.includes('%')), argv.join(' '));
});

test('commandFromUnit: nginx@2 with the image and command overridden', () => {
  const u = parseUnit(unitText('nginx@.service'));
  const dflt = commandFromUnit(u, { name: 'nginx@2.service' });
  assert.deepEqual(dflt.slice(-2), ['labels=service', 'nginx:alpine']);
  assert.ok(dflt.includes('nginx-2'));
  const busybox = commandFromUnit(u, {
    name: 'nginx@2.service',
    env: { NGINX_IMAGE: 'flotilla-test', NGINX_COMMAND: 'httpd -f -p 80 -h /www' },
  });
  assert.deepEqual(busybox.slice(-7), [
    'flotilla-test',
    'httpd',
    '-f',
    '-p',
    '80',
    '-h',
    '/www',
  ]);
  assert.deepEqual(commandFromUnit(u, { name: 'nginx@2.service', key: 'ExecStop' }), [
    '/usr/bin/docker',
    'stop',
    'nginx-2',
  ]);
});

test('commandFromUnit: the sidekick announces %i.web.skydns.local', () => {
  const argv = commandFromUnit(parseUnit(unitText('nginx-announce@.service')), {
    name: 'nginx-announce@3.service',
    env: { FLOTILLA_ETCD_ENDPOINTS: 'http://10.1.0.1:2379' },
  });
  assert.deepEqual(argv, [
    '/opt/flotilla/bin/announce',
    '--etcd-endpoints=http://10.1.0.1:2379',
    // No /etc/flotilla/etcd/announce.env: empty, so plain http (the agent ignores an empty file name).
    '--etcd-cafile=',
    '--etcd-certfile=',
    '--etcd-keyfile=',
    '--container',
    'nginx-3',
    '--name',
    '3.web.skydns.local',
    '--port',
    '80',
    '--ttl',
    '30',
  ]);
});

test('commandFromUnit: each etcd agent takes its own certificate from /etc/flotilla/etcd/<user>.env', () => {
  for (const [file, user] of [
    ['overlayd.service', 'overlayd'],
    ['dnsd.service', 'dnsd'],
    ['nginx-announce@.service', 'announce'],
    ['logs-aggregator@.service', 'logsd'],
  ] as const) {
    const unit = parseUnit(unitText(file));
    const files = unit.sections
      .flatMap((s) => s.entries)
      .filter((e) => e.key === 'EnvironmentFile')
      .map((e) => e.value);
    // Last, so it wins over flotilla.env; optional, so a plain-http site needs nothing.
    assert.equal(files.at(-1), `-/etc/flotilla/etcd/${user}.env`, file);
    const argv = commandFromUnit(unit, {
      name: file.replace('@.', '@1.'),
      env: {
        FLOTILLA_ETCD_ENDPOINTS: 'https://10.1.0.1:2379',
        FLOTILLA_ETCD_CAFILE: '/etc/flotilla/etcd/ca.pem',
        FLOTILLA_ETCD_CERTFILE: `/etc/flotilla/etcd/${user}.pem`,
        FLOTILLA_ETCD_KEYFILE: `/etc/flotilla/etcd/${user}-key.pem`,
      },
    });
    for (const want of [
      '/etc/flotilla/etcd/ca.pem',
      `/etc/flotilla/etcd/${user}.pem`,
      `/etc/flotilla/etcd/${user}-key.pem`,
    ])
      assert.ok(argv.some((a) => a.endsWith(`=${want}`)), `${file}: ${want} in ${argv.join(' ')}`);
  }
});

test('commandFromUnit: refuses a unit without exactly one ExecStart', () => {
  assert.throws(
    () => commandFromUnit(parseUnit('[Service]\nExecStart=/a\nExecStart=/b\n'), { name: 'x.service' }),
    /expected one ExecStart= line, found 2/,
  );
});
