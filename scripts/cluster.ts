/**
 * The main job on one machine: `npm start` brings up a local Flotilla cluster on the harness
 * (etcd, three hosts as network namespaces, a dockerd per host) and leaves it running;
 * `npm run cluster -- status | env | down | exec HOST -- CMD` manage it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadState, teardown, alive, type Cluster } from '../test/harness/index.js';
import { requireSupportedNode } from '../agents/common/agent.js';
import { envScript, evalHint, findHost, operatorEtcdTls } from './cluster-env.js';
import { ensureDevBin } from './dev-bin.js';
import {
  aggregatorUrl,
  demonstrate,
  etcdctlArgv,
  logSecrets,
  parseLeases,
  REPO,
  upLocalCluster,
  type LocalCluster,
} from './local-cluster.js';

const ID = 'demo';

const USAGE =
  'Usage: npm run cluster -- up | status | env [HOST] | down | exec HOST -- CMD...\n' +
  '  up      start the local cluster (what `npm start` runs)\n' +
  '  status  show hosts, addresses, the log aggregator, subnet leases and processes\n' +
  '  env     shell exports for HOST (default 1): eval "$(npm run -s cluster -- env 2)" points\n' +
  '          docker at host 2, etcdctl/logs/announce at the cluster, and puts the commands on PATH\n' +
  '  down    stop everything the cluster started and remove its namespaces and files\n' +
  '  exec    run CMD inside host HOST (1, h1 or the namespace name), e.g. exec 1 -- ip route\n';

/** Usage on stdout with exit 0 when asked for (--help), on stderr with exit 2 after a mistake. */
function usage(asked = false): never {
  (asked ? process.stdout : process.stderr).write(USAGE);
  process.exit(asked ? 0 : 2);
}

function printAccess(c: {
  dir: string;
  hosts: { name: string; ip: string; dockerSocket?: string | undefined }[];
  etcdEndpoints: string[];
  etcdPki?: string | undefined;
}): void {
  const lines = [
    '',
    `etcd: ${c.etcdEndpoints.join(',')}   (${c.etcdPki ? 'TLS, client certificates; ' : ''}after the env line below: etcdctl get --prefix /coreos.com/network)`,
    ...(c.etcdPki
      ? [
          `      certificates: ${c.etcdPki} (root.pem: the operator's; each host's agents use their own, in ${join(c.dir, 'etc/flotilla/etcd')})`,
        ]
      : []),
    ...(c.hosts[0]
      ? [`logs: ${aggregatorUrl(c.hosts)}   (logs --server URL, or LOGS_SERVER)`]
      : []),
    'hosts:',
  ];
  c.hosts.forEach((h, i) => {
    lines.push(`  host ${i + 1}: namespace ${h.name}, underlay ${h.ip}`);
    lines.push(`      shell:  npm run cluster -- exec ${i + 1} -- sh`);
    if (h.dockerSocket) lines.push(`      docker: DOCKER_HOST=unix://${h.dockerSocket} docker ps`);
    lines.push(`      env:    ${evalHint(i + 1)}`);
  });
  const agg = c.hosts[0];
  if (agg) {
    const { tokenFile } = logSecrets(c);
    const token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
    lines.push(
      '',
      `logs: http://${agg.ip}:24241/?service=nginx${token ? `&token=${token}` : ''}   (live tail page of the aggregator on host 1; open it in a browser here)`,
      `      logs tail --service nginx --server http://${agg.ip}:24241 --token-file ${tokenFile}   (the query token; the shared key is beside it)`,
    );
  }
  lines.push('', 'status: npm run cluster -- status', 'stop:   npm run cluster -- down', '');
  process.stdout.write(lines.join('\n'));
}

async function up(): Promise<void> {
  const existing = loadState(ID);
  if (existing) {
    process.stderr.write(
      'cluster: a local cluster is already up (npm run cluster -- status); run `npm run cluster -- down` first\n',
    );
    process.exit(1);
  }
  const t0 = Date.now();
  let cluster: Cluster | undefined;
  const abort = () => {
    process.stdout.write('\ninterrupted: removing the partial cluster\n');
    const s = loadState(ID);
    if (s) teardown(s);
    process.exit(130);
  };
  process.once('SIGINT', abort);
  let lc: LocalCluster;
  try {
    lc = await upLocalCluster({
      id: ID,
      persistent: true,
      progress: (l) => process.stdout.write(`${l}\n`),
    });
    cluster = lc.cluster;
  } catch (err) {
    const s = loadState(ID);
    if (s && process.env['FLOTILLA_KEEP_FAILED'] !== '1') teardown(s);
    throw err;
  }
  process.removeListener('SIGINT', abort);
  process.stdout.write(`\nlocal cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  await demonstrate(lc, (l) => process.stdout.write(`${l}\n`));
  process.stdout.write(
    `\nPrometheus: ${lc.prometheusUrl}   (alerts: ${lc.prometheusUrl}/alerts, rules: units/monitoring/flotilla-alerts.yml)\n`,
  );
  printAccess({
    dir: cluster.dir,
    hosts: cluster.state.hosts,
    etcdEndpoints: cluster.etcdEndpoints,
    etcdPki: cluster.etcdPki,
  });
  ensureDevBin(REPO);
  process.stdout.write(
    `\nthis shell → host 1, with logs, announce, dnsd… on PATH:\n  ${evalHint(1)}\n`,
  );
  // Open dockerode sockets would keep this process alive; the daemons run on without it.
  process.exit(0);
}

function status(): void {
  const s = loadState(ID);
  if (!s) {
    process.stdout.write('no local cluster is up (start one with `npm start`)\n');
    process.exit(3);
  }
  printAccess(s);
  try {
    process.stdout.write(
      `Prometheus: ${readFileSync(join(s.dir, 'prometheus', 'url'), 'utf8')}\n\n`,
    );
  } catch {
    /* started before Prometheus was part of the local cluster */
  }
  printLeases(s.etcdEndpoints, s.etcdPki);
  process.stdout.write('processes:\n');
  for (const p of s.pids)
    process.stdout.write(
      `  ${alive(p.pid) ? 'running' : 'DEAD   '} ${String(p.pid).padStart(7)}  ${p.what}\n`,
    );
}

/** The subnet leases, read with etcdctl from the root namespace (which reaches etcd). */
function printLeases(endpoints: string[], pki: string | undefined): void {
  const [cmd, ...args] = etcdctlArgv({ etcdEndpoints: endpoints, etcdPki: pki }, 'root', [
    '--dial-timeout=2s',
    'get',
    '--prefix',
    '/coreos.com/network/subnets/',
  ]);
  const r = spawnSync(cmd!, args, {
    encoding: 'utf8',
    timeout: 5000,
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  if (r.status !== 0) {
    process.stdout.write(
      `subnet leases: etcd not answering (${(r.stderr || r.error?.message || '').trim().split('\n')[0]})\n`,
    );
    return;
  }
  process.stdout.write('subnet leases (etcd /coreos.com/network/subnets):\n');
  for (const l of parseLeases(r.stdout))
    process.stdout.write(`  ${l.subnet.padEnd(16)} host ${l.publicIp}\n`);
}

function env(args: string[]): void {
  const s = loadState(ID);
  if (!s) {
    process.stderr.write('cluster: no local cluster is up (start one with `npm start`)\n');
    process.exit(3);
  }
  const arg = args[0] ?? '1';
  if (args.length > 1) usage();
  const host = findHost(s.hosts, arg);
  if (!host) {
    process.stderr.write(
      `cluster: no host "${arg}" (hosts: ${s.hosts.map((_, i) => i + 1).join(', ')})\n`,
    );
    process.exit(2);
  }
  process.stdout.write(
    envScript({
      host,
      index: s.hosts.indexOf(host) + 1,
      etcdEndpoints: s.etcdEndpoints,
      logsServer: aggregatorUrl(s.hosts),
      logsTokenFile: logSecrets(s).tokenFile,
      etcdTls: operatorEtcdTls(s.etcdPki),
      binDir: ensureDevBin(REPO),
    }),
  );
}

function down(): void {
  const s = loadState(ID);
  if (!s) {
    process.stdout.write('no local cluster is up\n');
    return;
  }
  teardown(s);
  process.stdout.write(
    `local cluster removed (namespaces flt${ID}-*, ${s.pids.length} processes, ${s.dir})\n`,
  );
}

function exec(args: string[]): void {
  const s = loadState(ID);
  if (!s) {
    process.stderr.write('cluster: no local cluster is up\n');
    process.exit(3);
  }
  const sep = args.indexOf('--');
  const hostArg = args[0];
  const cmd = sep === -1 ? args.slice(1) : args.slice(sep + 1);
  if (!hostArg || cmd.length === 0) usage();
  const host = findHost(s.hosts, hostArg);
  if (!host) {
    process.stderr.write(
      `cluster: no host "${hostArg}" (hosts: ${s.hosts.map((_, i) => i + 1).join(', ')})\n`,
    );
    process.exit(2);
  }
  const env = {
    ...process.env,
    ...(host.dockerSocket ? { DOCKER_HOST: `unix://${host.dockerSocket}` } : {}),
  };
  const r = spawnSync('nsenter', [`--net=/var/run/netns/${host.name}`, ...cmd], {
    stdio: 'inherit',
    env,
  });
  process.exit(r.status ?? 1);
}

requireSupportedNode('cluster');
// `npm run cluster -- status | head`: the reader went away; that is a normal end.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const [cmd, ...rest] = process.argv.slice(2);
switch (cmd) {
  case 'up':
    await up();
    break;
  case 'status':
    status();
    break;
  case 'down':
    down();
    break;
  case 'env':
    env(rest);
    break;
  case 'exec':
    exec(rest);
    break;
  case '--help':
  case '-h':
  case 'help':
    usage(true);
    break;
  default:
    usage();
}
