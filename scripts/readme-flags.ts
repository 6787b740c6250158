/**
 * The README's flag reference is generated from each command's own `--help`, so the two cannot
 * drift: `npm run docs` rewrites the section between the markers; the test beside this file fails
 * when the README no longer matches what the commands print.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const README = join(REPO, 'README.md');
const BEGIN = '<!-- BEGIN FLAGS: generated from --help by `npm run docs`; do not edit by hand -->';
const END = '<!-- END FLAGS -->';

/** [title, bin script, args before --help] */
export const COMMANDS: [string, string, string[]][] = [
  ['overlayd', 'dist/agents/overlay/main.js', []],
  ['dnsd', 'dist/agents/dns/main.js', []],
  ['announce', 'dist/agents/dns/announce-main.js', []],
  ['dnsctl', 'dist/agents/dns/dnsctl-main.js', []],
  ['logsd agent', 'dist/agents/logs/main.js', ['agent']],
  ['logsd aggregator', 'dist/agents/logs/main.js', ['aggregator']],
  ['logs', 'dist/agents/logs/cli-main.js', []],
  ['logs tail', 'dist/agents/logs/cli-main.js', ['tail']],
  ['logs services', 'dist/agents/logs/cli-main.js', ['services']],
  ['logs export', 'dist/agents/logs/cli-main.js', ['export']],
];

export function helpOf(script: string, args: string[]): string {
  const out = execFileSync(process.execPath, [join(REPO, script), ...args, '--help'], {
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
  });
  // Machine-dependent defaults are shown by name.
  return out.split(hostname()).join('<hostname>').trimEnd();
}

export function renderFlags(): string {
  const parts = COMMANDS.map(
    ([title, script, args]) => `### \`${title}\`\n\n\`\`\`text\n${helpOf(script, args)}\n\`\`\``,
  );
  return `${BEGIN}\n\n${parts.join('\n\n')}\n\n${END}`;
}

export function currentSection(readme: string): string | undefined {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  return a === -1 || b === -1 ? undefined : readme.slice(a, b + END.length);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const readme = readFileSync(README, 'utf8');
  const section = currentSection(readme);
  if (!section) {
    process.stderr.write(`readme-flags: ${README} has no ${BEGIN} … ${END} section\n`);
    process.exit(1);
  }
  const fresh = renderFlags();
  if (process.argv.includes('--write')) {
    if (section === fresh) {
      process.stdout.write('README flags section unchanged (it matches every --help)\n');
    } else {
      writeFileSync(README, readme.replace(section, fresh));
      process.stdout.write('README flags section updated\n');
    }
  } else if (section !== fresh) {
    process.stderr.write('README flags section is out of date: run `npm run docs`\n');
    process.exit(1);
  }
}
