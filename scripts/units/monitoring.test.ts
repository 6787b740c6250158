// The shipped monitoring (units/monitoring): Prometheus's own checker accepts the config and the
// rules, `promtool test rules` passes with a firing case for every rule, every rule has a
// runbook pointing at a section of docs/operations.md, and every Flotilla metric a rule reads
// is exported by an agent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { MONITORING, localPrometheusConfig } from '../monitoring.js';
import { REPO_ROOT } from './check.js';

interface Rule {
  alert: string;
  expr: string;
  annotations: Record<string, string>;
}
const rules = (): Rule[] =>
  (
    parse(readFileSync(join(MONITORING, 'flotilla-alerts.yml'), 'utf8')) as {
      groups: { rules: Rule[] }[];
    }
  ).groups.flatMap((g) => g.rules);

function promtool(args: string[], cwd = MONITORING) {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool: ${r.error.message} (apt-get install prometheus)`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function withDir<T>(fn: (d: string) => T): T {
  const d = mkdtempSync(join(tmpdir(), 'flt-prom-'));
  try {
    return fn(d);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

test('promtool check config: the shipped prometheus.yml with the example target lists, no warnings', () => {
  withDir((d) => {
    for (const f of ['prometheus.yml', 'flotilla-alerts.yml']) copyFileSync(join(MONITORING, f), join(d, f));
    mkdirSync(join(d, 'targets'));
    for (const f of readdirSync(join(MONITORING, 'targets')))
      copyFileSync(join(MONITORING, 'targets', f), join(d, 'targets', f.replace(/\.example$/, '')));
    const r = promtool(['check', 'config', 'prometheus.yml'], d);
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /WARNING/, r.out);
  });
});

test('promtool check rules and test rules pass', () => {
  const check = promtool(['check', 'rules', 'flotilla-alerts.yml']);
  assert.equal(check.code, 0, check.out);
  assert.match(check.out, new RegExp(`SUCCESS: ${rules().length} rules found`));
  const t = promtool(['test', 'rules', 'flotilla-alerts.test.yml']);
  assert.equal(t.code, 0, t.out);
});

test('promtool test rules fails when a rule stops firing (the suite is not vacuous)', () => {
  withDir((d) => {
    const text = readFileSync(join(MONITORING, 'flotilla-alerts.yml'), 'utf8');
    writeFileSync(join(d, 'flotilla-alerts.yml'), text.replace('etcd_server_has_leader == 0', 'etcd_server_has_leader == 2'));
    copyFileSync(join(MONITORING, 'flotilla-alerts.test.yml'), join(d, 'flotilla-alerts.test.yml'));
    const r = promtool(['test', 'rules', 'flotilla-alerts.test.yml'], d);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /EtcdNoLeader/);
  });
});

test('every rule has a firing unit test, a runbook line and a runbook section in docs/operations.md', () => {
  const tests = (
    parse(readFileSync(join(MONITORING, 'flotilla-alerts.test.yml'), 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    }
  ).tests.flatMap((t) => t.alert_rule_test);
  const ops = readFileSync(join(REPO_ROOT, 'docs/operations.md'), 'utf8');
  const anchors = new Set(
    [...ops.matchAll(/^#+ (.+)$/gm)].map((m) =>
      m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-'),
    ),
  );
  for (const r of rules()) {
    assert.ok(
      tests.some((t) => t.alertname === r.alert && t.exp_alerts.length > 0),
      `${r.alert}: no test where it fires`,
    );
    assert.ok(
      tests.some((t) => t.alertname === r.alert && t.exp_alerts.length === 0),
      `${r.alert}: no test where it stays quiet`,
    );
    assert.ok((r.annotations['runbook'] ?? '').length > 20, `${r.alert}: no runbook line`);
    const anchor = /docs\/operations\.md#(.+)$/.exec(r.annotations['runbook_url'] ?? '')?.[1];
    assert.ok(anchor && anchors.has(anchor), `${r.alert}: runbook_url ${r.annotations['runbook_url']} has no section in docs/operations.md`);
  }
});

test('every flotilla_* metric the rules read is exported by an agent', () => {
  const sources: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) sources.push(readFileSync(p, 'utf8'));
    }
  };
  walk(join(REPO_ROOT, 'agents'));
  const all = sources.join('\n');
  const prefixes = ['logs_aggregator', 'logs_agent', 'overlay', 'dns'];
  const names = new Set(rules().flatMap((r) => [...r.expr.matchAll(/flotilla_[a-z_]+/g)].map((m) => m[0])));
  assert.ok(names.size >= 8, [...names].join(' '));
  for (const n of names) {
    const prefix = prefixes.find((p) => n.startsWith(`flotilla_${p}_`));
    assert.ok(prefix, `${n}: not an agent's metric prefix`);
    const short = n.slice(`flotilla_${prefix}_`.length);
    assert.ok(
      all.includes(`'${n}'`) || all.includes(`'${short}'`) || new RegExp(`\\b${short}: \\{`).test(all),
      `${n}: no agent defines it`,
    );
  }
});

test('the local cluster config: every job gets static targets, rules absolute, promtool accepts it', () => {
  withDir((d) => {
    copyFileSync(join(MONITORING, 'flotilla-alerts.yml'), join(d, 'flotilla-alerts.yml'));
    const shipped = readFileSync(join(MONITORING, 'prometheus.yml'), 'utf8');
    const targets = {
      overlayd: ['10.231.9.11:8285'],
      dnsd: ['10.231.9.11:9153'],
      'logsd-agent': ['10.231.9.11:24230'],
      'logsd-aggregator': ['10.231.9.11:24241'],
      etcd: ['10.231.9.1:2379'],
    };
    const text = localPrometheusConfig(shipped, targets, d, '1s');
    writeFileSync(join(d, 'local.yml'), text);
    const r = promtool(['check', 'config', 'local.yml'], d);
    assert.equal(r.code, 0, r.out);
    const cfg = parse(text) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    assert.deepEqual(
      Object.fromEntries(cfg.scrape_configs.map((j) => [j.job_name, j.static_configs[0]!.targets])),
      targets,
    );
    const { etcd: _etcd, ...missing } = targets;
    assert.throws(() => localPrometheusConfig(shipped, missing, d), /no targets for scrape job "etcd"/);
    assert.throws(() => localPrometheusConfig(shipped, { ...targets, nope: [] }, d), /no scrape job "nope"/);

    // etcd with client certificates: that job over https with Prometheus's own certificate.
    for (const f of ['ca.pem', 'prometheus.pem', 'prometheus-key.pem']) writeFileSync(join(d, f), '');
    const tls = { caFile: join(d, 'ca.pem'), certFile: join(d, 'prometheus.pem'), keyFile: join(d, 'prometheus-key.pem') };
    const secure = localPrometheusConfig(shipped, targets, d, '1s', { etcd: tls });
    writeFileSync(join(d, 'secure.yml'), secure);
    const rs = promtool(['check', 'config', '--syntax-only', 'secure.yml'], d);
    assert.equal(rs.code, 0, rs.out);
    const jobs = (parse(secure) as { scrape_configs: { job_name: string; scheme?: string; tls_config?: unknown }[] }).scrape_configs;
    assert.deepEqual(jobs.find((j) => j.job_name === 'etcd'), {
      job_name: 'etcd',
      static_configs: [{ targets: ['10.231.9.1:2379'] }],
      scheme: 'https',
      tls_config: { ca_file: tls.caFile, cert_file: tls.certFile, key_file: tls.keyFile },
    });
    assert.ok(jobs.filter((j) => j.job_name !== 'etcd').every((j) => !j.scheme && !j.tls_config));
  });
});
