/**
 * The main job on one machine, shared by `npm start` and its end-to-end test: a 3-host cluster on
 * the harness running every agent with the command taken from its unit file (units/), so the
 * units cannot drift from what is tested. Host 1 also runs the log aggregator; nginx@1 and its
 * sidekick run on host 2, nginx@2 and its sidekick on host 3.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  etcdctlTlsArgs,
  startCluster,
  waitFor,
  type Cluster,
  type EtcdUser,
  type Host,
  type StartedProcess,
} from '../test/harness/index.js';
import { localCommand } from './units/local-command.js';
import { listValues, parseUnit } from './units/unit-file.js';
import { dockerOptionsFromDropIn } from './units/docker-dropin.js';
import { startPrometheus } from './monitoring.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
const UNITS = join(REPO, 'units');
export const OVERLAY_NETWORK = '10.5.0.0/16';
/** busybox httpd in the test image stands in for nginx; -vv logs each request to stderr. */
const NGINX_COMMAND = 'httpd -f -vv -p 80 -h /var/www';

/** The log aggregator's query API: host 1's underlay address (logs-aggregator@1 binds it). */
export function aggregatorUrl(hosts: { ip: string }[]): string {
  return `http://${hosts[0]!.ip}:24241`;
}

/** The leases in `etcdctl get --prefix /coreos.com/network/subnets/` output (key and value lines). */
export function parseLeases(etcdctlOut: string): { subnet: string; publicIp: string }[] {
  const lines = etcdctlOut.trim().split('\n');
  const leases: { subnet: string; publicIp: string }[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const subnet = lines[i]!.split('/').pop()!.replace('-', '/');
    const publicIp = (JSON.parse(lines[i + 1]!) as { PublicIP: string }).PublicIP;
    leases.push({ subnet, publicIp });
  }
  return leases;
}

export interface LocalClusterOptions {
  id?: string;
  persistent?: boolean;
  /** Progress lines (step, seconds). */
  progress?: (line: string) => void;
}

export interface LocalCluster {
  cluster: Cluster;
  aggregatorHttp: string;
  /** host index (0-based) of each nginx instance. */
  nginx: { instance: number; host: Host; container: string }[];
  /** Prometheus (units/monitoring) scraping every agent and etcd, on 127.0.0.1. */
  prometheusUrl: string;
  /** Every unit started, by `<host name>/<unit instance>` (e.g. `fltdemo-h2/logsd.service`). */
  units: Map<string, StartedProcess>;
}

const started = new WeakMap<Cluster, Map<string, StartedProcess>>();

function unit(name: string): string {
  return readFileSync(join(UNITS, name), 'utf8');
}

/**
 * The log driver and options of the shipped Docker drop-in (they do not depend on the subnet),
 * for tests and benchmarks that run dockerd without the overlay: they log exactly as deployed.
 */
export function dropInLogOptions(): { logDriver: string; logOpts: Record<string, string> } {
  const d = dockerOptionsFromDropIn(unit('docker.service.d/50-flotilla.conf'), {
    FLANNEL_SUBNET: '10.5.0.1/24',
    FLANNEL_MTU: 1450,
  });
  return { logDriver: d.logDriver, logOpts: d.logOpts };
}

/**
 * The fluentd-driver variant (logsd's forward input), as docs/logs.md describes it: acked
 * delivery, the local cache off so a container cannot run ahead of the driver. The tests use it
 * without `labels=service`, so attribution goes through the agent's metadata lookups; with
 * `fluentd-async=true` added `docker run` works while logsd is down (see docs/logs.md for what
 * that costs).
 */
export const FORWARD_LOG_OPTIONS: Record<string, string> = {
  'fluentd-address': '127.0.0.1:24224',
  'fluentd-request-ack': 'true',
  'fluentd-sub-second-precision': 'true',
  'cache-disabled': 'true',
};

/**
 * The cluster-wide log secrets, as install.sh makes them under /etc/flotilla (here one directory
 * in the run dir that every host's units read, as if copied to each host): the forward-protocol
 * shared key and the query token, mode 0600. Made once per run; `npm start` runs locked.
 */
export function logSecrets(c: { dir: string }): {
  dir: string;
  keyFile: string;
  tokenFile: string;
} {
  const dir = join(c.dir, 'etc/flotilla');
  return { dir, keyFile: join(dir, 'logs-shared-key'), tokenFile: join(dir, 'logs-token') };
}

function makeLogSecrets(c: Cluster): void {
  const s = logSecrets(c);
  mkdirSync(s.dir, { recursive: true, mode: 0o700 });
  chmodSync(s.dir, 0o700);
  for (const f of [s.keyFile, s.tokenFile])
    if (!existsSync(f)) writeFileSync(f, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
}

/**
 * The etcd users whose certificates every host gets (the units' agents: overlayd, dnsd, announce,
 * logs-aggregator@; registrator for dnsd --docker). Not root: the operator's certificate stays in
 * the run's etcd-pki, as docs/operations.md says to keep it off the hosts.
 */
export const HOST_ETCD_USERS: EtcdUser[] = ['overlayd', 'dnsd', 'registrator', 'announce', 'logsd'];

/** Where a host keeps etcd's CA and its agents' certificates (`/etc/flotilla/etcd/` on a host). */
export function hostEtcdDir(c: { dir: string }): string {
  return join(logSecrets(c).dir, 'etcd');
}

/**
 * What a host's `/etc/flotilla/etcd/<user>.env` holds (docs/operations.md, the Vagrant cluster's
 * setup writes the same): the CA and that agent's own certificate, as the units' variables.
 */
export function etcdRoleEnv(user: EtcdUser, dir = '/etc/flotilla/etcd'): string {
  return [
    `FLOTILLA_ETCD_CAFILE=${dir}/ca.pem`,
    `FLOTILLA_ETCD_CERTFILE=${dir}/${user}.pem`,
    `FLOTILLA_ETCD_KEYFILE=${dir}/${user}-key.pem`,
    '',
  ].join('\n');
}

/**
 * Installs the secure etcd's CA and the agents' certificates as a host has them under
 * /etc/flotilla/etcd (one directory that every host's units read, like the log secrets), with one
 * <user>.env per agent naming its files; the units read it (EnvironmentFile=).
 */
function installEtcdCerts(c: Cluster): void {
  const pki = c.etcdPki;
  if (!pki) return;
  const dir = hostEtcdDir(c);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  copyFileSync(join(pki, 'ca.pem'), join(dir, 'ca.pem'));
  for (const u of HOST_ETCD_USERS) {
    for (const f of [`${u}.pem`, `${u}-key.pem`]) copyFileSync(join(pki, f), join(dir, f));
    chmodSync(join(dir, `${u}-key.pem`), 0o600);
    writeFileSync(join(dir, `${u}.env`), etcdRoleEnv(u), { mode: 0o600 });
  }
}

/** `etcdctl` against the cluster's etcd as `user` (TLS flags when etcd is secure). */
export function etcdctlArgv(
  c: { etcdEndpoints: string[]; etcdPki?: string | undefined },
  user: EtcdUser,
  args: string[],
): string[] {
  return [
    'etcdctl',
    '--endpoints',
    c.etcdEndpoints.join(','),
    ...(c.etcdPki ? etcdctlTlsArgs(c.etcdPki, user) : []),
    ...args,
  ];
}

/**
 * What the unit's optional EnvironmentFile=-/etc/flotilla/… files hold on `host` (those that exist
 * here, relocated), later files winning, as systemd reads them.
 */
function unitEnvFiles(unitText: string, host: Host): Record<string, string> {
  const env: Record<string, string> = {};
  const moves = Object.entries(hostPaths(host));
  for (const v of listValues(parseUnit(unitText), 'Service', 'EnvironmentFile')) {
    const path = v.replace(/^-/, '');
    const move = moves.find(([from]) => path.startsWith(from));
    if (!move) continue;
    const local = move[1] + path.slice(move[0].length);
    if (existsSync(local)) Object.assign(env, parseEnvFile(readFileSync(local, 'utf8')));
  }
  return env;
}

function hostPaths(h: Host): Record<string, string> {
  return {
    '/etc/flotilla/': `${logSecrets(h.cluster).dir}/`,
    '/run/flannel/': join(h.dir, 'run/flannel/'),
    '/var/lib/flotilla/': join(h.dir, 'var/lib/flotilla/'),
    // The host's dockerd keeps its data-root here (test/harness/dockerd.ts): logsd's file input
    // reads <data-root>/containers.
    '/var/lib/docker/': join(h.dir, 'docker/data/'),
  };
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/** Runs one unit's ExecStart on `host`, tracked for teardown. */
function startUnit(
  c: Cluster,
  host: Host,
  unitFile: string,
  instanceName: string,
  extraEnv: Record<string, string> = {},
) {
  const text = unit(unitFile);
  const env = {
    COREOS_PRIVATE_IPV4: host.ip,
    FLOTILLA_ETCD_ENDPOINTS: c.etcdEndpoints.join(','),
    FLOTILLA_LOGS_AGGREGATOR: `${c.hosts[0]!.ip}:24240`,
    NGINX_IMAGE: 'flotilla-test',
    NGINX_COMMAND,
    // /etc/flotilla/etcd/<user>.env: the agent's etcd certificate.
    ...unitEnvFiles(text, host),
    ...extraEnv,
  };
  const argv = localCommand(text, {
    name: instanceName,
    env,
    specifiers: { H: host.name },
    relocate: hostPaths(host),
    repoRoot: REPO,
  });
  // The host's dockerd socket, also for agents started before dockerd (logsd is Before=docker).
  const procEnv = {
    ...process.env,
    DOCKER_HOST: `unix://${join(host.dir, 'docker', 'docker.sock')}`,
  };
  // The one-machine cluster has no upstream resolver it may send to (only loopback and our own
  // namespaces are fair targets), so dnsd answers its zone and refuses to forward.
  if (unitFile === 'dnsd.service') argv.push('--no-rec');
  const p = host.spawn(argv, { env: procEnv, logName: instanceName.replace(/\.service$/, '') });
  if (!started.has(c)) started.set(c, new Map());
  started.get(c)!.set(`${host.name}/${instanceName}`, p);
  return p;
}

export async function upLocalCluster(o: LocalClusterOptions = {}): Promise<LocalCluster> {
  const say = o.progress ?? (() => undefined);
  async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    const v = await fn();
    say(`• ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return v;
  }
  const cluster = await step('etcd and 3 hosts (network namespaces on one underlay)', () =>
    startCluster({
      name: 'local',
      hosts: 3,
      ...(o.id ? { id: o.id } : {}),
      persistent: o.persistent ?? false,
      // etcd as docs/operations.md says to run it: TLS, client certificates, one role per agent.
      secureEtcd: true,
    }),
  );
  try {
    const [h1, h2, h3] = cluster.hosts as [Host, Host, Host];
    makeLogSecrets(cluster);
    installEtcdCerts(cluster);
    for (const h of cluster.hosts)
      for (const d of Object.values(hostPaths(h))) mkdirSync(d, { recursive: true });
    await step(`overlay config ${OVERLAY_NETWORK} (vxlan) in etcd`, async () => {
      // The operator's step (etcd's root user): overlayd may only read the config.
      const r = await h1.exec(
        etcdctlArgv(cluster, 'root', [
          'put',
          '/coreos.com/network/config',
          JSON.stringify({ Network: OVERLAY_NETWORK, Backend: { Type: 'vxlan' } }),
        ]),
      );
      if (r.code !== 0) throw new Error(`etcdctl put: ${r.stderr}`);
    });
    const subnets = await step(
      'overlayd on every host (overlayd.service): leases and VXLAN',
      async () => {
        for (const h of cluster.hosts)
          startUnit(cluster, h, 'overlayd.service', 'overlayd.service');
        return Promise.all(
          cluster.hosts.map((h) =>
            waitFor(
              `${h.name}: subnet file`,
              () => {
                const f = join(hostPaths(h)['/run/flannel/']!, 'subnet.env');
                if (!existsSync(f)) return undefined;
                const env = parseEnvFile(readFileSync(f, 'utf8'));
                return env['FLANNEL_SUBNET'] && env['FLANNEL_MTU'] ? env : undefined;
              },
              20_000,
            ),
          ),
        );
      },
    );
    await step('log aggregator on host 1 (logs-aggregator@1.service)', async () => {
      startUnit(cluster, h1, 'logs-aggregator@.service', 'logs-aggregator@1.service');
      await waitFor(
        'aggregator HTTP',
        async () => (await fetch(`${aggregatorUrl(cluster.hosts)}/healthz`)).ok,
        20_000,
      );
    });
    await step(
      'logsd agent on every host (logsd.service: json-file logs, forward input)',
      async () => {
        for (const h of cluster.hosts) startUnit(cluster, h, 'logsd.service', 'logsd.service');
        await Promise.all(
          cluster.hosts.map((h) =>
            waitFor(
              `${h.name}: logsd listening`,
              async () =>
                (await h.exec(['sh', '-c', 'ss -Hltn sport = :24224'])).stdout.trim() !== '',
              20_000,
            ),
          ),
        );
      },
    );
    await step(
      'dockerd per host with the drop-in options (docker.service.d/50-flotilla.conf)',
      async () => {
        const dropIn = unit('docker.service.d/50-flotilla.conf');
        for (const [i, h] of cluster.hosts.entries()) {
          const s = subnets[i]!;
          const d = dockerOptionsFromDropIn(dropIn, {
            FLANNEL_SUBNET: s['FLANNEL_SUBNET']!,
            FLANNEL_MTU: s['FLANNEL_MTU']!,
          });
          await h.startDocker({
            bip: d.bip,
            mtu: d.mtu,
            dns: d.dns,
            dnsSearch: d.dnsSearch,
            logDriver: d.logDriver,
            logOpts: d.logOpts,
            extra: ['--ip-masq=false'],
          });
        }
      },
    );
    await step('dnsd on every host (dnsd.service)', async () => {
      for (const h of cluster.hosts) startUnit(cluster, h, 'dnsd.service', 'dnsd.service');
      await Promise.all(
        cluster.hosts.map((h, i) => {
          const bridge = subnets[i]!['FLANNEL_SUBNET']!.split('/')[0]!;
          return waitFor(
            `${h.name}: dnsd on ${bridge}:53`,
            async () =>
              (await h.exec(['dig', `@${bridge}`, '+time=1', '+tries=1', 'skydns.local', 'SOA']))
                .code === 0,
            20_000,
          );
        }),
      );
    });
    const nginx = await step(
      'nginx@1 on host 2 and nginx@2 on host 3, each with its sidekick',
      async () => {
        const placed: LocalCluster['nginx'] = [
          { instance: 1, host: h2, container: 'nginx-1' },
          { instance: 2, host: h3, container: 'nginx-2' },
        ];
        for (const n of placed) {
          startUnit(cluster, n.host, 'nginx@.service', `nginx@${n.instance}.service`);
          startUnit(
            cluster,
            n.host,
            'nginx-announce@.service',
            `nginx-announce@${n.instance}.service`,
          );
        }
        await Promise.all(
          placed.map((n) =>
            waitFor(
              `${n.container} announced`,
              async () => {
                const r = await h1.exec([
                  'dig',
                  `@${subnets[0]!['FLANNEL_SUBNET']!.split('/')[0]!}`,
                  '+short',
                  `${n.instance}.web.skydns.local`,
                ]);
                return r.stdout.trim() !== '';
              },
              30_000,
            ),
          ),
        );
        return placed;
      },
    );
    const prometheusUrl = await step(
      'Prometheus scraping every agent and etcd (units/monitoring)',
      () => startPrometheus(cluster),
    );
    return {
      cluster,
      aggregatorHttp: aggregatorUrl(cluster.hosts),
      nginx,
      prometheusUrl,
      units: started.get(cluster) ?? new Map(),
    };
  } catch (err) {
    // FLOTILLA_KEEP_FAILED=1 leaves a failed cluster up for inspection (`npm run cluster -- down` removes it).
    if (process.env['FLOTILLA_KEEP_FAILED'] !== '1') await cluster.stop();
    throw err;
  }
}

export interface Demo {
  leases: { subnet: string; publicIp: string }[];
  fetched: { url: string; body: string };
  /** `wget http://web/` from a container on host 1, through the search domain. */
  short: { body: string };
  dig: { answer: string[]; nginxIps: string[] };
  logs: { lines: string[] };
}

/**
 * Shows what a newcomer wants to see, and returns it for the end-to-end test to assert: the
 * leases, a container on host 1 fetching a page from nginx on host 3 over the overlay, `dig
 * web.skydns.local` from a container answering both instances, `wget http://web/` by the short
 * name (the drop-in's --dns-search), and `logs tail --service nginx`.
 */
export async function demonstrate(
  lc: LocalCluster,
  say: (line: string) => void = () => undefined,
): Promise<Demo> {
  const { cluster } = lc;
  const h1 = cluster.hosts[0]!;
  const leaseOut = await h1.exec(
    etcdctlArgv(cluster, 'root', ['get', '--prefix', '/coreos.com/network/subnets/']),
  );
  const leases = parseLeases(leaseOut.stdout);
  if (leaseOut.code !== 0) throw new Error(`etcdctl get the leases: ${leaseOut.stderr}`);
  say('\nsubnet leases (etcd /coreos.com/network/subnets):');
  for (const l of leases) say(`  ${l.subnet.padEnd(16)} host ${l.publicIp}`);

  const nginxIps = await Promise.all(lc.nginx.map((n) => n.host.containerIp(n.container)));
  const far = lc.nginx[lc.nginx.length - 1]!;
  const url = `http://${nginxIps[nginxIps.length - 1]}/`;
  const fetch = await h1.run(['timeout', '5', 'wget', '-qO-', url]);
  if (fetch.code !== 0) throw new Error(`wget ${url} from host 1 failed: ${fetch.stderr}`);
  say(
    `\na container on host 1 fetches ${url} (${far.container} on host ${far.host.index}) over the overlay:`,
  );
  say(`  ${fetch.stdout.trim()}`);

  // The drop-in's --dns-search makes the short name work: the resolver tries web.skydns.local.
  const short = await h1.run(['timeout', '5', 'wget', '-qO-', 'http://web/']);
  if (short.code !== 0) throw new Error(`wget http://web/ from host 1 failed: ${short.stderr}`);
  say(
    '\na container on host 1 fetches http://web/ (dnsd answers web.skydns.local via the search domain):',
  );
  say(`  ${short.stdout.trim()}`);

  const dig = await h1.run(['dig', '+short', 'web.skydns.local']);
  const answer = dig.stdout.trim().split('\n').filter(Boolean).sort();
  say('\ndig +short web.skydns.local, from a container on host 1:');
  for (const a of answer) say(`  ${a}`);

  // One more request to each instance so both hosts have fresh log lines.
  for (const ip of nginxIps) await h1.run(['timeout', '5', 'wget', '-qO-', `http://${ip}/`]);
  const cli = join(REPO, 'dist/agents/logs/cli-main.js');
  const { run } = await import('../test/harness/index.js');
  const logs = await waitFor(
    'log lines from both nginx hosts',
    async () => {
      const r = await run([
        process.execPath,
        cli,
        'tail',
        '--service',
        'nginx',
        '-n',
        '20',
        '--server',
        lc.aggregatorHttp,
        '--token-file',
        logSecrets(cluster).tokenFile,
      ]);
      const got = r.stdout.trim().split('\n').filter(Boolean);
      return lc.nginx.every((n) => got.some((l) => l.includes(n.host.name))) ? got : undefined;
    },
    15_000,
    300,
  );
  say(`\nlogs tail --service nginx --server ${lc.aggregatorHttp}:`);
  for (const l of logs.slice(-8)) say(`  ${l}`);
  return {
    leases,
    fetched: { url, body: fetch.stdout },
    short: { body: short.stdout },
    dig: { answer, nginxIps },
    logs: { lines: logs },
  };
}
