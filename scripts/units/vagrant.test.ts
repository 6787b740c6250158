import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, checkUnits, loadUnitDir } from './check.js';
import { checkCloudConfig } from './cloud-config.js';
import { commandFromUnit, parseUnit } from './unit-file.js';

const VAGRANT = join(REPO_ROOT, 'vagrant');
const userData = () => readFileSync(join(VAGRANT, 'user-data'), 'utf8');

/** Commands the user-data's setup script installs (so they exist when its units start). */
const INSTALLED_BY_SETUP = ['/opt/bin/etcd', '/opt/bin/etcdctl', '/opt/bin/fleetd', '/opt/bin/fleetctl'];
const SETUP_SCRIPT = '/opt/flotilla/vagrant-host.sh';

test('vagrant/user-data: cloud-config header, YAML, keys and unit commands are valid', () => {
  const c = checkCloudConfig(userData());
  assert.deepEqual(c.problems, []);
  assert.deepEqual(c.commands, {
    'flotilla-setup.service': 'start',
    'etcd-member.service': 'start',
    'fleet.socket': 'start',
    'fleet.service': 'start',
    'flotilla-network-config.service': 'start',
    'flotilla-fleet-units.service': 'start',
  });
});

test('vagrant/user-data: etcd has the v2 API on (fleet needs it)', () => {
  const etcd = checkCloudConfig(userData()).units.find((u) => u.path === 'etcd-member.service')!;
  assert.deepEqual(commandFromUnit(parseUnit(etcd.text), { name: 'etcd-member.service' }), ['/opt/bin/etcd']);
  assert.match(etcd.text, /^Environment=ETCD_ENABLE_V2=true$/m);
});

test('vagrant/user-data: every embedded unit passes the unit checker (with the units it starts)', () => {
  const c = checkCloudConfig(userData());
  const script = c.files.find((f) => f.path === SETUP_SCRIPT);
  assert.ok(script, `${SETUP_SCRIPT} is written by user-data`);
  for (const bin of INSTALLED_BY_SETUP) {
    const base = bin.split('/').at(-1)!;
    assert.ok(script.content.includes(base), `the setup script installs ${bin}`);
  }
  assert.ok(c.units.length >= 6);
  const problems = checkUnits([...c.units, ...loadUnitDir(join(REPO_ROOT, 'units'))], {
    executables: [...INSTALLED_BY_SETUP, SETUP_SCRIPT],
  });
  assert.deepEqual(problems, []);
});

test('vagrant/user-data: the scripts it writes are valid bash', () => {
  const scripts = checkCloudConfig(userData()).files.filter((f) => f.content.startsWith('#!/usr/bin/bash'));
  assert.ok(scripts.length >= 1);
  for (const s of scripts) {
    const r = spawnSync('bash', ['-n'], { input: s.content, encoding: 'utf8' });
    assert.equal(r.status, 0, `${s.path}: ${r.stderr}`);
    assert.equal(s.permissions, '0755', `${s.path} is executable`);
  }
});

test('vagrant/user-data: the setup script installs every unit file that fleet-units starts', () => {
  const script = checkCloudConfig(userData()).files.find((f) => f.path === SETUP_SCRIPT)!.content;
  const names = new Set(loadUnitDir(join(REPO_ROOT, 'units')).map((s) => s.path));
  const started = [...script.matchAll(/fleetctl (?:start|submit) ([^\n]+)/g)].flatMap((m) => m[1]!.split(/\s+/));
  assert.ok(started.length >= 5, started.join(' '));
  for (const u of started) {
    const file = u.replace(/@[^.]+\./, '@.');
    assert.ok(names.has(file), `${u}: no units/${file}`);
  }
  // From the release tarball (its install.sh puts units/ under /opt/flotilla/units and the Docker
  // drop-in in place; --fleet leaves scheduling to fleetctl), with no Node.js download or npm.
  assert.match(script, /\$SHARE"\/dist\/release\/flotilla-\*-linux-x64\.tar\.gz/);
  assert.match(script, /install\.sh --fleet/);
  assert.match(script, /cd \/opt\/flotilla\/units/);
  assert.doesNotMatch(script, /nodejs\.org|npm (ci|install)/);
});

test('vagrant/user-data: etcd runs with TLS and roles, and every agent gets its own certificate', () => {
  const c = checkCloudConfig(userData());
  const script = c.files.find((f) => f.path === SETUP_SCRIPT)!.content;
  // etcd: https for clients and peers, client certificates required on both.
  for (const want of [
    /^ETCD_LISTEN_CLIENT_URLS=https:\/\/127\.0\.0\.1:2379,https:\/\/\$ip:2379$/m,
    /^ETCD_ADVERTISE_CLIENT_URLS=https:/m,
    /^ETCD_LISTEN_PEER_URLS=https:/m,
    /^ETCD_CLIENT_CERT_AUTH=true$/m,
    /^ETCD_TRUSTED_CA_FILE=\$ETCD_DIR\/ca\.pem$/m,
    /^ETCD_PEER_CLIENT_CERT_AUTH=true$/m,
  ])
    assert.match(script, want);
  assert.doesNotMatch(script, /http:\/\/[^\s]*:23[78]0/, 'no plain-http etcd URL left');
  // The units' agents and fleet connect over https with their certificates.
  assert.match(script, /FLOTILLA_ETCD_ENDPOINTS=https:\/\/127\.0\.0\.1:2379/);
  assert.match(script, /FLEET_ETCD_SERVERS=https:.*FLEET_ETCD_CERTFILE=%s\/fleet\.pem/);
  // Every /etc/flotilla/etcd/<user>.env a unit reads is written, from that user's certificate.
  const loop = /for u in ([^;]+); do\n\s+install -m 0644 "\$PKI\/\$u\.pem"/.exec(script);
  assert.ok(loop, 'the setup script installs each user\'s certificate');
  const installed = loop[1]!.trim().split(/\s+/);
  assert.match(script, /\$ETCD_DIR\/\$u\.env/);
  assert.match(script, /ETCD_DIR=\/etc\/flotilla\/etcd$/m);
  const wanted = loadUnitDir(join(REPO_ROOT, 'units'))
    .flatMap((s) => [...s.text.matchAll(/^EnvironmentFile=-\/etc\/flotilla\/etcd\/([a-z]+)\.env$/gm)].map((m) => m[1]!));
  assert.ok(wanted.length >= 4, wanted.join(' '));
  for (const u of wanted) assert.ok(installed.includes(u), `${u}.env: ${installed.join(' ')}`);
  assert.ok(!installed.includes('root'), 'the operator certificate stays off the VMs');
  // Roles before the overlay config and the units: network-config runs the shipped etcd-roles.sh as root.
  const net = /network_config\(\) \{([\s\S]*?)\n\}/.exec(script)?.[1] ?? '';
  assert.match(net, /ETCDCTL_CERT=\$PKI\/root\.pem/);
  const roles = net.indexOf('scripts/release/etcd-roles.sh');
  assert.ok(roles > 0 && roles < net.indexOf('etcdctl put'), net);
});

test('cloud-config check rejects planted mistakes', () => {
  const cases: [string, RegExp][] = [
    ['coreos:\n  units: []\n', /line 1 must be exactly "#cloud-config"/],
    ['#cloud-config\ncoreos:\n  units:\n    - name: a.service\n      command: launch\n', /command "launch" is not one of start/],
    ['#cloud-config\ncoreos:\n  units:\n    - name: a.service\n      comand: start\n', /unknown key "comand"/],
    ['#cloud-config\nwrite_files:\n  - path: /x\n    permissions: 0755\n    content: x\n', /permissions must be a quoted octal string/],
    ['#cloud-config\ncoreos:\n  units:\n    - name: a.service\n  units: []\n', /YAML: .*[Mm]ap keys must be unique/],
    ['#cloud-config\ncoreos:\n  unitz: []\n', /coreos: unknown key "unitz"/],
  ];
  for (const [text, re] of cases) {
    const got = checkCloudConfig(text).problems;
    assert.ok(got.some((m) => re.test(m)), `${JSON.stringify(text)} → ${got.join(' / ')}`);
  }
});

function rubyAssignments(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^\$([a-z_]+)\s*=\s*(.+)$/gm)].map((m) => [m[1]!, m[2]!.trim()]));
}

test('vagrant/config.rb: 3 VMs by default, underlay outside the overlay, defaults mirrored in the Vagrantfile', () => {
  const cfg = rubyAssignments(readFileSync(join(VAGRANT, 'config.rb'), 'utf8'));
  const vf = rubyAssignments(readFileSync(join(VAGRANT, 'Vagrantfile'), 'utf8'));
  assert.equal(cfg.get('num_instances'), '3');
  for (const k of ['num_instances', 'vm_memory', 'update_channel', 'ip_prefix', 'overlay_network'])
    assert.ok(cfg.has(k), `config.rb sets $${k}`);
  for (const [k, v] of cfg) assert.equal(vf.get(k), v, `Vagrantfile default for $${k}`);
  const prefix = JSON.parse(cfg.get('ip_prefix')!) as string;
  const overlay = JSON.parse(cfg.get('overlay_network')!) as string;
  const [net, len] = overlay.split('/') as [string, string];
  const toInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const mask = len === '0' ? 0 : (~0 << (32 - Number(len))) >>> 0;
  for (const i of [1, 99]) {
    const ip = `${prefix}${100 + i}`;
    assert.notEqual((toInt(ip) & mask) >>> 0, toInt(net), `${ip} is inside the overlay ${overlay}`);
  }
});

test('vagrant/Vagrantfile: `vagrant validate` (when vagrant is installed)', (t) => {
  const has = spawnSync('vagrant', ['--version'], { encoding: 'utf8' });
  if (has.error) {
    t.skip('vagrant is not installed on this machine; `vagrant validate` not run');
    return;
  }
  const r = spawnSync('vagrant', ['validate'], { cwd: VAGRANT, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('vagrant/Vagrantfile: Ruby syntax (when ruby is installed)', (t) => {
  const has = spawnSync('ruby', ['--version'], { encoding: 'utf8' });
  if (has.error) {
    t.skip('ruby is not installed on this machine; Vagrantfile syntax not checked');
    return;
  }
  for (const f of ['Vagrantfile', 'config.rb']) {
    const r = spawnSync('ruby', ['-c', join(VAGRANT, f)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
});

/** Loads the Vagrantfile with Vagrant's API stubbed to record every setting as a JSON line. */
const RECORDING_VAGRANT = String.raw`
require "json"
class Rec
  def initialize(path, log)
    @path = path
    @log = log
  end
  def method_missing(name, *args, **kw, &blk)
    key = name.to_s.sub(/=$/, "")
    @log << { path: (@path + [key]).join("."), args: args, kw: kw }
    child = Rec.new(@path + [key] + (key == "define" ? [args[0]] : []), @log)
    blk.call(child, child) if blk
    child
  end
  def respond_to_missing?(*) = true
end
module Vagrant
  def self.require_version(*); end
  def self.has_plugin?(*) = false
  def self.configure(_version)
    log = []
    yield Rec.new([], log)
    log.each { |e| puts JSON.generate(e) }
  end
end
load ARGV[0]
`;

test('vagrant/Vagrantfile: run with Vagrant stubbed, it defines core-01..03 on 172.17.8.101+ and the etcd cluster', (t) => {
  if (spawnSync('ruby', ['--version']).error) {
    t.skip('ruby is not installed on this machine; Vagrantfile not run');
    return;
  }
  // The repository's layout: vagrant/ beside scripts/release/etcd-certs.sh, which the Vagrantfile runs.
  const top = mkdtempSync(join(tmpdir(), 'flt-vagrant-'));
  const dir = join(top, 'vagrant');
  try {
    mkdirSync(dir);
    mkdirSync(join(top, 'scripts', 'release'), { recursive: true });
    copyFileSync(join(REPO_ROOT, 'scripts', 'release', 'etcd-certs.sh'), join(top, 'scripts', 'release', 'etcd-certs.sh'));
    for (const f of ['Vagrantfile', 'config.rb', 'user-data']) copyFileSync(join(VAGRANT, f), join(dir, f));
    const r = spawnSync('ruby', ['-e', RECORDING_VAGRANT, join(dir, 'Vagrantfile')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const calls = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { path: string; args: unknown[]; kw: Record<string, unknown> });
    const defines = calls.filter((c) => c.path === 'vm.define').map((c) => c.args[0]);
    assert.deepEqual(defines, ['core-01', 'core-02', 'core-03']);
    const ips = calls.filter((c) => /^vm\.define\.core-\d+\.vm\.network$/.test(c.path)).map((c) => c.kw['ip']);
    assert.deepEqual(ips, ['172.17.8.101', '172.17.8.102', '172.17.8.103']);
    const box = calls.find((c) => c.path === 'vm.box');
    assert.deepEqual(box?.args, ['flatcar-stable']);
    const sync = calls.find((c) => c.path === 'vm.define.core-02.vm.synced_folder')!;
    assert.equal(sync.args[1], '/home/core/share');
    assert.equal(sync.kw['type'], 'nfs');
    const shell = calls.find((c) => c.path === 'vm.define.core-01.vm.provision' && c.args[0] === 'shell');
    assert.match(String(shell?.kw['inline']), /systemd-run --no-block .*coreos-cloudinit --from-file/);
    const memory = calls.find((c) => c.path === 'vm.provider.memory');
    assert.deepEqual(memory?.args, [2048]);
    const env = readFileSync(join(dir, '.generated', 'cluster.env'), 'utf8');
    assert.match(
      env,
      /^ETCD_INITIAL_CLUSTER=core-01=https:\/\/172\.17\.8\.101:2380,core-02=https:\/\/172\.17\.8\.102:2380,core-03=https:\/\/172\.17\.8\.103:2380$/m,
    );
    assert.match(env, /^FLOTILLA_LOGS_AGGREGATOR=172\.17\.8\.101:24240$/m);

    // etcd's certificates, by the shipped etcd-certs.sh: etcd's for every VM's address, one per
    // etcd user and fleet's, all from one CA; keys 0600.
    const pki = join(dir, '.generated', 'etcd-pki');
    const x509 = (f: string, ...args: string[]) =>
      spawnSync('openssl', ['x509', '-noout', '-in', join(pki, f), ...args], { encoding: 'utf8' }).stdout;
    const san = x509('server.pem', '-ext', 'subjectAltName');
    for (const ip of ['172.17.8.101', '172.17.8.102', '172.17.8.103', '127.0.0.1'])
      assert.match(san, new RegExp(`IP Address:${ip.replace(/\./g, '\\.')}(,|$)`, 'm'), san);
    for (const u of ['root', 'overlayd', 'dnsd', 'registrator', 'announce', 'logsd', 'fleet']) {
      assert.match(x509(`${u}.pem`, '-subject'), new RegExp(`CN ?= ?${u}$`, 'm'), u);
      const v = spawnSync('openssl', ['verify', '-CAfile', join(pki, 'ca.pem'), join(pki, `${u}.pem`)], { encoding: 'utf8' });
      assert.equal(v.status, 0, `${u}: ${v.stdout}${v.stderr}`);
      assert.equal(statSync(join(pki, `${u}-key.pem`)).mode & 0o777, 0o600, u);
    }
    // A second run keeps them; a fourth VM issues etcd's certificate again, for its address too.
    const before = readFileSync(join(pki, 'overlayd.pem'), 'utf8');
    writeFileSync(join(dir, 'config.rb'), readFileSync(join(dir, 'config.rb'), 'utf8').replace(/^\$num_instances = 3$/m, '$num_instances = 4'));
    const again = spawnSync('ruby', ['-e', RECORDING_VAGRANT, join(dir, 'Vagrantfile')], { encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(readFileSync(join(pki, 'overlayd.pem'), 'utf8'), before);
    assert.match(x509('server.pem', '-ext', 'subjectAltName'), /IP Address:172\.17\.8\.104/);
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});
