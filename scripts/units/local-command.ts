/**
 * A unit's ExecStart as a command for this machine — what `npm start`'s one-machine cluster runs,
 * so the units cannot drift from what is tested: `/opt/flotilla/bin/NAME` becomes
 * `node <repo>/<package.json bin[NAME]>`, and host paths are moved under per-host directories
 * (`relocate`, longest prefix first, also inside `--flag=/path`). Everything else as systemd would
 * run it (see commandFromUnit).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandFromUnit, parseUnit, type CommandOptions } from './unit-file.js';

export interface LocalCommandOptions extends CommandOptions {
  /** Repository root holding package.json and dist/. */
  repoRoot: string;
  /** Path prefix → replacement, e.g. `{'/run/flannel/': '/tmp/c/h1/run/flannel/'}`. */
  relocate?: Record<string, string>;
  /** Node binary; default the one running this code. */
  node?: string;
}

export function localCommand(unitText: string, opts: LocalCommandOptions): string[] {
  const argv = commandFromUnit(parseUnit(unitText), opts);
  const bins = (
    JSON.parse(readFileSync(join(opts.repoRoot, 'package.json'), 'utf8')) as {
      bin?: Record<string, string>;
    }
  ).bin ?? {};
  const moves = Object.entries(opts.relocate ?? {}).sort((a, b) => b[0].length - a[0].length);
  const relocate = (w: string) => {
    for (const [from, to] of moves) {
      const at = w.indexOf(from);
      if (at === 0 || (at > 0 && w[at - 1] === '=')) return w.slice(0, at) + to + w.slice(at + from.length);
    }
    return w;
  };
  const head = /^\/opt\/flotilla\/bin\/(.+)$/.exec(argv[0] ?? '');
  const rest = argv.slice(1).map(relocate);
  if (!head) return [argv[0]!, ...rest];
  const script = bins[head[1]!];
  if (!script) throw new Error(`${opts.name}: ${argv[0]} is not a package.json bin`);
  return [opts.node ?? process.execPath, join(opts.repoRoot, script), ...rest];
}
