// The start order and restart policy docs/units.md promises, read from the unit files in units/
// as systemd reads them (Requires=/After=/Before= lists, drop-in merged into docker.service), and
// overlayd's ExecStartPost run for real: it must hold the unit "activating" until the subnet file
// has content, so nothing ordered after overlayd (dockerd) starts on a missing or empty file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withDeadline } from '../../test/harness/proc.js';
import { REPO_ROOT, loadUnitDir } from './check.js';
import { listValues, parseUnit, splitExec, type UnitFile } from './unit-file.js';

/** Units by the name systemd loads them as; the drop-in is merged into docker.service. */
function loadUnits(): Map<string, UnitFile> {
  const units = new Map<string, UnitFile>();
  for (const s of loadUnitDir(join(REPO_ROOT, 'units'))) {
    const name = s.path.replace(/\.d\/[^/]+\.conf$/, '').replace('@.', '@1.');
    const text = s.text.replaceAll('%i', '1');
    const prev = units.get(name);
    const unit = parseUnit(text);
    units.set(name, prev ? { sections: [...prev.sections, ...unit.sections] } : unit);
  }
  return units;
}
const words = (u: UnitFile, section: string, key: string) =>
  listValues(u, section, key).flatMap((v) => v.split(/\s+/));

/** "a starts before b" pairs from After= and Before= of every unit, as systemd merges them. */
function orderPairs(units: Map<string, UnitFile>): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [name, u] of units) {
    for (const a of words(u, 'Unit', 'After')) pairs.push([a, name]);
    for (const b of words(u, 'Unit', 'Before')) pairs.push([name, b]);
  }
  return pairs;
}
/** Whether `a` is ordered (transitively) before `b`. */
function before(pairs: [string, string][], a: string, b: string): boolean {
  const seen = new Set<string>([a]);
  const todo = [a];
  while (todo.length) {
    const x = todo.pop()!;
    for (const [p, q] of pairs)
      if (p === x && !seen.has(q)) {
        if (q === b) return true;
        seen.add(q);
        todo.push(q);
      }
  }
  return false;
}

test('each agent requires and starts after etcd; dnsd and logsd also after overlayd; dockerd after overlayd', () => {
  const units = loadUnits();
  const table: [string, string[]][] = [
    ['overlayd.service', ['etcd-member.service']],
    ['dnsd.service', ['etcd-member.service', 'overlayd.service']],
    ['logsd.service', ['etcd-member.service', 'overlayd.service']],
    ['docker.service', ['overlayd.service']],
  ];
  for (const [name, deps] of table) {
    const u = units.get(name);
    assert.ok(u, `${name} is in units/`);
    for (const d of deps) {
      assert.ok(words(u, 'Unit', 'Requires').includes(d), `${name} Requires=${d}`);
      assert.ok(words(u, 'Unit', 'After').includes(d), `${name} After=${d}`);
    }
  }
});

test('the resulting start order: etcd, overlayd, then dockerd and logsd, dnsd once the bridge exists, then the services', () => {
  const pairs = orderPairs(loadUnits());
  const table: [string, string][] = [
    ['etcd-member.service', 'overlayd.service'],
    ['overlayd.service', 'docker.service'],
    ['overlayd.service', 'dnsd.service'],
    ['overlayd.service', 'logsd.service'],
    // dnsd listens on the docker bridge's address (FLANNEL_SUBNET's first address).
    ['docker.service', 'dnsd.service'],
    ['docker.service', 'nginx@1.service'],
    ['dnsd.service', 'nginx@1.service'],
    ['logsd.service', 'nginx@1.service'],
    ['nginx@1.service', 'nginx-announce@1.service'],
  ];
  for (const [a, b] of table) {
    assert.ok(before(pairs, a, b), `${a} starts before ${b}`);
    assert.ok(!before(pairs, b, a), `${b} is not also ordered before ${a} (a cycle)`);
  }
});

test('every long-running unit restarts on any exit, 5 s apart', () => {
  for (const [name, u] of loadUnits()) {
    if (name === 'docker.service') continue; // the drop-in keeps docker's own policy
    assert.deepEqual(listValues(u, 'Service', 'Restart'), ['always'], `${name} Restart=always`);
    assert.deepEqual(listValues(u, 'Service', 'RestartSec'), ['5'], `${name} RestartSec=5`);
  }
});

test("overlayd's ExecStartPost holds the start until the subnet file has content", async () => {
  const u = loadUnits().get('overlayd.service')!;
  const post = listValues(u, 'Service', 'ExecStartPost');
  assert.equal(post.length, 1);
  const argv = splitExec(post[0]!).words;
  assert.equal(argv[0], '/bin/sh');
  assert.ok(argv.at(-1)!.includes('/run/flannel/subnet.env'), argv.join(' '));
  // The subnet file overlayd writes is the one the unit waits for, and the one dockerd reads.
  const start = listValues(u, 'Service', 'ExecStart')[0]!;
  assert.match(start, /--subnet-file=\/run\/flannel\/subnet\.env(\s|$)/);
  const docker = loadUnits().get('docker.service')!;
  assert.deepEqual(listValues(docker, 'Service', 'EnvironmentFile'), ['/run/flannel/subnet.env']);

  const dir = mkdtempSync(join(tmpdir(), 'flt-unitpost-'));
  const file = join(dir, 'subnet.env');
  const script = argv.map((w) => w.replaceAll('/run/flannel/subnet.env', file));
  const child = spawn(script[0]!, script.slice(1), { stdio: 'ignore' });
  let exited: number | null | undefined;
  const done = new Promise<void>((resolve) =>
    child.on('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    await sleep(700);
    assert.equal(exited, undefined, 'returned while the subnet file was missing');
    writeFileSync(file, '');
    await sleep(700);
    assert.equal(exited, undefined, 'returned while the subnet file was empty');
    writeFileSync(file, 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.7.1/24\n');
    await withDeadline(done, 5000, 'ExecStartPost to return once the subnet file was written');
    assert.equal(exited, 0);
  } finally {
    if (exited === undefined) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
