/**
 * A cluster of test hosts on one machine: a real etcd, N network namespaces on a shared underlay,
 * optionally a real dockerd per host. Everything it starts is recorded in its run state, and
 * `stop()` (also run on exit, SIGINT and SIGTERM) removes exactly that.
 *
 *   const cluster = await startCluster({ name: 'overlay', hosts: 3, docker: true });
 *   const r = await cluster.hosts[0].run(['ping', '-c1', ip]);
 *   await cluster.stop();
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import {
  memberCommand,
  memberStatus,
  startEtcd,
  waitForEtcd,
  type EtcdHandle,
  type EtcdMember,
  type MemberStatus,
} from './etcd.js';
import {
  createEtcdNs,
  createHostNs,
  createUnderlay,
  pickSubnet,
  type Underlay,
} from './network.js';
import { startDockerd, type DockerOptions } from './dockerd.js';
import {
  etcdClientFlags,
  etcdClientSettings,
  type EtcdClientSettings,
  type EtcdUser,
} from './etcd-auth.js';
import { ensureTestImage, TEST_IMAGE } from './image.js';
import {
  must,
  run,
  startProcess,
  stopPid,
  waitFor,
  type RunResult,
  type StartedProcess,
} from './proc.js';
import {
  loadState,
  onProcessExit,
  saveState,
  sweepLeftovers,
  teardown,
  STATE_DIR,
  type RunState,
} from './state.js';
import { readdirSync } from 'node:fs';

export type { DockerOptions, EtcdMember, MemberStatus, RunResult, StartedProcess };

export interface ClusterOptions {
  /** Short label used in log file names. */
  name: string;
  hosts: number;
  /** Start a dockerd on every host (true = defaults), or per-host options. */
  docker?: boolean | ((index: number, host: Host) => DockerOptions);
  /** Fixed run id (the local cluster uses 'demo'); default random. */
  id?: string;
  /** Survives the process that created it (the local cluster). */
  persistent?: boolean;
  /**
   * etcd members (default 1, in the hub namespace). With 3 (or 5), each member runs in its own
   * namespace `flt<id>-e<i>` on the underlay at `<subnet>.(100+i)`, so a test can kill one, find
   * and kill the leader, or cut one off from its peers (`partitionEtcd`).
   */
  etcdMembers?: number;
  /**
   * The hub etcd with TLS, client-certificate auth and RBAC (the shipped etcd-certs.sh and
   * etcd-roles.sh); agents then need `cluster.etcdFlags(user)`. Single member only.
   */
  secureEtcd?: boolean;
}

export interface ContainerRunOptions {
  name?: string;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  /** Start and return without waiting; read the result with `container.wait()`. */
  detach?: boolean;
  /** Per-container log options (e.g. a different log driver). */
  logConfig?: { Type: string; Config?: Record<string, string> };
  autoRemove?: boolean;
  timeoutMs?: number;
}

/** Collects a multiplexed Docker attach/exec stream into stdout and stderr. */
function collectOutput(docker: Docker, stream: NodeJS.ReadableStream) {
  const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const out = new PassThrough();
  const err = new PassThrough();
  out.on('data', (c: Buffer) => chunks.stdout.push(c));
  err.on('data', (c: Buffer) => chunks.stderr.push(c));
  docker.modem.demuxStream(stream, out, err);
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
  });
  const text = () => ({
    stdout: Buffer.concat(chunks.stdout).toString(),
    stderr: Buffer.concat(chunks.stderr).toString(),
  });
  return { ended, text };
}

const active = new Set<Cluster>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  onProcessExit(() => {
    for (const c of active) if (!c.persistent) c.teardownNow();
  });
}

export class Host {
  dockerHandle: { proc: StartedProcess; socket: string; docker: Docker } | undefined;
  lastDockerOptions: DockerOptions = {};
  private readonly cut: { d: string; port: number }[] = [];

  constructor(
    readonly cluster: Cluster,
    readonly index: number,
    readonly name: string,
    readonly ip: string,
    readonly dir: string,
    /** The host's address on the run's IPv6 underlay. */
    readonly ip6 = '',
  ) {}

  /** The namespace path, for `nsenter --net=`. */
  get nsPath(): string {
    return `/var/run/netns/${this.name}`;
  }

  get docker(): Docker {
    if (!this.dockerHandle)
      throw new Error(`${this.name}: dockerd is not running (call startDocker first)`);
    return this.dockerHandle.docker;
  }

  get dockerSocket(): string {
    if (!this.dockerHandle) throw new Error(`${this.name}: dockerd is not running`);
    return this.dockerHandle.socket;
  }

  /** Runs a command inside this host's network namespace. */
  exec(
    cmd: string[],
    opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {},
  ): Promise<RunResult> {
    return run(['nsenter', `--net=${this.nsPath}`, ...cmd], opts);
  }

  /**
   * Starts a long-running process inside this host's namespace, recorded for teardown.
   * Output goes to `<host dir>/<logName>.log` unless `pipe` is set.
   */
  spawn(
    cmd: string[],
    opts: { env?: NodeJS.ProcessEnv; logName?: string; pipe?: boolean; cwd?: string } = {},
  ): StartedProcess {
    const logFile = join(
      this.dir,
      `${
        opts.logName ??
        cmd
          .find((c) => !c.startsWith('-') && c !== 'node')
          ?.split('/')
          .pop() ??
        'proc'
      }.log`,
    );
    const p = startProcess(['nsenter', `--net=${this.nsPath}`, ...cmd], {
      logFile,
      env: opts.env ?? process.env,
      ...(opts.pipe !== undefined ? { pipe: opts.pipe } : {}),
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      detached: this.cluster.persistent,
    });
    this.cluster.track(p.pid, `${this.name}: ${cmd.join(' ').slice(0, 120)}`);
    return p;
  }

  /**
   * Cuts this host off from TCP `port` on `ips` (every address when empty): new connections are
   * reset by an iptables rule inside this host's namespace and open ones are destroyed
   * (`ss -K`), so agents here see a real disconnect at once. `reconnectTcp` undoes it.
   */
  async disconnectTcp(port: number, ips: string[] = []): Promise<void> {
    const dsts = ips.length > 0 ? ips : ['0.0.0.0/0'];
    for (const d of dsts) await must(this.rejectRule('-I', d, port));
    this.cut.push(...dsts.map((d) => ({ d, port })));
    const filter =
      ips.length > 0
        ? ['(', ...ips.flatMap((ip, i) => [...(i ? ['or'] : []), 'dst', ip]), ')']
        : [];
    await run([
      'nsenter',
      `--net=${this.nsPath}`,
      'ss',
      '-K',
      '-tn',
      ...filter,
      'dport',
      '=',
      `:${port}`,
    ]);
  }

  /** The iptables command that inserts (-I) or deletes (-D) one `disconnectTcp` rule. */
  private rejectRule(op: '-I' | '-D', d: string, port: number): string[] {
    return [
      'nsenter',
      `--net=${this.nsPath}`,
      'iptables',
      '-w',
      op,
      'OUTPUT',
      '-p',
      'tcp',
      '-d',
      d,
      '--dport',
      String(port),
      '-j',
      'REJECT',
      '--reject-with',
      'tcp-reset',
    ];
  }

  /** Removes every rule `disconnectTcp` added on this host. */
  async reconnectTcp(): Promise<void> {
    for (const { d, port } of this.cut.splice(0)) await run(this.rejectRule('-D', d, port));
  }

  /** Stops a process started with `spawn` (SIGTERM, then SIGKILL after `graceMs`). */
  async kill(p: StartedProcess, graceMs = 5000): Promise<void> {
    await stopPid(p.pid, graceMs);
    this.cluster.untrack(p.pid);
  }

  /** (Re)starts this host's dockerd with the given options and imports the test image. */
  async startDocker(opts: DockerOptions = {}): Promise<Docker> {
    await this.stopDocker();
    const dns = opts.dns ?? [this.ip];
    this.lastDockerOptions = { ...opts, dns };
    this.dockerHandle = await startDockerd(
      this.name,
      join(this.dir, 'docker'),
      this.lastDockerOptions,
    );
    this.cluster.track(this.dockerHandle.proc.pid, `${this.name}: dockerd`);
    this.cluster.updateHost(this.name, { dockerSocket: this.dockerHandle.socket });
    await ensureTestImage(this.dockerHandle.docker);
    return this.dockerHandle.docker;
  }

  async stopDocker(): Promise<void> {
    if (!this.dockerHandle) return;
    const h = this.dockerHandle;
    this.dockerHandle = undefined;
    await stopPid(h.proc.pid, 15_000);
    this.cluster.untrack(h.proc.pid);
  }

  /**
   * Runs a container from the test image. Without `detach`, waits for it to exit and returns its
   * exit code and output (read by attaching, so it works with any log driver).
   */
  async run(cmd: string[], opts: ContainerRunOptions = {}): Promise<RunResult & { id: string }> {
    const docker = this.docker;
    const container: Docker.Container = await docker.createContainer({
      Image: TEST_IMAGE,
      Cmd: cmd,
      ...(opts.name ? { name: opts.name } : {}),
      Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
      Labels: opts.labels ?? {},
      HostConfig: {
        AutoRemove: opts.autoRemove ?? false,
        ...(opts.logConfig
          ? { LogConfig: { Type: opts.logConfig.Type, Config: opts.logConfig.Config ?? {} } }
          : {}),
      },
    } as Docker.ContainerCreateOptions);
    if (opts.detach) {
      await container.start();
      return { id: container.id, code: 0, stdout: '', stderr: '' };
    }
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const output = collectOutput(docker, stream);
    await container.start();
    const timeoutMs = opts.timeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const result = (await Promise.race([
      container.wait(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `container ${cmd.join(' ')} on ${this.name} still running after ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }),
    ])) as { StatusCode: number };
    clearTimeout(timer);
    await Promise.race([output.ended, new Promise((r) => setTimeout(r, 2000))]);
    if (!opts.autoRemove) await container.remove({ force: true }).catch(() => undefined);
    return { id: container.id, code: result.StatusCode, ...output.text() };
  }

  /** The global IPv6 address of a container (dockerd started with --ipv6). */
  async containerIp6(containerId: string): Promise<string> {
    const info = await this.docker.getContainer(containerId).inspect();
    const ip = Object.values(info.NetworkSettings.Networks)[0]?.GlobalIPv6Address;
    if (!ip) throw new Error(`container ${containerId.slice(0, 12)} on ${this.name} has no IPv6`);
    return ip;
  }

  /** Runs a command inside a running container (docker exec). */
  async execIn(containerId: string, cmd: string[]): Promise<RunResult> {
    const docker = this.docker;
    const exec = await docker
      .getContainer(containerId)
      .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const output = collectOutput(docker, stream);
    await output.ended;
    const info = await exec.inspect();
    return { code: info.ExitCode ?? -1, ...output.text() };
  }

  /** The IPv4 address of a container on this host's Docker bridge. */
  async containerIp(containerId: string): Promise<string> {
    const info = await this.docker.getContainer(containerId).inspect();
    const nets = info.NetworkSettings.Networks;
    const ip = Object.values(nets)[0]?.IPAddress;
    if (!ip) throw new Error(`container ${containerId.slice(0, 12)} on ${this.name} has no IP`);
    return ip;
  }
}

export class Cluster {
  readonly hosts: Host[] = [];
  etcd!: EtcdHandle;
  /** The members of a multi-member etcd (empty for the single hub etcd). */
  readonly etcdMembers: EtcdMember[] = [];
  private stopped = false;

  constructor(
    readonly state: RunState,
    readonly underlay: Underlay,
  ) {}

  get id(): string {
    return this.state.id;
  }
  get dir(): string {
    return this.state.dir;
  }
  get persistent(): boolean {
    return this.state.persistent;
  }
  /** etcd client URLs, reachable from the test process and from every host. */
  get etcdEndpoints(): string[] {
    return this.state.etcdEndpoints;
  }
  /** Certificates of a secure etcd (ca.pem, <user>.pem, <user>-key.pem); undefined if plain. */
  get etcdPki(): string | undefined {
    return this.state.etcdPki;
  }
  /** What an agent running as etcd user `user` connects with (just the endpoints if plain). */
  etcdSettings(user: EtcdUser = 'root'): EtcdClientSettings {
    return etcdClientSettings(this.etcdEndpoints, this.etcdPki, user);
  }
  /** The same as agent flags (--etcd-endpoints=… and, when secure, the TLS files). */
  etcdFlags(user: EtcdUser = 'root'): string[] {
    return etcdClientFlags(this.etcdSettings(user));
  }

  track(pid: number, what: string): void {
    this.state.pids.push({ pid, what });
    saveState(this.state);
  }

  untrack(pid: number): void {
    this.state.pids = this.state.pids.filter((p) => p.pid !== pid);
    saveState(this.state);
  }

  updateHost(name: string, patch: Partial<RunState['hosts'][number]>): void {
    const h = this.state.hosts.find((x) => x.name === name);
    if (h) Object.assign(h, patch);
    saveState(this.state);
  }

  private saveMembers(): void {
    this.state.etcdMembers = this.etcdMembers.map((m) => ({
      name: m.name,
      ns: m.ns,
      ip: m.ip,
      ...(m.proc ? { pid: m.proc.pid } : {}),
    }));
    saveState(this.state);
  }

  private member(name: string): EtcdMember {
    const m = this.etcdMembers.find((x) => x.name === name);
    if (!m)
      throw new Error(
        `no etcd member ${name} (members: ${this.etcdMembers.map((x) => x.name).join(', ') || 'none: start with etcdMembers: 3'})`,
      );
    return m;
  }

  /** (Re)starts member `name` from its data dir; resolves when it answers a health check. */
  async startEtcdMember(name: string, wait = true): Promise<void> {
    const m = this.member(name);
    if (m.proc) throw new Error(`etcd member ${name} is already running`);
    m.proc = startProcess(memberCommand(m, this.etcdMembers, `flt${this.id}`), {
      logFile: m.logFile,
      detached: this.persistent,
    });
    this.track(m.proc.pid, `etcd member ${name}`);
    this.saveMembers();
    if (wait) await waitForEtcd(m.client);
  }

  /** Stops member `name`: SIGKILL (no graceful step-down) by default, or SIGTERM. */
  async stopEtcdMember(name: string, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const m = this.member(name);
    const p = m.proc;
    if (!p) return;
    if (signal === 'SIGKILL') {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))]);
    } else await stopPid(p.pid, 10_000);
    m.proc = undefined;
    this.untrack(p.pid);
    this.saveMembers();
  }

  /** Each running member's own view (ID, the leader it follows, term, revision). */
  async etcdStatus(): Promise<MemberStatus[]> {
    const all = await Promise.all(this.etcdMembers.filter((m) => m.proc).map(memberStatus));
    return all.filter((s): s is MemberStatus => s !== undefined);
  }

  /**
   * The member that a majority of all members follows as leader, waiting up to `timeoutMs` for
   * one (after a kill, the election takes a few seconds).
   */
  async etcdLeader(timeoutMs = 20_000): Promise<EtcdMember> {
    const quorum = Math.floor(this.etcdMembers.length / 2) + 1;
    return waitFor(
      'an etcd leader followed by a majority',
      async () => {
        const st = await this.etcdStatus();
        for (const s of st) {
          if (s.leader !== s.id || this.state.partitioned?.includes(s.member.name)) continue;
          if (st.filter((x) => x.leader === s.id).length >= quorum) return s.member;
        }
        return undefined;
      },
      timeoutMs,
      200,
    );
  }

  /**
   * Cuts member `name` off from the other members (iptables DROP of their addresses, both ways,
   * inside the member's own namespace); clients still reach it. `healEtcd` removes the rules.
   */
  async partitionEtcd(name: string): Promise<void> {
    const m = this.member(name);
    const others = this.etcdMembers.filter((x) => x !== m).map((x) => x.ip);
    const ipt = (args: string[]) =>
      must(['nsenter', `--net=/var/run/netns/${m.ns}`, 'iptables', '-w', ...args]);
    for (const ip of others) {
      await ipt(['-I', 'INPUT', '-s', ip, '-j', 'DROP']);
      await ipt(['-I', 'OUTPUT', '-d', ip, '-j', 'DROP']);
    }
    this.state.partitioned = [...new Set([...(this.state.partitioned ?? []), name])];
    saveState(this.state);
  }

  async healEtcd(name: string): Promise<void> {
    const m = this.member(name);
    const others = this.etcdMembers.filter((x) => x !== m).map((x) => x.ip);
    const ipt = (args: string[]) =>
      run(['nsenter', `--net=/var/run/netns/${m.ns}`, 'iptables', '-w', ...args]);
    for (const ip of others) {
      await ipt(['-D', 'INPUT', '-s', ip, '-j', 'DROP']);
      await ipt(['-D', 'OUTPUT', '-d', ip, '-j', 'DROP']);
    }
    this.state.partitioned = (this.state.partitioned ?? []).filter((x) => x !== name);
    saveState(this.state);
    await this.etcdConverged();
  }

  /**
   * Waits until every running member follows one leader in one term. After a partition heals,
   * etcd 3.4 (no pre-vote) lets the rejoining member's higher term depose the leader: a majority
   * may still follow the old leader for a moment, and a client call in that election gets
   * "etcdserver: no leader". Agents ride that out by retrying; a test's own calls wait here.
   */
  async etcdConverged(timeoutMs = 20_000): Promise<EtcdMember> {
    const running = this.etcdMembers.filter((m) => m.proc).length;
    return waitFor(
      'every etcd member following one leader in one term',
      async () => {
        const st = await this.etcdStatus();
        if (st.length !== running) return undefined;
        const [first] = st;
        if (!first || first.leader === '0') return undefined;
        const same = st.every((s) => s.leader === first.leader && s.raftTerm === first.raftTerm);
        return same ? st.find((s) => s.id === first.leader)?.member : undefined;
      },
      timeoutMs,
      200,
    );
  }

  /** Synchronous teardown (also used from exit handlers). */
  teardownNow(): void {
    if (this.stopped) return;
    this.stopped = true;
    active.delete(this);
    teardown(this.state);
  }

  async stop(): Promise<void> {
    // Stop dockerds gracefully first, so they stop their containers and containerd.
    await Promise.all(this.hosts.map((h) => h.stopDocker().catch(() => undefined)));
    this.teardownNow();
  }
}

function takenSubnets(): Set<string> {
  const out = new Set<string>();
  try {
    for (const f of readdirSync(STATE_DIR)) {
      const s = loadState(f.replace(/\.json$/, ''));
      if (s?.subnet) out.add(s.subnet);
    }
  } catch {
    /* none */
  }
  return out;
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  installHandlers();
  sweepLeftovers();
  const id = opts.id ?? randomBytes(3).toString('hex');
  const dir = opts.persistent
    ? join(tmpdir(), `flt${id}`)
    : mkdtempSync(join(tmpdir(), `flt${id}-`));
  mkdirSync(dir, { recursive: true });
  const state: RunState = {
    id,
    ownerPid: process.pid,
    persistent: opts.persistent ?? false,
    dir,
    subnet: pickSubnet(takenSubnets()),
    namespaces: [],
    pids: [],
    hosts: [],
    etcdEndpoints: [],
  };
  saveState(state);
  const placeholder = new Cluster(state, undefined as unknown as Underlay);
  active.add(placeholder);
  try {
    state.namespaces.push(`flt${id}-hub`);
    saveState(state);
    const underlay = await createUnderlay(id, state.subnet);
    const cluster = new Cluster(state, underlay);
    active.delete(placeholder);
    active.add(cluster);
    const members = opts.etcdMembers ?? 1;
    if (members > 1) await startEtcdMembers(cluster, underlay, members);
    else {
      cluster.etcd = await startEtcd({
        netns: underlay.hubNs,
        ip: underlay.hubIp,
        dir,
        name: `flt${id}`,
        secure: opts.secureEtcd ?? false,
      });
      cluster.track(cluster.etcd.proc.pid, 'etcd');
      state.etcdEndpoints = cluster.etcd.endpoints;
      if (cluster.etcd.pki) state.etcdPki = cluster.etcd.pki;
    }
    for (let i = 1; i <= opts.hosts; i++) {
      state.namespaces.push(`flt${id}-h${i}`);
      saveState(state);
      const { name, ip, ip6 } = await createHostNs(id, underlay, i);
      const hostDir = join(dir, `h${i}`);
      mkdirSync(hostDir, { recursive: true });
      cluster.hosts.push(new Host(cluster, i, name, ip, hostDir, ip6));
      state.hosts.push({ name, ip });
      saveState(state);
    }
    if (opts.docker) {
      const make = typeof opts.docker === 'function' ? opts.docker : () => ({});
      // Sequential: two dockerds initialising at once on 2 cores is slower than one after the other.
      for (const h of cluster.hosts) await h.startDocker(make(h.index, h));
    }
    return cluster;
  } catch (err) {
    for (const c of [...active]) if (c.state === state) c.teardownNow();
    teardown(state);
    throw err;
  }
}

/** Creates one namespace per member, starts all members at once (they bootstrap together). */
async function startEtcdMembers(cluster: Cluster, underlay: Underlay, n: number): Promise<void> {
  const { state } = cluster;
  for (let i = 1; i <= n; i++) {
    state.namespaces.push(`flt${state.id}-e${i}`);
    saveState(state);
    const { name: ns, ip } = await createEtcdNs(state.id, underlay, i);
    const dataDir = join(state.dir, `etcd-m${i}`);
    mkdirSync(dataDir, { recursive: true });
    cluster.etcdMembers.push({
      name: `m${i}`,
      ns,
      ip,
      client: `http://${ip}:2379`,
      peer: `http://${ip}:2380`,
      dataDir,
      logFile: join(state.dir, `etcd-m${i}.log`),
      proc: undefined,
    });
  }
  state.etcdEndpoints = cluster.etcdMembers.map((m) => m.client);
  for (const m of cluster.etcdMembers) await cluster.startEtcdMember(m.name, false);
  await Promise.all(cluster.etcdMembers.map((m) => waitForEtcd(m.client)));
  await cluster.etcdLeader();
}
