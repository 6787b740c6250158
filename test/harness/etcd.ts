/**
 * A real etcd 3.4 for a run, started inside the run's hub namespace so every test host (over
 * the underlay) and the test process (over the root veth) reach it at `http://<hub ip>:2379`.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { startProcess, waitFor, run, type StartedProcess } from './proc.js';
import { enableEtcdRoles, etcdServerTlsArgs, etcdctlTlsArgs, issueEtcdCerts } from './etcd-auth.js';

/**
 * The command line of an etcd member (v2 API on, as fleet needs it): a single-member cluster, or
 * one member of `initialCluster` ("m1=http://…:2380,m2=…") bootstrapped with `token`.
 */
export function etcdCommand(o: {
  name: string;
  dataDir: string;
  listen: string[];
  advertise: string;
  peer: string;
  listenPeer?: string;
  initialCluster?: string;
  token?: string;
}): string[] {
  return [
    'etcd',
    '--name',
    o.name,
    '--data-dir',
    o.dataDir,
    '--listen-client-urls',
    o.listen.join(','),
    '--advertise-client-urls',
    o.advertise,
    '--listen-peer-urls',
    o.listenPeer ?? o.peer,
    '--initial-advertise-peer-urls',
    o.peer,
    '--initial-cluster',
    o.initialCluster ?? `${o.name}=${o.peer}`,
    ...(o.token ? ['--initial-cluster-token', o.token] : []),
    '--enable-v2=true',
    '--log-level',
    'warn',
  ];
}

/** Resolves once `etcdctl endpoint health` succeeds against `client` (`tlsArgs`: --cacert …). */
export async function waitForEtcd(client: string, tlsArgs: string[] = []): Promise<void> {
  await waitFor(
    `etcd at ${client}`,
    async () =>
      (
        await run(
          [
            'etcdctl',
            '--endpoints',
            client,
            ...tlsArgs,
            '--dial-timeout',
            '1s',
            'endpoint',
            'health',
          ],
          { timeoutMs: 3000 },
        )
      ).code === 0,
    20_000,
    200,
  );
}

export interface EtcdHandle {
  endpoints: string[];
  proc: StartedProcess;
  dataDir: string;
  /** Certificates (etcd-auth.ts) when started with `secure`. */
  pki?: string;
}

/**
 * The hub etcd. `secure`: TLS with client-certificate auth and RBAC on, certificates in
 * `<dir>/etcd-pki` (see etcd-auth.ts).
 */
export async function startEtcd(opts: {
  netns: string;
  ip: string;
  dir: string;
  name: string;
  detached?: boolean;
  secure?: boolean;
}): Promise<EtcdHandle> {
  const dataDir = join(opts.dir, 'etcd');
  mkdirSync(dataDir, { recursive: true });
  const pki = opts.secure ? join(opts.dir, 'etcd-pki') : undefined;
  if (pki) await issueEtcdCerts(pki, [opts.ip]);
  const scheme = pki ? 'https' : 'http';
  const client = `${scheme}://${opts.ip}:2379`;
  const proc = startProcess(
    [
      'nsenter',
      `--net=/var/run/netns/${opts.netns}`,
      ...etcdCommand({
        name: opts.name,
        dataDir,
        listen: [client, `${scheme}://127.0.0.1:2379`],
        advertise: client,
        peer: 'http://127.0.0.1:2380',
      }),
      ...(pki ? etcdServerTlsArgs(pki) : []),
    ],
    { logFile: join(opts.dir, 'etcd.log'), detached: opts.detached ?? false },
  );
  await waitForEtcd(client, pki ? etcdctlTlsArgs(pki) : []);
  if (pki) await enableEtcdRoles(client, pki);
  return { endpoints: [client], proc, dataDir, ...(pki ? { pki } : {}) };
}

/** One member of a multi-member etcd: its own namespace on the underlay, its own data dir. */
export interface EtcdMember {
  name: string;
  ns: string;
  ip: string;
  client: string;
  peer: string;
  dataDir: string;
  logFile: string;
  /** Set while the member runs (started by the harness). */
  proc: StartedProcess | undefined;
}

/** The member's etcd command; the same line restarts it from its data dir (flags then ignored). */
export function memberCommand(m: EtcdMember, all: EtcdMember[], token: string): string[] {
  return [
    'nsenter',
    `--net=/var/run/netns/${m.ns}`,
    ...etcdCommand({
      name: m.name,
      dataDir: m.dataDir,
      listen: [m.client, 'http://127.0.0.1:2379'],
      advertise: m.client,
      peer: m.peer,
      initialCluster: all.map((x) => `${x.name}=${x.peer}`).join(','),
      token,
    }),
  ];
}

export interface MemberStatus {
  member: EtcdMember;
  /** etcd's member ID of this member, hex. */
  id: string;
  /** The leader this member believes in ("0" = none). */
  leader: string;
  raftTerm: number;
  revision: number;
}

/** `etcdctl endpoint status` of one member; undefined when it does not answer within 2 s. */
export async function memberStatus(m: EtcdMember): Promise<MemberStatus | undefined> {
  const r = await run(
    [
      'etcdctl',
      '--endpoints',
      m.client,
      '--dial-timeout',
      '1s',
      '--command-timeout',
      '1500ms',
      'endpoint',
      'status',
      '-w',
      'json',
    ],
    { timeoutMs: 3000 },
  );
  if (r.code !== 0) return undefined;
  try {
    // IDs are uint64: quote them before JSON.parse rounds them to a float.
    const text = r.stdout.replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"');
    const [s] = JSON.parse(text) as {
      Status: {
        header: { member_id: number | string; revision: number };
        leader: number | string;
        raftTerm: number;
      };
    }[];
    if (!s) return undefined;
    return {
      member: m,
      id: BigInt(s.Status.header.member_id).toString(16),
      leader: BigInt(s.Status.leader).toString(16),
      raftTerm: s.Status.raftTerm,
      revision: s.Status.header.revision,
    };
  } catch {
    return undefined;
  }
}
