import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, checkUnits, flotillaBins, loadUnitDir } from './check.js';
import { verifyTarget, verifyUnits } from './verify.js';
import { commandFromUnit, parseUnit } from './unit-file.js';

const real = () => loadUnitDir(join(REPO_ROOT, 'units'));

test('verifyTarget: templates as name@1, drop-ins as their base unit', () => {
  assert.equal(verifyTarget('nginx@.service'), 'nginx@1.service');
  assert.equal(verifyTarget('dnsd.service'), 'dnsd.service');
  assert.equal(verifyTarget('docker.service.d/50-flotilla.conf'), 'docker.service');
  assert.equal(verifyTarget('x@.service.d/a.conf'), 'x@1.service');
});

test('every unit in units/ passes systemd-analyze verify and the lint, with no output', () => {
  const sources = real();
  assert.deepEqual(
    sources.map((s) => s.path),
    [
      'dnsd.service',
      'docker.service.d/50-flotilla.conf',
      'logs-aggregator@.service',
      'logsd.service',
      'nginx-announce@.service',
      'nginx@.service',
      'overlayd.service',
    ],
  );
  assert.deepEqual(checkUnits(sources), []);
});

test('systemd-analyze verify rejects planted mistakes (so the pass above means something)', () => {
  const ok = '[Unit]\nDescription=t\n[Service]\nExecStart=/usr/bin/true\n';
  const cases: { path: string; text: string; want: RegExp }[] = [
    {
      path: 'typo.service',
      text: '[Unit]\nDescription=t\n[Service]\nExecStart=/opt/flotilla/bin/overlay\n',
      want: /Command \/opt\/flotilla\/bin\/overlay is not executable/,
    },
    {
      path: 'dep.service',
      text: '[Unit]\nRequires=etcd2.service\n[Service]\nExecStart=/usr/bin/true\n',
      want: /Unit etcd2\.service not found/,
    },
    {
      path: 'key.service',
      text: '[Unit]\nDescription=t\n[Service]\nExecStart=/usr/bin/true\nRestartSecs=5\n',
      want: /Unknown key 'RestartSecs'/,
    },
    {
      path: 'docker.service.d/90-bad.conf',
      text: '[Service]\nExecStartPost=/usr/bin/no-such-tool\n',
      want: /docker\.service: Command \/usr\/bin\/no-such-tool is not executable/,
    },
    {
      path: 'tpl@.service',
      text: '[Unit]\nBindsTo=missing@%i.service\n[Service]\nExecStart=/usr/bin/true\n',
      want: /missing@1\.service not found/,
    },
  ];
  const results = verifyUnits([{ path: 'fine.service', text: ok }, ...cases], {
    flotillaBins: flotillaBins(),
  });
  assert.equal(results[0]!.ok, true, results[0]!.output);
  cases.forEach((c, i) => {
    const r = results[i + 1]!;
    assert.equal(r.ok, false, c.path);
    assert.match(r.output, c.want, c.path);
  });
});

test('checkUnits reports a Global unit with MachineOf from both the lint and verify', () => {
  const problems = checkUnits([
    ...real(),
    {
      path: 'bad-global.service',
      text: '[Service]\nExecStart=/opt/flotilla/bin/dns\n[X-Fleet]\nGlobal=true\nMachineOf=dnsd.service\nMachineMetadata=host=%H\n',
    },
  ]);
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.match(problems[0]!, /bad-global\.service:6: MachineMetadata=host=%H: fleet does not expand %H/);
  assert.match(problems[1]!, /bad-global\.service:5: MachineOf= cannot be combined with Global=true/);
  assert.match(problems[2]!, /^bad-global\.service: systemd-analyze verify bad-global\.service: .*Command \/opt\/flotilla\/bin\/dns is not executable/);
});

/**
 * The units must use flags the agents accept: each --flag of an agent's ExecStart appears in that
 * agent's --help. Skipped (with the reason) for an agent not built yet.
 */
test('agent flags in the units are flags of the agents (from their --help)', (t) => {
  const pkg = flotillaBins();
  const bins = (
    JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    }
  ).bin;
  const checked: string[] = [];
  for (const s of real().filter((x) => !x.path.includes('/'))) {
    const name = s.path.replace('@.', '@1.');
    const argv = commandFromUnit(parseUnit(s.text), {
      name,
      env: { COREOS_PRIVATE_IPV4: '192.0.2.10' },
      specifiers: { H: 'core-01' },
    });
    const bin = /^\/opt\/flotilla\/bin\/(.+)$/.exec(argv[0]!)?.[1];
    if (!bin) continue;
    assert.ok(pkg.includes(bin), `${s.path}: /opt/flotilla/bin/${bin} is not a package.json bin`);
    const main = join(REPO_ROOT, bins[bin]!);
    // The tests run from the build, so a missing main is a wrong bin path, not "not built yet".
    assert.ok(existsSync(main), `${s.path}: ${bin} → ${main} does not exist`);
    const sub = argv[1] && !argv[1].startsWith('-') ? [argv[1]] : [];
    const help = spawnSync(process.execPath, [main, ...sub, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, `${bin} ${sub.join(' ')} --help: ${help.stderr}`);
    for (const a of argv.slice(1 + sub.length)) {
      const flag = /^(--[a-z0-9-]+)/.exec(a)?.[1];
      // The whole flag, not a prefix of a longer one (`--etcd-endpoint` is not `--etcd-endpoints`).
      const listed = new RegExp(`(^|[\\s,])${flag}(?![a-z0-9-])`, 'm');
      if (flag) assert.match(help.stdout, listed, `${s.path}: ${bin} has no flag ${flag}`);
    }
    checked.push(s.path);
  }
  assert.ok(checked.length > 0, 'no unit runs a Flotilla command');
  t.diagnostic(`flags checked against --help for: ${checked.join(', ')}`);
});
