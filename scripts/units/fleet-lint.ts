/**
 * Lint of fleet's `[X-Fleet]` section (pure). fleet accepts a misspelt key with only a warning and
 * then schedules the unit anywhere, so a typo silently breaks placement; these rules catch what
 * fleet itself would reject or ignore: unknown keys, Global=true with keys other than
 * MachineMetadata/Conflicts, MachineOf targets missing from the unit set, and specifiers fleet does
 * not expand (only %n %N %p %i).
 */
import {
  entries,
  instanceOf,
  isTemplate,
  specifiersIn,
  templateOf,
  expandSpecifiers,
  type UnitFile,
} from './unit-file.js';

export const FLEET_KEYS = [
  'Global',
  'MachineOf',
  'MachineID',
  'MachineMetadata',
  'Conflicts',
  'Replaces',
] as const;
const FLEET_SPECIFIERS = ['%n', '%N', '%p', '%i'];
const GLOBAL_COMPANIONS = new Set(['Global', 'MachineMetadata', 'Conflicts']);

export interface LintProblem {
  unit: string;
  line: number;
  message: string;
}

export const formatProblem = (p: LintProblem) => `${p.unit}:${p.line}: ${p.message}`;

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

function suggestion(key: string): string {
  const near = FLEET_KEYS.find(
    (k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2,
  );
  return near ? ` — did you mean ${near}?` : ` (known: ${FLEET_KEYS.join(', ')})`;
}

/** Unit `target` exists in `names` as a file, or as the template an instance name comes from. */
function resolves(target: string, names: ReadonlySet<string>): boolean {
  if (names.has(target)) return true;
  const t = templateOf(target);
  return t !== undefined && names.has(t);
}

/**
 * Lints the `[X-Fleet]` sections of a set of units, keyed by file name (templates as
 * `name@.service`). MachineOf targets are resolved within the same set; a template's own
 * specifiers are expanded with instance `1`, as fleet would for `name@1.service`.
 */
export function lintFleet(units: ReadonlyMap<string, UnitFile>): LintProblem[] {
  const problems: LintProblem[] = [];
  const names = new Set(units.keys());
  for (const [name, unit] of units) {
    const add = (line: number, message: string) => problems.push({ unit: name, line, message });
    const fleet = unit.sections.filter((s) => s.name === 'X-Fleet').flatMap((s) => s.entries);
    for (const e of fleet) {
      if (!(FLEET_KEYS as readonly string[]).includes(e.key)) {
        add(e.line, `[X-Fleet] unknown key "${e.key}"${suggestion(e.key)}`);
        continue;
      }
      for (const s of specifiersIn(e.value))
        if (!FLEET_SPECIFIERS.includes(s))
          add(
            e.line,
            `${e.key}=${e.value}: fleet does not expand ${s} in [X-Fleet] (only ${FLEET_SPECIFIERS.join(' ')})`,
          );
      if (e.key === 'Global' && !/^(true|false)$/.test(e.value))
        add(e.line, `Global=${e.value}: must be true or false`);
      if (e.key === 'MachineMetadata') {
        for (const pair of e.value.split(/\s+/))
          if (!/^[^=\s]+=[^=\s]+$/.test(pair.replace(/^"|"$/g, '')))
            add(e.line, `MachineMetadata=${e.value}: "${pair}" is not key=value`);
      }
      if (e.key === 'MachineID' && !/^[0-9a-f]{32}$/.test(e.value))
        add(e.line, `MachineID=${e.value}: not a 32-hex-digit machine ID`);
    }
    const global = entries(unit, 'X-Fleet', 'Global').at(-1);
    if (global?.value === 'true') {
      for (const e of fleet)
        if (!GLOBAL_COMPANIONS.has(e.key) && (FLEET_KEYS as readonly string[]).includes(e.key))
          add(
            e.line,
            `${e.key}= cannot be combined with Global=true (line ${global.line}); fleet allows only MachineMetadata and Conflicts with it`,
          );
    }
    const as = isTemplate(name) ? instanceOf(name, '1') : name;
    for (const e of entries(unit, 'X-Fleet', 'MachineOf')) {
      if (specifiersIn(e.value).some((s) => !FLEET_SPECIFIERS.includes(s))) continue;
      for (const target of e.value.split(/\s+/)) {
        let resolved: string;
        try {
          resolved = expandSpecifiers(target, as);
        } catch {
          continue;
        }
        if (resolved === as) add(e.line, `MachineOf=${target}: a unit cannot follow itself`);
        else if (!resolves(resolved, names)) {
          const t = templateOf(resolved);
          add(
            e.line,
            `MachineOf=${target}: no unit ${resolved}${t ? ` (nor template ${t})` : ''} among the units`,
          );
        }
      }
    }
  }
  return problems;
}
