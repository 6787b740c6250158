/**
 * The unit checker: parses every unit file, lints `[X-Fleet]`, and runs `systemd-analyze verify` on
 * each in a Flatcar-like root. `checkUnits` returns one readable line per problem (empty = all
 * good); run as a script (`node dist/scripts/units/check.js [DIR]`) it prints them and exits 1.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseUnit, type UnitFile } from './unit-file.js';
import { formatProblem, lintFleet } from './fleet-lint.js';
import { verifyUnits, type UnitSource } from './verify.js';

/** The repository root, from this file's place in dist/scripts/units/. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Unit files under `dir`: `*.service` etc. at the top, drop-ins as `x.service.d/*.conf`. */
export function loadUnitDir(dir: string): UnitSource[] {
  const out: UnitSource[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = relative(dir, p);
      if (statSync(p).isDirectory()) {
        if (/\.[a-z]+\.d$/.test(name)) walk(p);
      } else if (/^[^/]+\.(service|socket|timer|target|path|mount)$/.test(rel) || /\.d\/[^/]+\.conf$/.test(rel))
        out.push({ path: rel, text: readFileSync(p, 'utf8') });
    }
  };
  walk(dir);
  return out;
}

/** Flotilla's commands as installed under /opt/flotilla/bin: the package.json bin names. */
export function flotillaBins(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    bin?: Record<string, string>;
  };
  return Object.keys(pkg.bin ?? {});
}

/** All problems of a set of unit sources: syntax, `[X-Fleet]` lint, systemd-analyze verify. */
export function checkUnits(
  sources: UnitSource[],
  opts: { executables?: string[] } = {},
): string[] {
  const problems: string[] = [];
  const units = new Map<string, UnitFile>();
  for (const s of sources) {
    try {
      const unit = parseUnit(s.text);
      if (!s.path.includes('/')) units.set(s.path, unit);
    } catch (err) {
      problems.push(`${s.path}: ${(err as Error).message}`);
    }
  }
  problems.push(...lintFleet(units).map(formatProblem));
  for (const r of verifyUnits(sources, { ...opts, flotillaBins: flotillaBins() }))
    if (!r.ok)
      problems.push(
        `${r.path}: systemd-analyze verify ${r.target}: ${r.output.split('\n').join(' | ') || 'failed without output'}`,
      );
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2] ?? join(REPO_ROOT, 'units');
  const sources = loadUnitDir(dir);
  const problems = checkUnits(sources);
  for (const p of problems) process.stderr.write(`${p}\n`);
  process.stdout.write(`units: ${sources.length} files checked, ${problems.length} problems\n`);
  process.exit(problems.length === 0 ? 0 : 1);
}
