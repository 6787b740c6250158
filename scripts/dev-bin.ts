/**
 * The project's commands (package.json "bin": overlayd, dnsd, announce, logsd, logs) as small sh
 * wrappers in dist/bin (gitignored), each running the repository's own Node.js 24
 * (node_modules/.bin/node) on the compiled agent, so the docs' bare `logs tail …` works in a
 * shell whose PATH has dist/bin (`npm run cluster -- env` prints that PATH).
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFlags } from '../agents/common/node-flags.js';

/**
 * The wrapper for one command: absolute paths, so it works from any directory; `flags` are the
 * command's Node flags (agents/common/node-flags.ts).
 */
export function devWrapper(
  cmd: string,
  node: string,
  script: string,
  flags: string[] = [],
): string {
  const pre = flags.map((f) => `${shQuote(f)} `).join('');
  return `#!/bin/sh
# Flotilla ${cmd} from this checkout (written by \`npm run cluster -- env\`; dist/ is not tracked).
exec ${shQuote(node)} ${pre}${shQuote(script)} "$@"
`;
}

/** Single-quotes `s` for sh. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_/.:,=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Writes (or rewrites when changed) the wrappers into `<repo>/dist/bin`; returns that directory. */
export function ensureDevBin(repo: string): string {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
  };
  const dir = join(repo, 'dist', 'bin');
  mkdirSync(dir, { recursive: true });
  const node = join(repo, 'node_modules', '.bin', 'node');
  for (const [cmd, script] of Object.entries(pkg.bin)) {
    const file = join(dir, cmd);
    const text = devWrapper(cmd, node, join(repo, script), nodeFlags(cmd));
    let old = '';
    try {
      old = readFileSync(file, 'utf8');
    } catch {
      // not written yet
    }
    if (old !== text) writeFileSync(file, text);
    chmodSync(file, 0o755);
  }
  return dir;
}
