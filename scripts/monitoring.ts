/**
 * Prometheus for a cluster on this machine: the shipped config (units/monitoring/prometheus.yml)
 * with its file_sd target lists replaced by the cluster's real addresses, the shipped alert
 * rules, and a fast scrape/evaluation interval so an alert's `for` is the only wait. Used by
 * `npm start` (the local cluster) and its tests.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { freePort, must, startProcess, waitFor, type Cluster } from '../test/harness/index.js';
import { releaseScript } from '../test/harness/etcd-auth.js';

export const MONITORING = fileURLToPath(new URL('../../units/monitoring', import.meta.url));

/** Scrape jobs of the shipped config and the port each agent serves /metrics on (units/*.service). */
export const JOB_PORTS: Record<string, number> = {
  overlayd: 8285,
  dnsd: 9153,
  'logsd-agent': 24230,
  'logsd-aggregator': 24241,
  etcd: 2379,
};

interface PromConfig {
  global?: Record<string, string>;
  rule_files?: string[];
  scrape_configs: {
    job_name: string;
    file_sd_configs?: unknown;
    static_configs?: unknown;
    scheme?: string;
    tls_config?: Record<string, string>;
  }[];
}

/** A job scraped over TLS with a client certificate (etcd with --client-cert-auth). */
export interface ScrapeTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * The shipped config with static targets per job (host:port lists), rule files made absolute
 * (`rulesDir`), and `interval` for scraping and evaluation. Throws naming a job that has no
 * targets given, or a given job the shipped config lacks.
 */
export function localPrometheusConfig(
  shipped: string,
  targets: Record<string, string[]>,
  rulesDir: string,
  interval = '2s',
  tls: Record<string, ScrapeTls> = {},
): string {
  const cfg = parse(shipped) as PromConfig;
  const jobs = new Set(cfg.scrape_configs.map((j) => j.job_name));
  for (const job of Object.keys(targets))
    if (!jobs.has(job)) throw new Error(`prometheus.yml has no scrape job "${job}"`);
  cfg.global = { ...cfg.global, scrape_interval: interval, evaluation_interval: interval };
  cfg.rule_files = (cfg.rule_files ?? []).map((f) => join(rulesDir, f));
  for (const j of cfg.scrape_configs) {
    const t = targets[j.job_name];
    if (!t) throw new Error(`no targets for scrape job "${j.job_name}"`);
    delete j.file_sd_configs;
    j.static_configs = [{ targets: t }];
    const s = tls[j.job_name];
    if (s) {
      j.scheme = 'https';
      j.tls_config = { ca_file: s.caFile, cert_file: s.certFile, key_file: s.keyFile };
    }
  }
  return stringify(cfg);
}

/** Where each job runs in the local cluster: agents on every host, the aggregator on host 1. */
export function localTargets(c: Cluster): Record<string, string[]> {
  const hostsOn = (port: number) => c.hosts.map((h) => `${h.ip}:${port}`);
  return {
    overlayd: hostsOn(JOB_PORTS['overlayd']!),
    dnsd: hostsOn(JOB_PORTS['dnsd']!),
    'logsd-agent': hostsOn(JOB_PORTS['logsd-agent']!),
    'logsd-aggregator': [`${c.hosts[0]!.ip}:${JOB_PORTS['logsd-aggregator']}`],
    etcd: c.etcdEndpoints.map((e) => new URL(e).host),
  };
}

/**
 * With a secure etcd, etcd's /metrics wants a client certificate: Prometheus gets one of its own
 * (CN=prometheus, issued by the shipped etcd-certs.sh; no etcd user, so it can read no key).
 */
async function etcdScrapeTls(c: Cluster): Promise<Record<string, ScrapeTls>> {
  const pki = c.etcdPki;
  if (!pki) return {};
  if (!existsSync(join(pki, 'prometheus.pem')))
    await must(['sh', releaseScript('etcd-certs.sh'), pki, '--client', 'prometheus'], {
      timeoutMs: 30_000,
    });
  return {
    etcd: {
      caFile: join(pki, 'ca.pem'),
      certFile: join(pki, 'prometheus.pem'),
      keyFile: join(pki, 'prometheus-key.pem'),
    },
  };
}

/**
 * Starts Prometheus (Debian's `prometheus`) in the root namespace for cluster `c`, listening on
 * 127.0.0.1 (a free port), tracked by the cluster so teardown stops it. Resolves its URL once
 * it answers /-/ready.
 */
export async function startPrometheus(c: Cluster): Promise<string> {
  const dir = join(c.dir, 'prometheus');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const config = localPrometheusConfig(
    readFileSync(join(MONITORING, 'prometheus.yml'), 'utf8'),
    localTargets(c),
    dir,
    '2s',
    await etcdScrapeTls(c),
  );
  writeFileSync(join(dir, 'prometheus.yml'), config);
  copyFileSync(join(MONITORING, 'flotilla-alerts.yml'), join(dir, 'flotilla-alerts.yml'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const p = startProcess(
    [
      'prometheus',
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { logFile: join(dir, 'prometheus.log'), detached: c.persistent },
  );
  c.track(p.pid, 'prometheus');
  await waitFor('prometheus ready', async () => (await fetch(`${url}/-/ready`)).ok, 20_000, 200);
  writeFileSync(join(dir, 'url'), url);
  return url;
}

/** Active alerts from Prometheus's HTTP API. */
export async function alerts(
  url: string,
): Promise<{ labels: Record<string, string>; state: string }[]> {
  const r = (await (await fetch(`${url}/api/v1/alerts`)).json()) as {
    data: { alerts: { labels: Record<string, string>; state: string }[] };
  };
  return r.data.alerts;
}
