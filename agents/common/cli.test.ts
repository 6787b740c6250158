import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { helpText, parseDuration, parseFlags, type FlagTable } from './cli.js';
import { UsageError } from './errors.js';
import { etcdErrorLine, etcdFlags, etcdOptions } from './etcd.js';

const table = {
  'etcd-endpoints': {
    type: 'list',
    help: 'endpoints',
    default: ['http://127.0.0.1:2379'],
    env: ['X_ENDPOINTS'],
  },
  iface: { type: 'string', help: 'interface' },
  'ip-masq': { type: 'bool', help: 'masquerade' },
  port: { type: 'int', help: 'port', default: 8472 },
  renew: { type: 'duration', help: 'renew margin', default: '1h' },
  follow: { type: 'bool', short: 'f', help: 'follow' },
} satisfies FlagTable;

test('parseFlags: defaults, env fallback, long/short/inline forms', () => {
  const cases: { argv: string[]; env?: Record<string, string>; want: Record<string, unknown> }[] = [
    {
      argv: [],
      want: {
        etcdEndpoints: ['http://127.0.0.1:2379'],
        port: 8472,
        renew: 3_600_000,
        ipMasq: false,
      },
    },
    { argv: ['--port', '9'], want: { port: 9 } },
    { argv: ['--port=9'], want: { port: 9 } },
    { argv: ['--ip-masq'], want: { ipMasq: true } },
    { argv: ['--ip-masq=false'], want: { ipMasq: false } },
    { argv: ['--no-ip-masq'], want: { ipMasq: false } },
    { argv: ['-f'], want: { follow: true } },
    { argv: ['--renew', '1h30m'], want: { renew: 5_400_000 } },
    {
      argv: ['--etcd-endpoints', 'http://a:1,http://b:2', '--etcd-endpoints=http://c:3'],
      want: { etcdEndpoints: ['http://a:1', 'http://b:2', 'http://c:3'] },
    },
    { argv: [], env: { X_ENDPOINTS: 'http://e:1' }, want: { etcdEndpoints: ['http://e:1'] } },
    {
      argv: ['--etcd-endpoints', 'http://f:1'],
      env: { X_ENDPOINTS: 'http://e:1' },
      want: { etcdEndpoints: ['http://f:1'] },
    },
  ];
  for (const c of cases) {
    const { flags } = parseFlags(table, c.argv, c.env ?? {});
    for (const [k, v] of Object.entries(c.want))
      assert.deepEqual((flags as Record<string, unknown>)[k], v, `${c.argv.join(' ')}: ${k}`);
  }
});

test('parseFlags: positionals and -- separator', () => {
  const r = parseFlags(table, ['tail', '--port', '1', '--', '--not-a-flag']);
  assert.deepEqual(r.positionals, ['tail', '--not-a-flag']);
});

test('parseFlags: bad input is a one-line UsageError naming the flag', () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^unknown flag --bogus \(see --help\)$/],
    [['-x'], /^unknown flag -x/],
    [['--port', 'ten'], /^--port: "ten" is not a whole number$/],
    [['--renew', '5 minutes'], /^--renew: "5 minutes" is not a duration/],
    [['--iface'], /^--iface needs a value$/],
    [['--ip-masq=maybe'], /^--ip-masq: "maybe" is not true or false$/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(
      () => parseFlags(table, argv, {}),
      (err: unknown) =>
        err instanceof UsageError && re.test(err.message) && !err.message.includes('\n'),
      argv.join(' '),
    );
  }
});

test('parseDuration accepts Go-style durations only', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  for (const bad of ['', '10', 's', '1d', '1h ']) assert.throws(() => parseDuration(bad), bad);
});

test('helpText lists every flag with its default and env vars', () => {
  const text = helpText('overlayd', '[flags]', 'Test.', table);
  for (const name of Object.keys(table)) assert.match(text, new RegExp(`--${name}`));
  assert.match(text, /\(default 8472\)/);
  assert.match(text, /\[env X_ENDPOINTS\]/);
  assert.match(text, /-f, --follow/);
});

test('etcdOptions: bad endpoints and TLS files give errors naming the flag', () => {
  const bad: [Parameters<typeof etcdOptions>[0], RegExp][] = [
    [
      { etcdEndpoints: ['127.0.0.1:2379'] },
      /--etcd-endpoints: "127.0.0.1:2379" (is not a URL|must start with http)/,
    ],
    [{ etcdEndpoints: ['ftp://x:1'] }, /must start with http:\/\/ or https:\/\//],
    [{ etcdEndpoints: ['http://x'] }, /has no port/],
    [{ etcdEndpoints: [] }, /no endpoint/],
    [
      { etcdEndpoints: ['https://x:2379'], etcdCafile: '/nonexistent/ca.pem' },
      /--etcd-cafile: cannot read "\/nonexistent\/ca.pem"/,
    ],
    [
      { etcdEndpoints: ['https://x:2379'], etcdCertfile: '/etc/hostname' },
      /must be given together/,
    ],
  ];
  for (const [settings, re] of bad) assert.throws(() => etcdOptions(settings), re);
  assert.deepEqual(etcdOptions({ etcdEndpoints: ['http://127.0.0.1:2379'] }).hosts, [
    'http://127.0.0.1:2379',
  ]);
});

const fixture = fileURLToPath(new URL('./testdata/etcd-ping.js', import.meta.url));
function runFixture(args: string[]) {
  return spawnSync(process.execPath, [fixture, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, FLOTILLA_ETCD_ENDPOINTS: '' },
  });
}

test('a command exits non-zero with one clear line for bad flags, TLS files and endpoints', () => {
  const cases: [string[], number, RegExp][] = [
    [
      ['--etcd-endpointz', 'http://127.0.0.1:2379'],
      2,
      /^etcd-ping: unknown flag --etcd-endpointz \(see --help\)\n$/,
    ],
    [
      ['--etcd-endpoints', 'localhost'],
      2,
      /^etcd-ping: --etcd-endpoints: "localhost" (is not a URL|must start)/,
    ],
    [
      ['--etcd-endpoints', 'https://127.0.0.1:1', '--etcd-cafile', '/nonexistent/ca.pem'],
      1,
      /^etcd-ping: --etcd-cafile: cannot read "\/nonexistent\/ca.pem": ENOENT/,
    ],
    // Port 1 on loopback: nothing listens there, so etcd is unreachable.
    [
      ['--etcd-endpoints', 'http://127.0.0.1:1', '--timeout', '1s'],
      1,
      /^etcd-ping: etcd unreachable at http:\/\/127.0.0.1:1: (connect ECONNREFUSED 127\.0\.0\.1:1|no answer within \d+ ms) \(check --etcd-endpoints or ETCDCTL_ENDPOINTS\)\n$/,
    ],
  ];
  for (const [args, code, re] of cases) {
    const r = runFixture(args);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});

test('--help prints the complete usage and exits 0', () => {
  const r = runFixture(['--help']);
  assert.equal(r.status, 0);
  for (const f of [
    '--etcd-endpoints',
    '--etcd-cafile',
    '--etcd-certfile',
    '--etcd-keyfile',
    '--log-level',
    '--timeout',
    '--help',
  ])
    assert.ok(r.stdout.includes(f), f);
});

test('etcd errors lose the gRPC noise', () => {
  const table: [string, string][] = [
    [
      '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ',
      'connect ECONNREFUSED 127.0.0.1:1',
    ],
    ['14 UNAVAILABLE: getaddrinfo ENOTFOUND etcd.example', 'getaddrinfo ENOTFOUND etcd.example'],
    ['permission denied', 'permission denied'],
  ];
  for (const [msg, want] of table) assert.equal(etcdErrorLine(msg), want);
});

test('etcd flags: the agent prefix, then ETCDCTL_* names, etcdctl v3 names (CACERT/CERT/KEY) too', () => {
  const table = etcdFlags('FLANNELD');
  const parse = (env: NodeJS.ProcessEnv) => parseFlags(table, [], env).flags;
  const v3 = parse({ ETCDCTL_CACERT: '/ca', ETCDCTL_CERT: '/c', ETCDCTL_KEY: '/k' });
  assert.deepEqual([v3.etcdCafile, v3.etcdCertfile, v3.etcdKeyfile], ['/ca', '/c', '/k']);
  const both = parse({
    FLANNELD_ETCD_CAFILE: '/own',
    ETCDCTL_CAFILE: '/old',
    ETCDCTL_CACERT: '/v3',
  });
  assert.equal(both.etcdCafile, '/own');
  assert.equal(parse({ ETCDCTL_CAFILE: '/old', ETCDCTL_CACERT: '/v3' }).etcdCafile, '/old');
  assert.equal(parse({ ETCDCTL_ENDPOINTS: 'https://e:2379' }).etcdEndpoints?.[0], 'https://e:2379');
  const flag = parseFlags(table, ['--etcd-cafile', '/flag'], { ETCDCTL_CACERT: '/v3' }).flags;
  assert.equal(flag.etcdCafile, '/flag');
});
