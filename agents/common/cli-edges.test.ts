// Table tests for the flag parser and --help layout (cli.ts), written for the survivors of
// `npm run mutate -- common/cli`: every value form a user can type, every flag spelling, and
// the exact --help text (alignment, wrapping, which defaults are shown).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText, parseDuration, parseFlags, type FlagTable } from './cli.js';
import { UsageError } from './errors.js';

test('--help: exact layout, defaults shown only when they say something, long flags wrapped', () => {
  const table = {
    'etcd-endpoints': {
      type: 'list',
      value: 'URLS',
      help: 'etcd URLs',
      default: ['http://127.0.0.1:2379', 'http://b:2379'],
      env: ['ETCD_A', 'ETCD_B'],
    },
    verbose: { type: 'bool', short: 'v', help: 'more output', default: false },
    port: { type: 'int', help: 'listen port', default: 8080 },
    name: { type: 'string', help: 'a name', default: '' },
    interval: { type: 'duration', help: 'how often', default: '10s' },
    tags: { type: 'list', help: 'tags', default: [] },
    on: { type: 'bool', help: 'default on', default: true },
    ['x'.repeat(32)]: { type: 'bool', help: '38 wide' },
    ['y'.repeat(35)]: { type: 'bool', help: '41 wide' },
    'a-very-long-flag-name-that-wraps': { type: 'string', value: 'X', help: 'long one' },
  } satisfies FlagTable;
  assert.equal(
    helpText('tool', '[flags] FILE', 'Does a thing.', table),
    [
      'Usage: tool [flags] FILE',
      '',
      'Does a thing.',
      '',
      'Flags:',
      '      --etcd-endpoints URLS               etcd URLs (default http://127.0.0.1:2379,http://b:2379) [repeatable] [env ETCD_A, ETCD_B]',
      '  -v, --verbose                           more output',
      '      --port INT                          listen port (default 8080)',
      '      --name STRING                       a name',
      '      --interval DURATION                 how often (default 10s)',
      '      --tags LIST                         tags [repeatable]',
      '      --on                                default on (default true)',
      '      --xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx  38 wide',
      '      --yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy',
      '                                          41 wide',
      '      --a-very-long-flag-name-that-wraps X',
      '                                          long one',
      '  -h, --help                              show this help and exit',
      '      --version                           print the version and exit',
      '',
    ].join('\n'),
  );
  // Short rows only: the columns are as wide as the longest flag plus two, no wider.
  assert.equal(
    helpText('t', 'u', 'd', { a: { type: 'int', help: 'x' } }),
    [
      'Usage: t u',
      '',
      'd',
      '',
      'Flags:',
      '      --a INT    x',
      '  -h, --help     show this help and exit',
      '      --version  print the version and exit',
      '',
    ].join('\n'),
  );
});

const t = {
  n: { type: 'int', help: 'n', default: 8080 },
  s: { type: 'string', help: 's' },
  b: { type: 'bool', help: 'b', short: 'b' },
  d: { type: 'duration', help: 'd', default: '1m' },
  l: { type: 'list', help: 'l' },
  e: { type: 'string', help: 'e', env: ['E_ONE', 'E_TWO'], default: 'dflt' },
  color: { type: 'bool', help: 'colour' },
  'no-color': { type: 'string', help: 'a real flag whose name starts with no-' },
  'no-cache': { type: 'bool', help: 'another' },
} satisfies FlagTable;
const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseFlags(t, argv, env);

test('values: whole numbers, booleans and durations as typed on a command line', () => {
  const ok: [string[], keyof ReturnType<typeof parse>['flags'], unknown][] = [
    [['--n=123'], 'n', 123],
    [['--n', '-5'], 'n', -5],
    [['--n=0'], 'n', 0],
    [[], 'n', 8080],
    [[], 's', undefined],
    [[], 'b', false],
    [[], 'l', []],
    [[], 'd', 60_000],
    [['--d=1.5s'], 'd', 1500],
    [['--d=1.25s'], 'd', 1250],
    [['--d=1h30m'], 'd', 5_400_000],
    [['--d=250ms'], 'd', 250],
    [['--s', 'plain text'], 's', 'plain text'],
    [['--l', ' a , b ,, c ', '--l=d'], 'l', ['a', 'b', 'c', 'd']],
    [['--l='], 'l', []],
    [['-b'], 'b', true],
    [['--b'], 'b', true],
  ];
  for (const v of ['1', 'true', 'TRUE', 'yes', 'On'])
    ok.push([[`--b=${v}`], 'b', true], [[`--no-cache=${v}`], 'noCache', true]);
  for (const v of ['0', 'false', 'False', 'no', 'OFF']) ok.push([[`--b=${v}`], 'b', false]);
  for (const [argv, key, want] of ok)
    assert.deepEqual(parse(argv).flags[key], want, `${argv.join(' ')} → ${key}`);

  const bad: [string[], RegExp][] = [
    [['--n=12abc'], /^--n: "12abc" is not a whole number$/],
    [['--n=abc12'], /^--n: "abc12" is not a whole number$/],
    [['--n=1.5'], /is not a whole number/],
    [['--n='], /is not a whole number/],
    [['--b=maybe'], /^--b: "maybe" is not true or false$/],
    [['--b=yesno'], /is not true or false/],
    [['--b=xtrue'], /is not true or false/],
    [['--b=true1'], /is not true or false/],
    [['--b=nope'], /is not true or false/],
    [['--b=0ff'], /is not true or false/],
    [['--d=10'], /^--d: "10" is not a duration like 500ms, 10s, 5m or 24h$/],
    [['--d=1.s'], /is not a duration/],
    [['--d=5s5'], /is not a duration/],
  ];
  for (const [argv, want] of bad)
    assert.throws(
      () => parse(argv),
      (e: Error) => e instanceof UsageError && want.test(e.message),
      argv.join(' '),
    );
  assert.equal(parseDuration('0.5h'), 1_800_000);
  assert.throws(() => parseDuration('1.h'), /not a duration/);
});

test('flag spellings: --help, --version, shorts, single dashes, --no-BOOL', () => {
  assert.deepEqual(
    [parse(['--help']).help, parse(['-h']).help, parse([]).help, parse(['--version']).help],
    [true, true, false, false],
  );
  assert.deepEqual([parse(['--version']).version, parse(['-h']).version], [true, false]);
  assert.deepEqual(parse(['--version', 'x']).positionals, ['x']);
  // Positionals: a lone dash, a negative number (of two digits or more: -5 is a short flag),
  // anything with a dash inside.
  assert.deepEqual(parse(['-', '-12', 'a-b', 'x-v', 'file']).positionals, [
    '-',
    '-12',
    'a-b',
    'x-v',
    'file',
  ]);
  assert.deepEqual(parse(['a', '--', '--n', '-b']).positionals, ['a', '--n', '-b']);
  assert.equal(parse(['a', '--', '--n=1']).flags.n, 8080, 'after -- nothing is a flag');

  assert.equal(parse(['--no-cache']).flags.noCache, true, 'a flag really named no-…');
  assert.equal(parse(['--b', '--no-b']).flags.b, false, '--no-BOOL turns a bool off');
  assert.equal(
    parse(['--no-color', 'red']).flags.noColor,
    'red',
    'a real no-… flag wins over --no-BOOL',
  );
  assert.equal(parse(['--no-color', 'red']).flags.color, false);
  const bad: [string[], string][] = [
    [['-x'], 'unknown flag -x (see --help)'],
    [['-bb'], 'unknown flag -bb (see --help)'],
    [['-nope'], 'unknown flag -nope (see --help)'],
    [['--nope'], 'unknown flag --nope (see --help)'],
    [['--no-such'], 'unknown flag --no-such (see --help)'],
    [['--no-n'], 'unknown flag --no-n (see --help)'],
    [['--no-b=true'], 'unknown flag --no-b (see --help)'],
    [['--s'], '--s needs a value'],
    [['-ab-1'], 'unknown flag -ab-1 (see --help)'],
    [['--xyzb'], 'unknown flag --xyzb (see --help)'],
  ];
  for (const [argv, msg] of bad)
    assert.throws(
      () => parse(argv),
      (e: Error) => e instanceof UsageError && e.message === msg,
      argv.join(' '),
    );
});

test('a duration default may be given in milliseconds', () => {
  const t2 = { wait: { type: 'duration', help: 'w', default: 5000 } } satisfies FlagTable;
  assert.equal(parseFlags(t2, [], {}).flags.wait, 5000);
  assert.equal(parseFlags(t2, ['--wait=2s'], {}).flags.wait, 2000);
});

test('environment fallback: first non-empty variable, empty ones skipped, the command line wins', () => {
  const table: [NodeJS.ProcessEnv, string[], string][] = [
    [{}, [], 'dflt'],
    [{ E_ONE: 'one', E_TWO: 'two' }, [], 'one'],
    [{ E_ONE: '', E_TWO: 'two' }, [], 'two'],
    [{ E_ONE: '', E_TWO: '' }, [], 'dflt'],
    [{ E_TWO: 'two' }, ['--e=cli'], 'cli'],
  ];
  for (const [env, argv, want] of table)
    assert.equal(parse(argv, env).flags.e, want, JSON.stringify(env));
});
