/**
 * Runs `systemd-analyze verify` on unit files inside a throw-away root that looks like a
 * CoreOS/Flatcar host: the distribution's own units (copied from this machine), stubs of the units
 * Flatcar ships that ours depend on (etcd-member, docker, containerd), and stub executables at the
 * paths Flatcar has (/usr/bin/docker, …) plus Flotilla's own (/opt/flotilla/bin/*). A unit naming
 * a command or a unit that such a host would not have fails, as it would on the host.
 * No PID 1 systemd is needed: `--root` makes systemd-analyze load everything from the root.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { instanceOf, isTemplate } from './unit-file.js';

/** A unit file by its path relative to a unit directory: `x.service` or `x.service.d/y.conf`. */
export interface UnitSource {
  path: string;
  text: string;
}

export interface VerifyOutcome {
  /** The source this outcome is about. */
  path: string;
  /** The unit name systemd-analyze was asked about (template instance, drop-in's base unit). */
  target: string;
  /** Everything systemd-analyze printed (stdout and stderr); any output is a failure. */
  output: string;
  ok: boolean;
}

/** Commands present on a Flatcar host, stubbed in the root. */
export const FLATCAR_EXECUTABLES = [
  '/usr/bin/sh',
  '/usr/bin/bash',
  '/usr/bin/env',
  '/usr/bin/true',
  '/usr/bin/sleep',
  '/usr/bin/kill',
  '/usr/bin/mkdir',
  '/usr/bin/rm',
  '/usr/bin/cp',
  '/usr/bin/mv',
  '/usr/bin/ln',
  '/usr/bin/chmod',
  '/usr/bin/install',
  '/usr/bin/tar',
  '/usr/bin/curl',
  '/usr/bin/systemctl',
  '/usr/bin/docker',
  '/usr/bin/dockerd',
  '/usr/bin/containerd',
  '/usr/bin/coreos-cloudinit',
];

/** Units that Flatcar ships and ours depend on, reduced to what verify looks at. */
export const FLATCAR_UNITS: Record<string, string> = {
  'etcd-member.service': `[Unit]
Description=etcd (stub of the Flatcar unit)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
ExecStart=/usr/bin/docker run --rm --name etcd-member --network host quay.io/coreos/etcd
Restart=always

[Install]
WantedBy=multi-user.target
`,
  'docker.service': `[Unit]
Description=Docker Application Container Engine (as Flatcar ships it)
After=containerd.service docker.socket network-online.target
Wants=network-online.target
Requires=containerd.service docker.socket

[Service]
Type=notify
EnvironmentFile=-/run/flannel/flannel_docker_opts.env
Environment=DOCKER_SELINUX=--selinux-enabled=true
ExecStart=/usr/bin/dockerd --host=fd:// --containerd=/var/run/docker/libcontainerd/docker-containerd.sock $DOCKER_SELINUX $DOCKER_OPTS $DOCKER_CGROUPS $DOCKER_OPT_BIP $DOCKER_OPT_MTU $DOCKER_OPT_IPMASQ
ExecReload=/usr/bin/kill -s HUP $MAINPID
LimitNOFILE=1048576
Delegate=yes
KillMode=process

[Install]
WantedBy=multi-user.target
`,
  'docker.socket': `[Unit]
Description=Docker Socket for the API

[Socket]
ListenStream=/var/run/docker.sock
SocketMode=0660
SocketUser=root
SocketGroup=root

[Install]
WantedBy=sockets.target
`,
  'containerd.service': `[Unit]
Description=containerd container runtime
After=network.target

[Service]
Type=notify
ExecStart=/usr/bin/containerd
Delegate=yes
KillMode=process

[Install]
WantedBy=multi-user.target
`,
};

/** The unit name to verify for a source: templates as `name@1.service`, drop-ins as their base. */
export function verifyTarget(path: string): string {
  const dropIn = /^([^/]+)\.d\/[^/]+\.conf$/.exec(path);
  if (dropIn) return isTemplate(dropIn[1]!) ? instanceOf(dropIn[1]!, '1') : dropIn[1]!;
  if (path.includes('/')) throw new Error(`${path}: not a unit file or a drop-in`);
  return isTemplate(path) ? instanceOf(path, '1') : path;
}

function stubExecutable(root: string, path: string): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, '#!/bin/sh\nexit 0\n');
  chmodSync(file, 0o755);
}

/** Where the host keeps its distribution units (Debian: /usr/lib/systemd/system). */
const HOST_UNITS = '/usr/lib/systemd/system';

/**
 * Verifies every source, all installed together in /etc/systemd/system of one root (so they see
 * each other), each verified on its own so the output is attributed. `executables` adds stub
 * commands beyond Flatcar's, e.g. what a cloud-config installs.
 */
export function verifyUnits(
  sources: UnitSource[],
  opts: { executables?: string[]; flotillaBins?: string[] } = {},
): VerifyOutcome[] {
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (analyze.error || analyze.status !== 0)
    throw new Error(
      'systemd-analyze is not installed (Debian: apt-get install systemd); the unit check needs it',
    );
  const root = mkdtempSync(join(tmpdir(), 'flt-units-'));
  try {
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    for (const d of ['bin', 'lib', 'sbin']) symlinkSync(`usr/${d === 'sbin' ? 'bin' : d}`, join(root, d));
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    if (existsSync(HOST_UNITS))
      cpSync(HOST_UNITS, join(root, 'usr/lib/systemd/system'), {
        recursive: true,
        verbatimSymlinks: true,
      });
    const vendor = join(root, 'usr/lib/systemd/system');
    mkdirSync(vendor, { recursive: true });
    for (const [name, text] of Object.entries(FLATCAR_UNITS)) {
      rmSync(join(vendor, `${name}.d`), { recursive: true, force: true });
      writeFileSync(join(vendor, name), text);
    }
    const bins = (opts.flotillaBins ?? []).map((b) => `/opt/flotilla/bin/${b}`);
    for (const p of [...FLATCAR_EXECUTABLES, ...bins, ...(opts.executables ?? [])])
      stubExecutable(root, p);
    const etc = join(root, 'etc/systemd/system');
    for (const s of sources) {
      const file = join(etc, s.path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, s.text);
    }
    return sources.map((s) => {
      const target = verifyTarget(s.path);
      const r = spawnSync(
        'systemd-analyze',
        [
          'verify',
          `--root=${root}`,
          '--man=no',
          '--generators=no',
          '--recursive-errors=yes',
          target,
        ],
        { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' } },
      );
      const output = `${r.stdout}${r.stderr}`.replaceAll(root, '').trim();
      return { path: s.path, target, output, ok: r.status === 0 && output === '' };
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
