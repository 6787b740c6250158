import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseUnit, type UnitFile } from './unit-file.js';
import { formatProblem, lintFleet } from './fleet-lint.js';
import { REPO_ROOT, loadUnitDir } from './check.js';

function units(files: Record<string, string>): Map<string, UnitFile> {
  return new Map(Object.entries(files).map(([n, t]) => [n, parseUnit(t)]));
}

const realUnits = () =>
  units(
    Object.fromEntries(
      loadUnitDir(join(REPO_ROOT, 'units'))
        .filter((s) => !s.path.includes('/'))
        .map((s) => [s.path, s.text]),
    ),
  );

const SVC = '[Service]\nExecStart=/usr/bin/true\n';

test('every unit in units/ passes the [X-Fleet] lint', () => {
  const all = realUnits();
  assert.ok(all.size >= 6, `found ${[...all.keys()].join(', ')}`);
  assert.deepEqual(lintFleet(all).map(formatProblem), []);
});

test('planted bad units are rejected with a message naming unit, line and cause', () => {
  const cases: { name: string; files: Record<string, string>; want: RegExp[] }[] = [
    {
      name: 'Global=true with MachineOf',
      files: {
        'a.service': SVC,
        'g.service': `${SVC}[X-Fleet]\nGlobal=true\nMachineOf=a.service\n`,
      },
      want: [/^g\.service:5: MachineOf= cannot be combined with Global=true \(line 4\)/],
    },
    {
      name: 'misspelt key',
      files: { 'm.service': `${SVC}[X-Fleet]\nGloabl=true\n` },
      want: [/^m\.service:4: \[X-Fleet\] unknown key "Gloabl" — did you mean Global\?/],
    },
    {
      name: 'unknown key far from any known one',
      files: { 'u.service': `${SVC}[X-Fleet]\nX-ConditionMachineBootID=1\n` },
      want: [/unknown key "X-ConditionMachineBootID" \(known: Global, MachineOf/],
    },
    {
      name: '%h specifier in X-Fleet',
      files: {
        'a.service': SVC,
        's@.service': `${SVC}[X-Fleet]\nMachineMetadata=home=%h\n`,
      },
      want: [/^s@\.service:4: MachineMetadata=home=%h: fleet does not expand %h in \[X-Fleet\]/],
    },
    {
      name: 'MachineOf target missing',
      files: { 'side@.service': `${SVC}[X-Fleet]\nMachineOf=web@%i.service\n` },
      want: [
        /^side@\.service:4: MachineOf=web@%i\.service: no unit web@1\.service \(nor template web@\.service\)/,
      ],
    },
    {
      name: 'Global not a boolean',
      files: { 'b.service': `${SVC}[X-Fleet]\nGlobal=yes please\n` },
      want: [/Global=yes please: must be true or false/],
    },
    {
      name: 'MachineMetadata without =',
      files: { 'md.service': `${SVC}[X-Fleet]\nMachineMetadata=logs\n` },
      want: [/"logs" is not key=value/],
    },
  ];
  for (const c of cases) {
    const got = lintFleet(units(c.files)).map(formatProblem);
    assert.equal(got.length, c.want.length, `${c.name}: ${got.join(' / ')}`);
    c.want.forEach((re, i) => assert.match(got[i]!, re, c.name));
  }
});

test('allowed combinations and resolvable MachineOf pass', () => {
  const got = lintFleet(
    units({
      'web@.service': `${SVC}[X-Fleet]\nConflicts=web@*.service\n`,
      'web-side@.service': `${SVC}[X-Fleet]\nMachineOf=web@%i.service\n`,
      'pinned.service': `${SVC}[X-Fleet]\nMachineOf=web@7.service\nReplaces=old.service\n`,
      'g.service': `${SVC}[X-Fleet]\nGlobal=true\nMachineMetadata=role=edge region=eu\nConflicts=x@*.service\n`,
      'plain.service': SVC,
    }),
  );
  assert.deepEqual(got, []);
});
