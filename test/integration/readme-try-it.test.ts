// The README's "Try it" block, run as a newcomer would: line by line in one bash session (so
// `eval` and background jobs carry over), against the local cluster. Every line must exit 0
// (a `# Ctrl-C to stop` line: 130 after Ctrl-C) and print each `# →` line that follows it.
// The local cluster is shared: the test holds /tmp/flotilla-demo.lock, uses a cluster that is
// already up (and leaves it up), or brings one up itself and takes it down again. (That none of
// this changes the checkout is checked by the test runner, scripts/run-tests.mjs, for every test.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadState } from '../harness/index.js';
import { lockDemo } from '../harness/demo-lock.js';
import { REPO } from '../../scripts/local-cluster.js';

export interface Step {
  line: string;
  expect: string[];
  /** `# Ctrl-C to stop`: runs until every expectation has printed, then gets SIGINT. */
  interrupt: boolean;
}

/** The first sh block after the "## Try it" heading, as commands with their `# →` lines. */
export function tryItSteps(readme: string): Step[] {
  const at = readme.indexOf('\n## Try it');
  assert.ok(at >= 0, 'README has no "## Try it" section');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block, 'no sh block in "Try it"');
  const steps: Step[] = [];
  for (const l of block[1]!.split('\n')) {
    if (!l.trim()) continue;
    const exp = /^# → (.*)$/.exec(l);
    if (exp) {
      assert.ok(steps.length > 0, `expectation before any command: ${l}`);
      steps[steps.length - 1]!.expect.push(exp[1]!);
    } else if (!l.startsWith('#')) {
      steps.push({ line: l, expect: [], interrupt: /#\s*Ctrl-C to stop/.test(l) });
    }
  }
  return steps;
}

/** `…` is any text, `<id>` a container id; everything else is literal; one whole line. */
export function expectation(text: string): RegExp {
  const parts = text
    .split(/(…|<id>)/)
    .map((p) =>
      p === '…' ? '.*?' : p === '<id>' ? '[0-9a-f]{64}' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    );
  return new RegExp(`^${parts.join('')}$`, 'm');
}

test('expectations: … matches any text, <id> a container id, the rest literally', () => {
  const table: [string, string, boolean][] = [
    ['10.5.…', '10.5.3.7', true],
    ['10.5.…', '10.50.3.7', false],
    ['<id>', 'a'.repeat(64), true],
    ['<id>', 'abc', false],
    ['hello@fltdemo-h2 | […]:…: response:200', 'hello@fltdemo-h2 | [::1]:4: response:200', true],
    ['hello', 'x hello', false],
  ];
  for (const [pat, line, want] of table)
    assert.equal(expectation(pat).test(line), want, `${pat} vs ${line}`);
});

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  "the README's Try it block runs line by line against the local cluster",
  { timeout: 420_000 },
  async (t) => {
    const steps = tryItSteps(readFileSync(join(REPO, 'README.md'), 'utf8'));
    assert.ok(steps.length >= 6, `only ${steps.length} steps`);
    const release = await lockDemo(300_000);
    const cli = join(REPO, 'dist/scripts/cluster.js');
    let started = false;
    let bash: ReturnType<typeof spawn> | undefined;
    try {
      if (!loadState('demo')) {
        const up = spawnSync(process.execPath, [cli, 'up'], {
          cwd: REPO,
          encoding: 'utf8',
          timeout: 240_000,
        });
        started = loadState('demo') !== undefined;
        assert.equal(up.status, 0, `cluster up failed:\n${up.stdout}\n${up.stderr}`);
        // npm start prints the line the block starts from.
        assert.match(up.stdout, /^ {2}eval "\$\(npm run -s cluster -- env 1\)"$/m);
      } else t.diagnostic('using the local cluster that is already up');

      const sh = spawn('bash', [], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      bash = sh;
      let out = '';
      sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
      sh.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const results: { step: Step; output: string }[] = [];
      for (const [i, step] of steps.entries()) {
        const from = out.length;
        const marker = new RegExp(`__FLT_STEP_${i}_RC=(\\d+)__\\n`);
        const seen = () => step.expect.every((e) => expectation(e).test(out.slice(from)));
        const kids = new Set(children(sh.pid!));
        sh.stdin.write(`${step.line}\necho "__FLT_STEP_${i}_RC=$?__"\n`);
        const deadline = Date.now() + 90_000;
        let rc: number | undefined;
        let interrupted = false;
        while (Date.now() < deadline) {
          const m = marker.exec(out.slice(from));
          if (m) {
            rc = Number(m[1]);
            if (seen()) break;
          } else if (step.interrupt && !interrupted && seen()) {
            // Ctrl-C: the foreground command is bash's child that was not there before.
            for (const k of children(sh.pid!)) if (!kids.has(k)) process.kill(k, 'SIGINT');
            interrupted = true;
          }
          await sleep(50);
        }
        const output = out.slice(from).replace(marker, '');
        assert.notEqual(rc, undefined, `line ${i + 1} did not finish: ${step.line}\n${output}`);
        assert.equal(
          rc,
          step.interrupt ? 130 : 0,
          `line ${i + 1} exited ${rc}: ${step.line}\n${output}`,
        );
        for (const e of step.expect)
          assert.match(output, expectation(e), `line ${i + 1}: ${step.line}\n${output}`);
        results.push({ step, output });
      }
      // The name dig answers is the address announce wrote to etcd.
      const rec = results.find((r) => r.step.line.startsWith('etcdctl get'))!.output;
      const dig = results.find((r) => r.step.line.includes('dig +short'))!.output;
      const ip = /"host":"([\d.]+)"/.exec(rec)?.[1];
      assert.ok(ip, rec);
      assert.equal(dig.trim(), ip);
    } finally {
      if (bash?.pid) {
        try {
          process.kill(-bash.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      // A failed run may leave its container behind on host 2.
      const s = loadState('demo');
      const sock = s?.hosts[1]?.dockerSocket;
      if (sock)
        spawnSync('docker', ['-H', `unix://${sock}`, 'rm', '-f', 'hello'], { stdio: 'ignore' });
      if (started) spawnSync(process.execPath, [cli, 'down'], { cwd: REPO, stdio: 'ignore' });
      release();
    }
  },
);
