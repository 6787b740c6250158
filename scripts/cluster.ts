/**
 * The main job on one machine: `npm start` brings up a local Flotilla cluster on the harness
 * (etcd, three hosts as network namespaces, a dockerd per host) and leaves it running;
 * `npm run cluster -- status | down | exec HOST -- CMD` manage it.
 */
import { spawnSync } from 'node:child_process';
import { loadState, teardown, alive, type Cluster } from '../test/harness/index.js';
import { requireSupportedNode } from '../agents/common/agent.js';
import { existsSync, readFileSync } from 'node:fs';
import { demonstrate, logSecrets, upLocalCluster, type LocalCluster } from './local-cluster.js';

const ID = 'demo';

function usage(): never {
  process.stderr.write(
    'Usage: npm run cluster -- up | status | down | exec HOST -- CMD...\n' +
      '  up      start the local cluster (what `npm start` runs)\n' +
      '  status  show hosts, addresses and processes\n' +
      '  down    stop everything the cluster started and remove its namespaces and files\n' +
      '  exec    run CMD inside host HOST (1, h1 or the namespace name), e.g. exec 1 -- ip route\n',
  );
  process.exit(2);
}

function printAccess(c: {
  dir: string;
  hosts: { name: string; ip: string; dockerSocket?: string | undefined }[];
  etcdEndpoints: string[];
}): void {
  const lines = [
    '',
    `etcd: ${c.etcdEndpoints.join(',')}   (etcdctl --endpoints ${c.etcdEndpoints[0]} get --prefix /coreos.com/network)`,
    'hosts:',
  ];
  c.hosts.forEach((h, i) => {
    lines.push(`  host ${i + 1}: namespace ${h.name}, underlay ${h.ip}`);
    lines.push(`      shell:  npm run cluster -- exec ${i + 1} -- sh`);
    if (h.dockerSocket) lines.push(`      docker: DOCKER_HOST=unix://${h.dockerSocket} docker ps`);
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
  });
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
  process.stdout.write('processes:\n');
  for (const p of s.pids)
    process.stdout.write(
      `  ${alive(p.pid) ? 'running' : 'DEAD   '} ${String(p.pid).padStart(7)}  ${p.what}\n`,
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
  const host = s.hosts.find(
    (h, i) => hostArg === String(i + 1) || hostArg === `h${i + 1}` || hostArg === h.name,
  );
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
  case 'exec':
    exec(rest);
    break;
  default:
    usage();
}
