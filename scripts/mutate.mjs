// `npm run mutate [-- substring…]`: mutation testing of the pure cores with Stryker, one core file
// at a time (each with only the unit tests that cover it), then a per-file score table. Slow (many
// minutes per file on 2 cores), so not part of `npm test`. Stryker mutates the TypeScript source in
// a sandbox, rebuilds it with tsc, and runs the compiled tests with Node's test runner (TAP).
//
//   npm run mutate                         every core below
//   npm run mutate -- forward/handshake    just that file
//   MUTATE_CONCURRENCY=1 npm run mutate    test processes at a time (default 2)
//   MUTATE_LINES=120-180 npm run mutate -- forward/codec   mutate only those lines (iterating)
//   MUTATE_INCREMENTAL=1 npm run mutate -- forward/codec   reuse the last run's results for the
//       mutants and tests that did not change (reports/mutation/<file>.incremental.json)
// Reports: reports/mutation/<file>.html and .json. Accepted survivors: docs/testing.md.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Core file → the compiled unit tests that exercise it. */
// The 100k-input fuzz files are left out: each mutant would rerun them (minutes per file).
const FORWARD = [
  'dist/agents/logs/forward/codec.test.js',
  'dist/agents/logs/forward/spec-interop.test.js',
  'dist/agents/logs/forward/handshake-edges.test.js',
  'dist/agents/logs/forward/docker-capture.test.js',
];
export const CORES = {
  'agents/logs/forward/codec.ts': [
    'dist/agents/logs/forward/codec.test.js',
    'dist/agents/logs/forward/codec-edges.test.js',
    'dist/agents/logs/forward/plain-message.test.js',
    'dist/agents/logs/forward/spec-interop.test.js',
    'dist/agents/logs/forward/docker-capture.test.js',
  ],
  'agents/logs/forward/handshake.ts': FORWARD,
  // agent-guarantees.test (3 s, a whole agent) killed 22 buffer mutants that buffer-edges now
  // kills in 0.3 s; bad-actors and forward-out (8 s together, the aggregator as a server) are
  // left out of store's for the same reason (docs/testing.md).
  'agents/logs/buffer.ts': [
    'dist/agents/logs/buffer.test.js',
    'dist/agents/logs/buffer-edges.test.js',
    'dist/agents/logs/buffer-faults.test.js',
  ],
  'agents/logs/aggregator/store.ts': [
    'dist/agents/logs/aggregator/store.test.js',
    'dist/agents/logs/aggregator/store-edges.test.js',
    'dist/agents/logs/aggregator/retention.test.js',
    'dist/agents/logs/aggregator/query.test.js',
  ],
  'agents/logs/aggregator/query.ts': [
    'dist/agents/logs/aggregator/query.test.js',
    'dist/agents/logs/aggregator/store.test.js',
    'dist/agents/logs/aggregator/store-edges.test.js',
    'dist/agents/logs/aggregator/retention.test.js',
    'dist/agents/logs/aggregator/bad-actors.test.js',
    'dist/agents/logs/cli.test.js',
  ],
  'agents/dns/wire.ts': [
    'dist/agents/dns/wire.test.js',
    'dist/agents/dns/wire-edges.test.js',
    'dist/agents/dns/spread.test.js',
    'dist/agents/dns/server-hardening.test.js',
    'dist/agents/dns/server.test.js',
  ],
  'agents/dns/lookup.ts': [
    'dist/agents/dns/lookup.test.js',
    'dist/agents/dns/lookup-edges.test.js',
    'dist/agents/dns/lookup-helpers.test.js',
    'dist/agents/dns/cname-rules.test.js',
    'dist/agents/dns/server-hardening.test.js',
  ],
  'agents/dns/tree.ts': [
    'dist/agents/dns/tree.test.js',
    'dist/agents/dns/tree-edges.test.js',
    'dist/agents/dns/lookup.test.js',
  ],
  'agents/dns/records.ts': [
    'dist/agents/dns/records.test.js',
    'dist/agents/dns/records-edges.test.js',
    'dist/agents/dns/tree.test.js',
  ],
  'agents/dns/encode.ts': [
    'dist/agents/dns/wire.test.js',
    'dist/agents/dns/server-hardening.test.js',
    'dist/agents/dns/server.test.js',
    'dist/agents/dns/spread.test.js',
  ],
  'agents/overlay/allocator.ts': ['dist/agents/overlay/allocator*.test.js'],
  'agents/overlay/reconcile.ts': ['dist/agents/overlay/reconcile*.test.js'],
  'agents/overlay/lease.ts': ['dist/agents/overlay/lease*.test.js'],
  'agents/overlay/subnet-env.ts': ['dist/agents/overlay/subnet-env*.test.js'],
  'agents/overlay/config.ts': ['dist/agents/overlay/config*.test.js'],
  'agents/common/cli.ts': ['dist/agents/common/cli*.test.js'],
};

/**
 * Per-core Stryker overrides. `timeoutMS` is added to each mutant's expected test time before it
 * counts as timed out (killed): these cores' tests take about a second, so a mutant that loops
 * forever need not cost the default 30 s.
 */
const OPTIONS = {
  'agents/logs/forward/codec.ts': { timeoutMS: 5_000 },
  'agents/logs/buffer.ts': { timeoutMS: 5_000 },
  'agents/logs/aggregator/store.ts': { timeoutMS: 5_000 },
};

const filter = process.argv.slice(2);
const files = Object.keys(CORES).filter(
  (f) => filter.length === 0 || filter.some((x) => f.includes(x)),
);
const concurrency = Number(process.env.MUTATE_CONCURRENCY ?? 2);
const tmp = join('reports', 'mutation', 'config');
mkdirSync(tmp, { recursive: true });

const scores = [];
for (const file of files) {
  const name = file.replace(/^agents\//, '').replace(/\.ts$/, '');
  const json = join('reports', 'mutation', `${name.replaceAll('/', '_')}.json`);
  const config = {
    $schema: './node_modules/@stryker-mutator/core/schema/stryker-schema.json',
    mutate: [process.env.MUTATE_LINES ? `${file}:${process.env.MUTATE_LINES}` : file],
    testRunner: 'tap',
    tap: {
      testFiles: CORES[file],
      nodeArgs: ['--enable-source-maps', '--test-reporter=tap', '--test-timeout=120000'],
      forceBail: true,
    },
    // Stryker runs this without a shell (an '&&' would be an argument of tsc): npm's runs both.
    buildCommand: 'npm run build',
    coverageAnalysis: 'perTest',
    concurrency,
    timeoutMS: 30_000,
    ignorePatterns: ['dist', 'reports', '.stryker-tmp', 'bench/results'],
    reporters: ['clear-text', 'html', 'json', 'progress'],
    htmlReporter: { fileName: json.replace(/\.json$/, '.html') },
    jsonReporter: { fileName: json },
    cleanTempDir: 'always',
    ...(process.env.MUTATE_INCREMENTAL === '1'
      ? { incremental: true, incrementalFile: json.replace(/\.json$/, '.incremental.json') }
      : {}),
    ...OPTIONS[file],
  };
  const cfgFile = join(tmp, `${name.replaceAll('/', '_')}.json`);
  writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  // FC_END_ON_FAILURE: property tests stop at their first failing case (test/fc-seed.ts).
  const r = spawnSync('npx', ['stryker', 'run', cfgFile], {
    stdio: 'inherit',
    env: { ...process.env, FC_END_ON_FAILURE: '1' },
  });
  if (r.status !== 0) {
    scores.push({ file, error: `stryker exit ${r.status}` });
    continue;
  }
  const report = JSON.parse(readFileSync(json, 'utf8'));
  const mutants = Object.values(report.files).flatMap((f) => f.mutants);
  const count = (...s) => mutants.filter((m) => s.includes(m.status)).length;
  const killed = count('Killed', 'Timeout');
  const survived = count('Survived', 'NoCoverage');
  scores.push({ file, killed, survived, score: (100 * killed) / Math.max(1, killed + survived) });
}

process.stdout.write('\nmutation score per core file (killed+timeout / valid mutants)\n');
for (const s of scores)
  process.stdout.write(
    s.error
      ? `  ${s.file.padEnd(38)} ${s.error}\n`
      : `  ${s.file.padEnd(38)} ${s.score.toFixed(1).padStart(5)} %  (${s.killed} killed, ${s.survived} survived)\n`,
  );
process.exit(scores.some((s) => s.error) ? 1 : 0);
